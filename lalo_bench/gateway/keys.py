"""The gateway's API key: from ``LALO_API_KEY``, else a file made on first run, readable by its owner only."""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from lalo_bench.errors import LaloError
from lalo_bench.models import store

ENV = "LALO_API_KEY"
MIN_LENGTH = 16


def key_file() -> Path:
    return store.home() / "gateway" / "api_key"


def resolve_key(path: Path | None = None) -> tuple[str, str]:
    """The key and where it came from. A key file others can read is refused, not silently used."""
    env = os.environ.get(ENV)
    if env is not None:
        if len(env.strip()) < MIN_LENGTH:
            raise LaloError(f"{ENV} is shorter than {MIN_LENGTH} characters; set a longer key")
        return env.strip(), f"${ENV}"
    path = path or key_file()
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise LaloError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < MIN_LENGTH:
            raise LaloError(f"{path} holds a key shorter than {MIN_LENGTH} characters; delete it to make a new one")
        return key, str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "lalo-" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key, f"{path} (new)"


def matches(given: str | None, key: str) -> bool:
    """Constant-time comparison, so the key cannot be guessed byte by byte from response times."""
    return given is not None and hmac.compare_digest(given.encode(), key.encode())
