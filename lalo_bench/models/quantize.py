"""Derived quantizations through llama.cpp's own quantizer, recorded like any other artifact."""

from __future__ import annotations

import ctypes
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lalo_bench.config import Catalog
from lalo_bench.errors import LaloError
from lalo_bench.models import acquire, store
from lalo_bench.models.store import ArtifactRecord, ByteProgress, partial_path

UNQUANTIZED = {"f32", "f16", "bf16"}


@contextmanager
def captured_stderr() -> Iterator[Path]:
    """Send C-level stderr (llama.cpp's log) to a temp file, so a failure can quote its last line."""
    fd, name = tempfile.mkstemp(prefix="lalo-llama-", suffix=".log")
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        yield Path(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no log output"


def ensure(catalog: Catalog, model_id: str, quant: str, progress: ByteProgress | None = None) -> ArtifactRecord:
    """A verified artifact for ``model_id``/``quant``: reused, pulled or derived as the catalog says."""
    model = acquire.resolve(catalog, model_id, quant)
    record = store.read_record(model_id, quant)
    if record is not None:
        try:
            store.verified_path(record, progress)
            return record
        except LaloError:
            if model.quants[quant].derive_from is None:
                raise
    parent = model.quants[quant].derive_from
    if parent is None:
        return acquire.pull(catalog, model_id, quant, progress=progress)
    return derive(catalog, model_id, quant, progress=progress)


def derive(
    catalog: Catalog, model_id: str, quant: str, n_threads: int | None = None, progress: ByteProgress | None = None
) -> ArtifactRecord:
    """Re-quantize the catalog's parent quant of ``model_id`` into ``quant`` with llama.cpp."""
    model = acquire.resolve(catalog, model_id, quant)
    parent = model.quants[quant].derive_from
    if parent is None:
        raise LaloError(f"{model_id}:{quant} is fetched, not derived; run `lalo-bench models pull {model_id}`")
    ftype_name = catalog.quant_formats[quant].llama_ftype
    assert ftype_name is not None  # the catalog validator guarantees it for derived quants
    source = ensure(catalog, model_id, parent, progress)
    src_path = store.verified_path(source)

    import llama_cpp

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype_name}", None)
    if ftype is None:
        raise LaloError(f"this llama.cpp build has no quantization type {ftype_name}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = parent not in UNQUANTIZED
    params.nthread = n_threads or os.cpu_count() or 1
    final = store.weight_path(model_id, quant)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(final)  # llama.cpp writes it; it is renamed only after hashing
    with captured_stderr() as log:
        rc = llama_cpp.llama_model_quantize(str(src_path).encode(), str(partial).encode(), ctypes.byref(params))
    if rc != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise LaloError(f"llama.cpp could not quantize {model_id}:{parent} to {quant} (rc={rc}): {_last_line(log)}")
    log.unlink(missing_ok=True)
    digest = store.sha256_file(partial)
    size = partial.stat().st_size
    os.replace(partial, final)
    record = ArtifactRecord(
        model=model_id,
        quant=quant,
        file=final.name,
        sha256=digest,
        size_bytes=size,
        origin="derived",
        source=source.file,
        source_quant=parent,
        requantized=parent not in UNQUANTIZED,
        tool=f"llama-cpp-python {llama_cpp.__version__}",
    )
    store.write_record(record)
    return record
