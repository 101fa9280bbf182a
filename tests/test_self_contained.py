"""Nothing in the package or the tests names a path outside the repository, the user's cache and ``LALO_HOME``.

A clone anywhere must pass its tests, so code that climbs out of the checkout (``../shared``), names a folder of
the machine it was written on (``/work/...``, ``/tmp/...``) or reads the home folder works only where it was
written. The check reads the source (``ast``): string constants, paths climbed from ``__file__``, ``Path.home()``.
The few system locations the product really uses are listed below with the reason; anything else fails.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from lalo_bench import datafiles

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    p
    for p in [*(REPO / "lalo_bench").rglob("*.py"), *(REPO / "tests").rglob("*.py"), REPO / "setup.py"]
    if p != Path(__file__).resolve()  # this file spells out what it looks for; its own cases test it below
)

MACHINE_ROOTS = {
    *("bin", "boot", "data", "dev", "etc", "home", "lib", "lib64", "media", "mnt", "nix", "opt", "private", "proc"),
    *("root", "run", "sbin", "scratch", "shared", "snap", "srv", "sys", "tmp", "usr", "var", "work", "workspace"),
    *("Users", "Volumes"),
}
"""The top folders of Linux and macOS file systems (and this project's machines): a string starting with one is
a path of some machine."""
MACHINE_PATH = re.compile(rf"^(~(/|$)|/({'|'.join(sorted(MACHINE_ROOTS))})(/|$))")
ALLOWED: dict[tuple[str, str], str] = {
    ("lalo_bench/measure/memory.py", "/proc/"): "the kernel's view of a process: its RSS and peak",
    ("lalo_bench/serving/vllm_env.py", "/proc/cpuinfo"): "the CPU's instruction sets, to explain a vLLM's SIGILL",
    ("lalo_bench/report/browser.py", "/usr/bin/chromium"): "Debian's browser, which `make browser` installs",
    ("lalo_bench/testing/postgres.py", "/usr/lib/postgresql/"): "Debian's PostgreSQL, which `make postgres` installs",
    ("lalo_bench/datafiles.py", "~/"): "what portable() writes in place of the home folder",
}
HOME_ALLOWED = {
    "lalo_bench/models/store.py": "LALO_HOME's default, the user's cache (~/.cache/lalo-bench)",
    "lalo_bench/datafiles.py": "portable() takes the home folder out of shipped files",
}
FILE_ALLOWED = {"lalo_bench/datafiles.py", "setup.py"}
"""In the package, only the locator knows where its own files are (setup.py loads it before the package builds)."""


def _leading_text(node: ast.AST) -> str | None:
    """The text a string expression starts with: a constant, or an f-string's first literal part."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return None


def _all_text(node: ast.AST) -> list[str]:
    """Every literal piece of a string expression (an f-string's too: ``f"{root}/../shared"`` climbs out)."""
    if isinstance(node, ast.JoinedStr):
        return [str(v.value) for v in node.values if isinstance(v, ast.Constant)]
    return [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []


def _climb(node: ast.AST) -> int | None:
    """How many folders an expression climbs from ``__file__`` (None: not a path built from it)."""
    if isinstance(node, ast.Name):
        return 0 if node.id == "__file__" else None
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "Path" and node.args:
            return _climb(node.args[0])
        if isinstance(func, ast.Attribute) and func.attr in {"resolve", "absolute"}:
            return _climb(func.value)
        if isinstance(func, ast.Attribute) and func.attr == "dirname" and node.args:
            inner = _climb(node.args[0])
            return None if inner is None else inner + 1
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _climb(node.value)
        return None if inner is None else inner + 1
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
        and isinstance(node.slice, ast.Constant)
    ):
        inner = _climb(node.value.value)
        return None if inner is None else inner + int(node.slice.value) + 1
    return None


def _problems(path: Path, root: Path = REPO) -> list[str]:
    rel = path.relative_to(root).as_posix()
    depth = len(Path(rel).parts)  # climbing this many folders from the file reaches the repository's root
    found: list[str] = []
    nodes = list(ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)))
    # an f-string's later parts and a climb's inner steps are judged with the expression they belong to
    inner = {id(v) for n in nodes if isinstance(n, ast.JoinedStr) for v in n.values}
    inner |= {id(c) for n in nodes if _climb(n) is not None for c in ast.walk(n) if c is not n}
    for node in (n for n in nodes if id(n) not in inner):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        text = _leading_text(node)
        if any(t == ".." or t.startswith("../") or "/../" in t or t.endswith("/..") for t in _all_text(node)):
            found.append(f"{where}: climbs out with '..'")
        if text is not None:
            if "LALO_SHARED" in text:
                found.append(f"{where}: names LALO_SHARED, the folder beside CI's checkout")
            if MACHINE_PATH.match(text) and not any(rel == f and text.startswith(p) for f, p in ALLOWED):
                found.append(f"{where}: names a machine path {text[:60]!r}")
        climbed = _climb(node)
        if climbed is not None and rel.startswith("lalo_bench/") and rel not in FILE_ALLOWED:
            found.append(f"{where}: finds a file from __file__; ask lalo_bench.datafiles instead")
        elif climbed is not None and climbed > depth:
            found.append(f"{where}: climbs {climbed} folders from a file {depth - 1} deep, out of the repository")
        if _calls_path_home(node) and rel not in HOME_ALLOWED:
            found.append(f"{where}: reads the home folder; use lalo_bench.models.store.home() (LALO_HOME)")
    return found


