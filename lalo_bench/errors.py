"""User-facing errors.

Every failure a solution engineer can cause or fix (bad config, missing or
corrupt model file, unreachable backend) is a :class:`LaloError`; the CLI turns
it into one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations


class LaloError(Exception):
    """An error whose message alone tells the user what is wrong and how to fix it."""

    exit_code = 2


class ConfigError(LaloError):
    """A config file is malformed or inconsistent; rendered as ``file:field: message``."""

    def __init__(self, file: str, field: str, message: str, more: int = 0) -> None:
        self.file, self.field, self.message, self.more = file, field, message, more
        where = f"{file}:{field}" if field else file
        suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"{where}: {message}{suffix}")


class ModelFileError(LaloError):
    """A model file is missing, truncated or does not match its pinned sha256."""


class BackendError(LaloError):
    """A backend could not be started or reached."""
