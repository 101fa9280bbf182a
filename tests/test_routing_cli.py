"""``lalo-bench route calibrate`` end to end on a small synthetic MLflow store: the sweep's per-item tables in,
the policy, the comparison table and a routing run linked to the sweep out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lalo_bench.results import Cell, ItemRecord
from lalo_bench.suites import get_suite
from tests.conftest import cell_result, lalo

LADDER = [
    ("smollm2-135m-instruct", "q4_1", 1000.0),
    ("qwen2.5-coder-0.5b-instruct", "q4_k_m", 3000.0),
    ("qwen2.5-coder-1.5b-instruct", "q4_k_m", 9000.0),
]


def _correct(rung: int, suite: str, difficulty: int) -> bool:
    """The weakest model extracts easy documents, the middle one every document and easy arithmetic."""
    if rung == 2:
        return True
    if suite == "extraction":
        return rung == 1 or difficulty == 1
    return rung == 1 and difficulty <= 2


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A finished sweep of three models over 40 extraction and 40 reasoning items, with known outcomes."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri, _log_sweep()


def _log_sweep() -> str:
    from lalo_bench.tracking import Tracker

    tracker = Tracker("lalo-bench")
    sweep = tracker.start_sweep("routing-test", "key", {}, "name: routing-test\n")
    for rung, (model, quant, e2e) in enumerate(LADDER):
        for suite in ("extraction", "reasoning"):
            cell = Cell(model=model, quant=quant, backend="llamacpp", suite=suite, tier="cpu-local", limit=40)
            run_id = tracker.start_cell(sweep, cell, {"weights_sha256": f"{rung}" * 64})
            records = [
                ItemRecord(
                    item_id=item.id,
                    category=item.category,
                    difficulty=item.difficulty,
                    output="",
                    score=float(_correct(rung, suite, item.difficulty)),
                    correct=_correct(rung, suite, item.difficulty),
                    e2e_ms=e2e + 10 * (i % 7),
                )
                for i, item in enumerate(get_suite(suite).items(40))
            ]
            tracker.finish_cell(run_id, cell_result(records))
    tracker.finish_sweep(sweep, 0)
    return sweep.run_id


def test_route_calibrate_writes_the_policy_and_logs_a_linked_run(
    store: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, sweep_id = store
    out = tmp_path / "policy" / "routing_policy.json"
    args = ["--sweep", sweep_id, "--target-quality", "0.9", "--features", "tfidf", "--bootstrap", "50"]
    code, stdout, stderr = lalo("route", "calibrate", *args, "--out", str(out), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, stderr
    for row in ("always smollm2", "random", "keyword", "task_type", "learned", "oracle", "APGR", "CPT50/80"):
        assert row in stdout
    assert "learned - keyword: APGR" in stdout

    from lalo_bench.routing.policy import load_policy
    from lalo_bench.tracking import Tracker

    policy = load_policy(out)
    assert [m.model for m in policy.models] == [m for m, _, _ in LADDER]
    assert policy.router.type == "learned" and policy.router.features == ["tfidf"]
    assert policy.models[0].cost_per_request == pytest.approx(1.0, abs=0.1)  # device-seconds from e2e_ms
    assert policy.source.sweep_run_id == sweep_id and policy.objective.value == 0.9
    assert {p.split for p in policy.expected} == {"train", "test"}
    for name in ("comparison.csv", "curves.csv", "report.json", "weights.npz"):
        assert (out.parent / f"routing_policy.{name}").is_file()
    report = json.loads((out.parent / "routing_policy.report.json").read_text())
    assert report["train_requests"] + report["test_requests"] == 80
    equal = report["equal_quality"]
    assert equal["cost"]["oracle"] <= equal["cost"]["keyword"] and "at the keyword router's test quality" in stdout

    tracker = Tracker("lalo-bench")
    runs = tracker.routing_runs_frame(sweep_id)
    assert len(runs) == 1 and runs["status"][0] == "FINISHED" and runs["run_id"][0] == policy.source.routing_run_id
    run = tracker.client.get_run(policy.source.routing_run_id)
    assert run.data.tags["mlflow.parentRunId"] == sweep_id and run.data.tags["lalo.kind"] == "routing"
    assert "oracle.quality" in run.data.metrics and "learned.apgr" in run.data.metrics
    logged = {a.path for a in tracker.client.list_artifacts(run.info.run_id)}
    assert {"routing_policy.json", "routing_policy.weights.npz", "routing_policy.comparison.csv"} <= logged
    assert tracker.cells_frame(sweep_id)["run_id"].nunique() == 6  # the routing run is not a cell

    code, stdout, stderr = lalo(
        "route", "check", str(out), "--prompt", "Extract the invoice date.", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0, stderr
    assert stdout.startswith("ok") and "→" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--target-quality", "0.9", "--max-cost", "2"), "give exactly one of"),
        (("--target-quality", "1.5"), "out of range"),
        (("--target-quality", "0.9", "--ladder", "gpt-4,smollm2-135m-instruct"), "matches no cell"),
        (("--target-quality", "0.9", "--ladder", "smollm2-135m-instruct"), "at least two models"),
        (("--target-quality", "0.9", "--features", "bert"), "--features takes"),
        (("--target-quality", "0.9", "--test-fraction", "1.5"), "--test-fraction"),
    ],
)
def test_route_calibrate_refuses_bad_input_with_one_line(
    store: tuple[str, str],
    args: tuple[str, ...],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, sweep_id = store
    code, _, stderr = lalo("route", "calibrate", "--sweep", sweep_id, *args, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and message in stderr and stderr.strip().count("\n") == 0, stderr


def test_route_calibrate_names_a_sweep_without_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    args = ("route", "calibrate", "--sweep", "0" * 32, "--target-quality", "0.9")
    code, _, stderr = lalo(*args, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "has no finished cells" in stderr and stderr.strip().count("\n") == 0
