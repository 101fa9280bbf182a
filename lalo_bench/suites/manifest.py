"""Pinned eval data: a ``manifest.json`` next to each generated suite folder.

A benchmark number is only comparable if every run scored the same items, so
each data file is pinned by sha256 and line count; :func:`verify` refuses a
folder whose files are missing or were edited, with a one-line message that
says how to regenerate them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lalo_bench.errors import LaloError

MANIFEST_NAME = "manifest.json"


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    lines: int = Field(ge=0)


class Manifest(BaseModel):
    """What generated a suite folder and the fingerprint of every file in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str
    version: str
    generator: str = Field(description="module that wrote the files")
    generator_version: str
    seed: int
    count: int = Field(ge=0)
    files: dict[str, FileEntry]


def file_entry(path: Path) -> FileEntry:
    data = path.read_bytes()
    return FileEntry(sha256=hashlib.sha256(data).hexdigest(), lines=data.count(b"\n"))


def write_manifest(
    out_dir: Path,
    *,
    suite: str,
    version: str,
    generator: str,
    generator_version: str,
    seed: int,
    count: int,
    files: list[str],
) -> Path:
    """Fingerprint ``files`` (names inside ``out_dir``) and write ``out_dir/manifest.json``; returns its path."""
    manifest = Manifest(
        suite=suite,
        version=version,
        generator=generator,
        generator_version=generator_version,
        seed=seed,
        count=count,
        files={name: file_entry(out_dir / name) for name in sorted(files)},
    )
    path = out_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest.model_dump(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def show(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_manifest(data_dir: Path, hint: str | None = None) -> Manifest:
    path = data_dir / MANIFEST_NAME
    hint = hint or _hint(data_dir.parent.name)
    if not path.is_file():
        raise LaloError(f"{show(path)}: manifest missing; {hint}")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise LaloError(f"{show(path)}: invalid manifest ({where}: {first['msg']}); {hint}") from None


def _hint(suite: str) -> str:
    return f"regenerate with `lalo-bench suites generate {suite}`"


def verify(data_dir: Path, hint: str | None = None) -> None:
    """Raise :class:`LaloError` naming the first file that is missing or differs from the manifest.

    ``hint`` says how to repair the folder; by default, regenerating its suite (vendored data is restored instead).
    """
    manifest = load_manifest(data_dir, hint)
    hint = hint or _hint(manifest.suite)
    for name, expected in manifest.files.items():
        path = data_dir / name
        if not path.is_file():
            raise LaloError(f"{show(path)}: missing (listed in {MANIFEST_NAME}); {hint}")
        got = file_entry(path)
        if got.sha256 != expected.sha256:
            raise LaloError(
                f"{show(path)}: sha256 mismatch with manifest (expected {expected.sha256[:12]}…, "
                f"got {got.sha256[:12]}…); {hint}"
            )
        if got.lines != expected.lines:
            raise LaloError(f"{show(path)}: {got.lines} lines, manifest says {expected.lines}; {hint}")


def write_jsonl(path: Path, rows: Sequence[BaseModel]) -> None:
    """One sorted-key JSON object a line: the byte-stable form every suite's data file uses."""
    path.write_text("".join(json.dumps(r.model_dump(), sort_keys=True) + "\n" for r in rows), encoding="utf-8")
