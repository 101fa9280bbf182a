"""The one place that says where lalo-bench's own files are: nothing else in the package counts ``parents[N]``.

Everything the code reads at run time ships with it. The catalog and the client profiles are package data of
``lalo_bench`` itself. The suites' data (``eval_suites/``), the report notebooks (``notebooks/``) and the measured
cells the calibration fits on (``benchmarks/results/``) are top-level folders of the repository. A wheel carries
them inside the package, under ``lalo_bench/_data/`` (``setup.py`` copies the files :data:`SHIPPED` names there).
So the *data root* is ``lalo_bench/_data`` in an installed wheel and the repository itself in a source checkout
(an editable install included). ``$LALO_EVAL_SUITES`` replaces the suites' folder, for data generated elsewhere.

This module imports nothing but the standard library, so ``setup.py`` can load it before the package builds.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

ENV_EVAL_SUITES = "LALO_EVAL_SUITES"
PACKAGE = "lalo_bench"
PACKAGE_DATA = "_data"
"""Where a wheel keeps the repository's data folders, inside the package."""

SHIPPED: dict[str, tuple[str, ...]] = {
    "eval_suites": ("**/*",),
    "notebooks": ("*.ipynb",),
    "benchmarks/results": ("cpu_bench_cells.json", "cpu_cells.json", "gpu/*/llama-bench.json"),
}
"""Data folder (relative to the data root) → the globs of its files that ship; the rest of a folder stays in git."""

CATALOG_FILE = "catalog/default.yaml"
PROFILE_DIR = "profiles"
"""Package data of ``lalo_bench`` (declared in ``pyproject.toml``), read through :mod:`importlib.resources`."""

_PACKAGE_DIR = Path(__file__).resolve().parent


def checkout() -> Path | None:
    """The source checkout this package runs from, or None when it was installed from a wheel."""
    root = _PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "eval_suites").is_dir() else None


def data_root() -> Path:
    """The folder holding ``eval_suites/``, ``notebooks/`` and ``benchmarks/results/``."""
    packaged = _PACKAGE_DIR / PACKAGE_DATA
    if packaged.is_dir():
        return packaged
    return checkout() or packaged  # neither: the packaged path, so a missing file names where it was expected


def eval_suites() -> Path:
    """``$LALO_EVAL_SUITES`` when set, else the shipped ``eval_suites`` folder."""
    override = os.environ.get(ENV_EVAL_SUITES)
    return Path(override) if override else data_root() / "eval_suites"


def notebooks() -> Path:
    return data_root() / "notebooks"


def benchmark_results() -> Path:
    return data_root() / "benchmarks" / "results"


def package_file(relative: str) -> Path:
    """A data file of the ``lalo_bench`` package itself (``catalog/default.yaml``, ``profiles/small.yaml``)."""
    return Path(str(resources.files(PACKAGE).joinpath(relative)))


def catalog_file() -> Path:
    return package_file(CATALOG_FILE)


def profiles_dir() -> Path:
    return package_file(PROFILE_DIR)


def shipped_files(root: Path) -> list[str]:
    """Every file under ``root`` (a checkout or a data root) that :data:`SHIPPED` names, as sorted POSIX paths."""
    found: set[str] = set()
    for folder, patterns in SHIPPED.items():
        base = root / folder
        for pattern in patterns:
            found.update(_relative(base.glob(pattern), root))
    return sorted(found)


def _relative(paths: Iterable[Path], root: Path) -> Iterable[str]:
    for path in paths:
        if path.is_file() and "__pycache__" not in path.parts:
            yield path.relative_to(root).as_posix()


def portable(text: str) -> str:
    """``text`` with this machine's paths taken out, for files that are shipped or shared.

    The working folder and the checkout become relative (``/home/ann/lalo/mlflow/x.db`` → ``mlflow/x.db``, so
    ``sqlite:////home/ann/lalo/mlflow/x.db`` → ``sqlite:///mlflow/x.db``, which MLflow reads relative to the folder
    lalo-bench runs in, as it does its default store), the Python environment becomes ``<python>`` and the home
    folder ``~``.
    """
    places = [(Path.cwd(), ""), (checkout(), ""), (Path(sys.prefix), "<python>/"), (Path.home(), "~/")]
    for place, replacement in places:
        if place is not None and place.parent != place:
            here = re.escape(str(place))
            text = re.sub(here + "/", replacement, text)
            text = re.sub(here + r"(?![\w.-])", replacement.rstrip("/") or ".", text)
    return text
