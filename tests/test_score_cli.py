"""`lalo-bench score` scores outputs produced elsewhere; bad input exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

from lalo_bench.suites import get_suite
from tests.conftest import run_cli


def gold_outputs(n: int) -> list[dict[str, str]]:
    items = get_suite("extraction").items()[:n]
    return [{"id": i.id, "output": json.dumps(i.gold)} for i in items]  # type: ignore[attr-defined]


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_scores_right_wrong_and_invalid(tmp_path: Path) -> None:
    rows = gold_outputs(3)
    rows[1]["output"] = '{"invoice_number": "nope"}'
    rows[2]["output"] = "Sure! {not json"
    preds = write_jsonl(tmp_path / "preds.jsonl", rows)
    proc = run_cli("score", "--suite", "extraction", "--predictions", str(preds))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["suite"] == "extraction" and summary["items"] == 3
    assert summary["correct"] == 1
    assert summary["error_rate"] == 1 / 3
    per_item = [json.loads(line) for line in (tmp_path / "preds.scored.jsonl").read_text().splitlines()]
    assert [r["item_id"] for r in per_item] == [r["id"] for r in rows]
    assert per_item[0]["score"] == 1.0 and per_item[2]["error"].startswith("invalid JSON")


def test_unknown_id_is_one_line_exit_2(tmp_path: Path) -> None:
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "nope-1", "output": "{}"}])
    proc = run_cli("score", "--suite", "extraction", "--predictions", str(preds))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown item id 'nope-1'" in proc.stderr


def test_malformed_line_names_the_line(tmp_path: Path) -> None:
    rows: list[object] = [*gold_outputs(1), "{not json", {"id": 3, "output": "x"}]
    preds = write_jsonl(tmp_path / "p.jsonl", rows)
    proc = run_cli("score", "--suite", "extraction", "--predictions", str(preds))
    assert proc.returncode == 2
    assert f"{preds}:2: expected a JSON object" in proc.stderr
    assert "Traceback" not in proc.stderr
