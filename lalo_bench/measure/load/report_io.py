"""Write a load report where people read it: JSON (the points), CSV (a row per point), JSONL (every request)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lalo_bench.errors import LaloError
from lalo_bench.measure.load.schemas import LoadReport, flat_metrics


def point_rows(report: LoadReport) -> list[dict[str, object]]:
    """One flat row per load point: what was asked, then every figure."""
    rows = []
    for p in report.points:
        row: dict[str, object] = {
            "source": p.source,
            "model": report.model,
            "profile": p.target.profile,
            "target": p.target.label(),
            "target_concurrency": p.target.concurrency,
            "target_rate": p.target.rate,
        }
        row["params"] = " ".join(f"{k}={v}" for k, v in p.params.items()) or None
        row.update(flat_metrics(p))
        row["stop_reason"] = p.stop_reason
        rows.append(row)
    return rows


def write_outputs(report: LoadReport, path: Path) -> list[Path]:
    """``path`` gets the report without per-request records; ``.csv`` and ``.requests.jsonl`` go beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.summary_json() + "\n")
    csv_path = path.with_suffix(".csv")
    rows = point_rows(report)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    records_path = path.with_suffix(".requests.jsonl")
    with records_path.open("w") as fh:
        for i, p in enumerate(report.points):
            for r in p.records:
                fh.write(json.dumps({"point": i, "target": p.target.label(), **r.model_dump()}) + "\n")
    return [path, csv_path, records_path]


def read_report(path: Path) -> LoadReport:
    """A report written by :func:`write_outputs` (or ``lalo-bench loadtest --output``)."""
    try:
        return LoadReport.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise LaloError(f"{path}: no such file") from None
    except ValueError as exc:
        raise LaloError(f"{path}: not a lalo-bench load report ({str(exc).splitlines()[0]})") from None
