"""GGUF → Hugging Face folder, so vLLM can serve a model the store holds as GGUF.

The conversion runs ``_convert_gguf.py`` with the vLLM venv's python, where
transformers, gguf and accelerate are installed. The folder is cached under
``$LALO_HOME/hf/<model>/<quant>/`` and is built in a ``*.partial`` sibling that
is renamed into place only when complete, so an interrupted conversion is never
served. A marker file pins the sha256 of the GGUF it came from: a folder made
from another file (a re-pulled or re-quantized GGUF) is rebuilt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from lalo_bench import datafiles
from lalo_bench.errors import BackendError
from lalo_bench.models import store
from lalo_bench.models.store import ArtifactRecord
from lalo_bench.serving.process import last_meaningful_line

SCRIPT = datafiles.package_file("serving/_convert_gguf.py")
"""Run by the vLLM venv's python, which cannot import lalo_bench: a file of the package, not a module call."""
MARKER = "lalo-conversion.json"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


class Conversion(BaseModel):
    """What a converted folder was made from; written last, so its presence means the folder is complete."""

    model: str
    quant: str
    source_file: str
    source_sha256: str
    dtype: str = "bfloat16"
    seconds: float = Field(description="how long the conversion took")
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def hf_dir(model_id: str, quant: str) -> Path:
    return store.home() / "hf" / model_id / quant


def read_marker(folder: Path) -> Conversion | None:
    try:
        return Conversion.model_validate_json((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_current(folder: Path, record: ArtifactRecord) -> bool:
    """True when ``folder`` is a complete conversion of exactly the GGUF ``record`` pins."""
    marker = read_marker(folder)
    return marker is not None and marker.source_sha256 == record.sha256 and (folder / "config.json").is_file()


def ensure_hf_folder(record: ArtifactRecord, python: Path, timeout_s: float = 1800.0) -> Path:
    """The HF folder converted from ``record``'s (already verified) GGUF, converting it on first use."""
    final = hf_dir(record.model, record.quant)
    if is_current(final, record):
        return final
    gguf = store.model_dir(record.model) / record.file
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f"{final.name}.{os.getpid()}.partial")
    log = final.with_name(f"{final.name}.convert.log")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.perf_counter()
    try:
        with log.open("wb") as out:
            proc = subprocess.run(
                [str(python), str(SCRIPT), str(gguf), str(partial)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **OFFLINE_ENV},
                timeout=timeout_s,
                check=False,
            )
        if proc.returncode != 0:
            raise BackendError(
                f"converting {record.model}:{record.quant} from GGUF to a Hugging Face folder failed "
                f"(exit {proc.returncode}): {last_meaningful_line(log)} (log: {log})"
            )
        marker = Conversion(
            model=record.model,
            quant=record.quant,
            source_file=record.file,
            source_sha256=record.sha256,
            seconds=round(time.perf_counter() - started, 1),
        )
        (partial / MARKER).write_text(marker.model_dump_json(indent=2))
        _replace_dir(partial, final)
    except subprocess.TimeoutExpired:
        raise BackendError(
            f"converting {record.model}:{record.quant} to a Hugging Face folder took over {timeout_s:.0f} s; see {log}"
        ) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if not is_current(final, record):  # another process renamed its own conversion in first: it must match too
        raise BackendError(f"{final}: converted folder does not match {record.file}; delete the folder and rerun")
    return final


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; a stale ``dst`` is moved aside first (a directory rename cannot overwrite)."""
    if dst.exists():
        stale = dst.with_name(f"{dst.name}.{os.getpid()}.stale")
        os.replace(dst, stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.replace(src, dst)
    except OSError:
        if not dst.exists():
            raise
        # a concurrent conversion got there first; the caller checks that it matches
