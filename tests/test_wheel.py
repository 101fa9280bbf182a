"""A wheel built with ``pip wheel .`` holds every file lalo-bench reads, and runs with no checkout beside it.

The wheel is built from a copy of this checkout (so the build leaves nothing behind), installed into a folder of
its own and imported from an empty working directory: the suites, lm-eval's task files, the profiles, the
catalog, the report notebooks and the calibration's measured cells must all come out of the wheel itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from lalo_bench import datafiles

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FILES = ["catalog/default.yaml", "serving/_convert_gguf.py"] + [
    f"profiles/{p.name}" for p in sorted(datafiles.profiles_dir().glob("*.yaml"))
]
"""Files of the package the code opens by path (the rest of its .py files are imported)."""
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", ".venv-vllm", "mlflow", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"
)

PROBE = """
import json
from lalo_bench import datafiles
from lalo_bench.config import load_catalog
from lalo_bench.hardware.calibration import default_calibration
from lalo_bench.profiles import load_profile, profile_names
from lalo_bench.report.build import NOTEBOOKS, notebook_dir
from lalo_bench.suites import get_suite, suite_ids
from lalo_bench.serving.hf_convert import SCRIPT

calibration = default_calibration()
specs = list(get_suite("reasoning").specs.values())
print(json.dumps({
    "checkout": str(datafiles.checkout()),
    "data_root": str(datafiles.data_root()),
    "items": {s: len(get_suite(s).items()) for s in suite_ids()},
    "lm_eval_tasks": [s.name for s in specs],
    "lm_eval_data": all((datafiles.data_root() / f).is_file() for s in specs for f in s.data_files.values()),
    "profiles": [load_profile(p).name for p in profile_names()],
    "models": len(load_catalog().models),
    "notebooks": sorted(p.name for p in notebook_dir().glob("*.ipynb")),
    "report_notebooks": list(NOTEBOOKS),
    "calibration_cells": len(calibration.cells),
    "calibrated_groups": sorted(calibration.efficiencies),
    "convert_script": SCRIPT.is_file(),
}))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=IGNORED)
    dist = root / "dist"
    pip = [sys.executable, "-m", "pip"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-q", "-w", str(dist), "."]
    subprocess.run(build, cwd=source, check=True, capture_output=True, text=True)
    wheel = next(dist.glob("lalo_bench-*.whl"))
    target = root / "installed"
    subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True)
    return {"source": source, "wheel": wheel, "installed": target, "root": root}


def test_wheel_holds_every_shipped_file(built: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    shipped = datafiles.shipped_files(REPO)
    assert {f"lalo_bench/{datafiles.PACKAGE_DATA}/{f}" for f in shipped} <= names
    assert {f"lalo_bench/{f}" for f in PACKAGE_FILES} <= names
    # every suite file, every notebook and every calibration input is among them
    tracked = {p.relative_to(REPO).as_posix() for p in (REPO / "eval_suites").rglob("*") if p.is_file()}
    assert tracked <= set(shipped)
    assert {f"notebooks/{n}.ipynb" for n in ("01_sweep", "02_routing_thresholds", "03_recommendation")} <= set(shipped)
    assert "eval_suites/puzzles/arc-agi-1/evaluation/00576224.json" in shipped
    assert {"benchmarks/results/cpu_bench_cells.json", "benchmarks/results/cpu_cells.json"} <= set(shipped)
    assert len([f for f in shipped if f.endswith("llama-bench.json")]) == len(
        list((REPO / "benchmarks/results/gpu").glob("*/llama-bench.json"))
    )
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_installed_wheel_reads_everything_from_itself(built: dict[str, Path]) -> None:
    empty = built["root"] / "elsewhere"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LALO_", "PYTHON"))}
    env |= {"PYTHONPATH": str(built["installed"]), "HOME": str(empty)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=empty, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    there = json.loads(proc.stdout.strip().splitlines()[-1])
    assert there["checkout"] == "None"
    assert Path(there["data_root"]) == built["installed"] / "lalo_bench" / datafiles.PACKAGE_DATA

    here = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300, check=True
    )
    ours = json.loads(here.stdout.strip().splitlines()[-1])
    for key in ("checkout", "data_root"):
        ours.pop(key), there.pop(key)
    assert there == ours
    assert there["calibration_cells"] > 0 and there["calibrated_groups"] == ["llamacpp/cpu", "llamacpp/gpu"]
    assert there["items"]["puzzles"] > 0 and there["convert_script"] and there["lm_eval_data"]
    assert len(there["lm_eval_tasks"]) == 3 and there["notebooks"] == [f"{n}.ipynb" for n in there["report_notebooks"]]


def test_sdist_carries_the_same_files(built: dict[str, Path]) -> None:
    """``python -m build`` makes the wheel from the sdist: the sdist holds the data, and its wheel does too."""
    out = built["root"] / "sdist"
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=built["source"], capture_output=True, text=True, check=True)
    name = proc.stdout.strip().splitlines()[-1]
    with tarfile.open(out / name) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
        tar.extractall(out, filter="data")
    assert set(datafiles.shipped_files(REPO)) <= members
    assert {"setup.py", "lalo_bench/datafiles.py", "pyproject.toml"} <= members

    unpacked = out / name.removesuffix(".tar.gz")
    code = f"from setuptools import build_meta; print(build_meta.build_wheel({str(out)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=unpacked, capture_output=True, text=True, check=True)
    names = set(zipfile.ZipFile(out / proc.stdout.strip().splitlines()[-1]).namelist())
    assert {f"lalo_bench/{datafiles.PACKAGE_DATA}/{f}" for f in datafiles.shipped_files(REPO)} <= names