def _calls_path_home(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "home"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "Path"
    )


def test_no_module_or_test_names_a_path_outside_the_repository() -> None:
    problems = [p for path in SOURCES for p in _problems(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('X = Path(__file__).resolve().parents[1] / ".." / "shared"', "climbs out with '..'"),
        ("X = Path(__file__).resolve().parents[2]", "climbs 3 folders"),
        ("X = Path(__file__).parent.parent.parent", "climbs 3 folders"),
        ("X = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))", "climbs 3 folders"),
        ('X = "/work/main/mlflow/mlflow.db"', "machine path '/work/main"),
        ('X = f"/tmp/{os.getpid()}.log"', "machine path '/tmp/"),
        ('X = f"{os.getcwd()}/../shared"', "climbs out with '..'"),
        ('X = "~/data"', "machine path '~/data'"),
        ('X = Path.home() / "data"', "reads the home folder"),
        ('X = os.environ.get("LALO_SHARED")', "names LALO_SHARED"),
    ],
)
def test_the_check_catches_each_way_out(tmp_path: Path, line: str, expected: str) -> None:
    probe = _probe(tmp_path, "tests/test_probe.py", line)  # a test's depth: parents[1] is the repository
    problems = _problems(probe, tmp_path)
    assert len(problems) == 1 and expected in problems[0], problems


def test_the_check_lets_a_test_find_the_repository_and_talk_http(tmp_path: Path) -> None:
    lines = 'X = Path(__file__).resolve().parents[1] / "eval_suites"\nY = "/v1/chat/completions"\nZ = f"{X}/v1"'
    assert _problems(_probe(tmp_path, "tests/test_probe.py", lines), tmp_path) == []


def _probe(root: Path, rel: str, line: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"import os\nfrom pathlib import Path\n{line}\n", encoding="utf-8")
    return path


def test_in_the_package_only_the_locator_finds_files_from_its_own_path(tmp_path: Path) -> None:
    probe = _probe(tmp_path, "lalo_bench/suites/probe.py", 'DATA = Path(__file__).resolve().parents[2] / "eval_suites"')
    problems = _problems(probe, tmp_path)
    assert len(problems) == 1 and "ask lalo_bench.datafiles" in problems[0], problems


def test_the_locator_finds_the_checkout_it_runs_from() -> None:
    assert datafiles.checkout() == REPO
    assert datafiles.data_root() == REPO
    assert datafiles.eval_suites() == REPO / "eval_suites"
    assert datafiles.catalog_file().is_file() and sorted(p.stem for p in datafiles.profiles_dir().glob("*.yaml"))


SHIPPED_MACHINE_PATH = re.compile(
    rf"(?<![\w.:/-])/({'|'.join(sorted(MACHINE_ROOTS - {'proc', 'dev', 'sys'}))})/[^\"\s]{{0,60}}|sqlite:////\S{{0,60}}"
)


def test_shipped_reports_carry_no_machine_paths() -> None:
    """The committed reports say where their store is in a form that means the same on any machine."""
    files = [p for p in (REPO / "reports").rglob("*") if p.is_file() and p.suffix in {".json", ".ipynb", ".csv"}]
    assert len(files) >= 20
    found = [
        f"{p.relative_to(REPO)}: {m.group(0)}"
        for p in files
        for m in SHIPPED_MACHINE_PATH.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not found, "\n".join(found[:20])
    policy = json.loads((REPO / "reports" / "routing-ladder" / "routing_policy.json").read_text(encoding="utf-8"))
    assert policy["source"]["tracking_uri"] == "sqlite:///mlflow/mlflow.db" and policy["source"]["routing_run_id"]


def test_portable_takes_the_machine_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lalo_bench.tracking import portable_uri

    monkeypatch.chdir(tmp_path)
    assert portable_uri(f"sqlite:///{tmp_path}/mlflow/mlflow.db") == "sqlite:///mlflow/mlflow.db"
    assert portable_uri(f"sqlite:///{REPO}/mlflow/mlflow.db") == "sqlite:///mlflow/mlflow.db"
    assert (
        portable_uri("postgresql://lalo:s3cret@db.example:5432/mlflow")
        == "postgresql://lalo:***@db.example:5432/mlflow"
    )
    assert portable_uri("http://mlflow.internal:5000") == "http://mlflow.internal:5000"
    assert datafiles.portable(f"{Path.home()}/models/x.gguf and {tmp_path}") == "~/models/x.gguf and ."
    assert datafiles.portable(f"{tmp_path}x/y") == f"{tmp_path}x/y"  # a sibling folder is not the working folder
