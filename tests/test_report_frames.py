"""The report's tables, headline, figures and sweep lookup on hand-made inputs whose right answer is known.

Cell frames are built in the shape :meth:`lalo_bench.tracking.Tracker.cells_frame` returns; recommendations come
from :func:`lalo_bench.recommend.recommend` on the hand evidence of ``tests.test_recommend``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest

from lalo_bench.config import Catalog
from lalo_bench.errors import LaloError
from lalo_bench.recommend import Evidence, Recommendation, sampling_error
from lalo_bench.report import charts, evidence, frames, summary
from tests.test_recommend import quality, run, speed

CELL_COLUMNS = [
    "run_id", "model", "quant", "backend", "tier", "suite", "suite_label", "quality", "items",
    "e2e_ms_p50", "decode_tok_s", "peak_rss_mb",
]  # fmt: skip


def cell(run_id: str, model: str = "m", quant: str = "q4_k_m", **kw: Any) -> dict[str, Any]:
    """One row of a cells frame; the suite label defaults to the suite."""
    row: dict[str, Any] = {
        "run_id": run_id,
        "model": model,
        "quant": quant,
        "backend": "llamacpp",
        "tier": "cpu-local",
        "suite": "extraction",
        "quality": 0.5,
        "items": 100.0,
        "e2e_ms_p50": 1000.0,
        "decode_tok_s": 20.0,
        "peak_rss_mb": 512.0,
    } | kw
    row.setdefault("suite_label", row["suite"])
    return row


def cells_frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=CELL_COLUMNS)


@pytest.fixture
def fitted(catalog: Catalog) -> Recommendation:
    """big on small: 10 users at the SLO carry the 1.87 concurrent requests of the hand profile."""
    rec = run(Evidence(quality=quality("big", 0.8, 0.8, 0.8), speed=[speed("small", "big", 10)]), catalog)
    assert rec.choice is not None and rec.cost is not None
    return rec


@pytest.fixture
def nothing(catalog: Catalog) -> Recommendation:
    """Nothing fits, and not for quality alone (the only model never fits in memory): no stack to cost at all."""
    rec = run(Evidence(quality=quality("big", 0.9, 0.9, 0.9), speed=[speed("small", "big", 10, fits=False)]), catalog)
    assert rec.choice is None and rec.missing and rec.at_best_quality is None
    return rec


@pytest.fixture
def too_weak(catalog: Catalog) -> Recommendation:
    """Nothing fits for quality alone: the stack at the best quality measured is costed, flagged as below the floors."""
    rec = run(Evidence(quality=quality("big", 0.4, 0.4, 0.4), speed=[speed("small", "big", 10)]), catalog)
    assert rec.choice is None and rec.at_best_quality is not None and rec.at_best_quality_cost is not None
    return rec


# ---------------------------------------------------------------- pareto


def test_pareto_marks_exactly_the_non_dominated_cells() -> None:
    cells = cells_frame(
        cell("fast", model="a", quality=0.5, e2e_ms_p50=100.0, items=100.0),
        cell("tie", model="b", quality=0.5, e2e_ms_p50=100.0, items=50.0),  # ties fast: neither beats the other
        cell("good", model="c", quality=0.8, e2e_ms_p50=400.0, items=40.0),
        cell("beaten", model="d", quality=0.6, e2e_ms_p50=500.0, items=80.0),  # good is better and faster
        cell("oracle", model="e", backend="solver", quality=1.0, e2e_ms_p50=float("nan"), items=20.0),
        cell("other", model="d", suite="reasoning", quality=0.1, e2e_ms_p50=900.0),  # alone on its suite
    )
    out = frames.pareto(cells)
    assert len(out) == 6
    front = dict(zip(out["run_id"], out["on_front"], strict=True))
    assert front == {"fast": True, "tie": True, "good": True, "beaten": False, "oracle": False, "other": True}
    oracle = out[out["run_id"] == "oracle"].iloc[0]
    assert math.isnan(oracle["latency_ms"]) and oracle["label"] == "e:q4_k_m"
    for row in out.itertuples():
        assert row.error == pytest.approx(sampling_error(row.quality, int(row.items)))
    assert out.loc[out["run_id"] == "good", "error"].item() == pytest.approx(1.96 * math.sqrt(0.8 * 0.2 / 40))
    assert out["measured"].all()
    assert list(out["suite_label"]) == ["extraction"] * 5 + ["reasoning"]
    assert list(out["run_id"][:2]) in (["fast", "tie"], ["tie", "fast"]) and out["run_id"][4] == "oracle"


def test_pareto_per_suite_label_and_missing_items() -> None:
    cells = cells_frame(
        cell("native", suite="tool_calls", suite_label="tool_calls[mode=native]", quality=0.9, e2e_ms_p50=900.0),
        cell("prompt", suite="tool_calls", suite_label="tool_calls[mode=prompt]", quality=0.2, e2e_ms_p50=1000.0),
        cell("no-items", suite="tool_calls", suite_label="tool_calls[mode=prompt]", quality=0.3, items=float("nan")),
    )
    out = frames.pareto(cells).set_index("run_id")
    # a worse mode is still the front of its own panel; prompt is beaten only within its label
    assert out.loc["native", "on_front"] and out.loc["no-items", "on_front"] and not out.loc["prompt", "on_front"]
    assert out.loc["no-items", "error"] is None or pd.isna(out.loc["no-items", "error"])


# ---------------------------------------------------------------- quality evidence


def test_quality_evidence_keeps_the_tightest_then_best_cell() -> None:
    cells = cells_frame(
        cell("r-native", suite="tool_calls", suite_label="tool_calls[mode=native]", quality=0.6, items=50.0),
        cell("r-prompt", suite="tool_calls", suite_label="tool_calls[mode=prompt]", quality=0.7, items=50.0),
        cell("r-ext-100", quality=0.5, items=100.0),
        cell("r-ext-40", quality=0.9, items=40.0),  # better, but fewer items: a wider interval
        cell("r-ext-nan", quality=float("nan"), items=500.0),  # no score: not evidence
        cell("r-q8", quant="q8_0", suite="tool_calls", suite_label="tool_calls[mode=native]", quality=0.65),
        cell("r-solver", model="solver", backend="solver", suite="puzzles", quality=1.0),
        cell("r-gsm8k", suite="gsm8k", quality=0.9),
    )
    out = {(q.model, q.quant, q.suite): q for q in evidence.quality_evidence(cells)}
    assert set(out) == {("m", "q4_k_m", "tool_calls"), ("m", "q4_k_m", "extraction"), ("m", "q8_0", "tool_calls")}
    tool = out["m", "q4_k_m", "tool_calls"]
    assert (tool.quality, tool.run_id, tool.items, tool.source) == (0.7, "r-prompt", 50, "measured")
    assert tool.note.startswith("tool_calls[mode=prompt]")
    assert "best of tool_calls[mode=native], tool_calls[mode=prompt]" in tool.note
    ext = out["m", "q4_k_m", "extraction"]
    assert (ext.quality, ext.run_id, ext.items, ext.note) == (0.5, "r-ext-100", 100, "extraction")
    q8 = out["m", "q8_0", "tool_calls"]
    assert (q8.run_id, q8.note) == ("r-q8", "tool_calls[mode=native]")


def test_quality_evidence_of_oracles_and_other_suites_only_is_empty() -> None:
    cells = cells_frame(
        cell("r-solver", model="solver", backend="solver", suite="puzzles", quality=1.0),
        cell("r-gsm8k", suite="gsm8k", quality=0.9),
    )
    assert evidence.quality_evidence(cells) == []


# ---------------------------------------------------------------- throughput


def test_throughput_measured_load_and_projected_rows() -> None:
    cells = cells_frame(
        cell("c-1", decode_tok_s=25.0),
        cell("c-solver", backend="solver", decode_tok_s=1e6),
        cell("c-nan", quant="q8_0", decode_tok_s=float("nan")),
        cell("c-zero", quant="f16", decode_tok_s=0.0),
    )
    load = pd.DataFrame(
        [
            {"run_id": "lp-1", "model": "m:q4_1", "backend": "llamacpp_server 0.3.36", "tpot_ms_p50": 20.0,
             "concurrency": 3.7},
            {"run_id": "lp-imported", "model": "smollm2", "backend": "vllm", "tpot_ms_p50": 10.0, "concurrency": 1.0},
            {"run_id": "lp-nan", "model": "m:q4_1", "backend": "llamacpp", "tpot_ms_p50": float("nan"),
             "concurrency": 1.0},
        ]
    )  # fmt: skip
    ev = Evidence(
        speed=[
            speed("small", "big", 10, source="projected", decode_tok_s=40.0, run_id="cal-1"),  # at 4 users
            speed("medium", "big", 10, decode_tok_s=80.0, run_id="lt-1"),  # a measured load test on the tier
            speed("minimal", "big", None, fits=False, decode_tok_s=5.0, run_id="cal-2"),
        ]
    )
    out = frames.throughput(cells, ev, load).set_index("run_id")
    assert set(out.index) == {"c-1", "lp-1", "cal-1", "lt-1"}
    c1 = out.loc["c-1"]
    assert (c1["label"], c1["decode_tok_s"], c1["users"], c1["measured"], c1["tier"]) == (
        "m:q4_k_m", 25.0, 1, True, "cpu-local"
    )  # fmt: skip
    lp = out.loc["lp-1"]
    assert lp["decode_tok_s"] == pytest.approx(50.0)
    assert (lp["label"], lp["quant"], lp["backend"], lp["users"], lp["measured"], lp["tier"]) == (
        "m:q4_1", "q4_1", "llamacpp_server", 4, True, "cpu-local"
    )  # fmt: skip
    proj = out.loc["cal-1"]
    assert (proj["label"], proj["tier"], proj["users"], proj["decode_tok_s"], proj["measured"]) == (
        "big:q4_k_m", "small", 4, 40.0, False
    )  # fmt: skip
    assert bool(out.loc["lt-1", "measured"]) is True


def test_throughput_load_point_without_achieved_concurrency() -> None:
    # one point logged an achieved concurrency and the other did not: the frame holds NaN for the second
    load = pd.DataFrame(
        [
            {"run_id": "lp-1", "model": "m:q4_1", "backend": "llamacpp", "tpot_ms_p50": 20.0, "concurrency": 3.7},
            {"run_id": "lp-2", "model": "m:q4_1", "backend": "llamacpp", "tpot_ms_p50": 25.0, "concurrency": None},
        ]
    )
    out = frames.throughput(cells_frame(), Evidence(), load).set_index("run_id")
    assert out.loc["lp-2", "decode_tok_s"] == pytest.approx(40.0) and out.loc["lp-2", "users"] >= 1


def test_throughput_without_load_points_or_anything() -> None:
    assert frames.throughput(cells_frame(), Evidence()).empty
    out = frames.throughput(cells_frame(cell("c-1")), Evidence(), pd.DataFrame())
    assert list(out["run_id"]) == ["c-1"]


# ---------------------------------------------------------------- memory fit


def test_memory_fit_projected_and_measured_rows() -> None:
    ev = Evidence(
        speed=[
            speed("small", "big", 10, memory=18.0, run_id="cal-1"),
            speed("minimal", "big", None, fits=False, memory=18.0, memory_available_gb=15.5, run_id="cal-2"),
        ]
    )
    cells = cells_frame(
        cell("r-1", peak_rss_mb=1024.0),
        cell("r-2", suite="reasoning", peak_rss_mb=2048.0),  # same model × quant × backend: the max counts
        cell("r-3", quant="q8_0", peak_rss_mb=float("nan")),  # nothing measured
        cell("r-4", backend="transformers", peak_rss_mb=512.0),
    )
    out = frames.memory_fit(ev, cells)
    projected = out[~out["measured"]].set_index("tier")
    assert set(projected.index) == {"small", "minimal"}
    assert projected.loc["small", "fits"] and not projected.loc["minimal", "fits"]
    assert (projected.loc["minimal", "required_gb"], projected.loc["minimal", "available_gb"]) == (18.0, 15.5)
    assert projected.loc["minimal", "run_id"] == "cal-2"
    measured = out[out["measured"]].set_index("backend")
    assert set(measured["tier"]) == {"cpu-local"} and set(measured["label"]) == {"m:q4_k_m"}
    assert measured.loc["llamacpp", "required_gb"] == pytest.approx(2.0)
    assert measured.loc["transformers", "required_gb"] == pytest.approx(0.5)
    assert measured["fits"].all() and measured["available_gb"].isna().all()
    assert len(out) == 4


def test_memory_fit_without_peak_rss() -> None:
    out = frames.memory_fit(Evidence(speed=[speed("small", "big", 10)]), cells_frame().drop(columns="peak_rss_mb"))
    assert len(out) == 1 and not out["measured"].any()


# ---------------------------------------------------------------- costs


def test_cost_months_and_break_even_follow_the_cost_series(fitted: Recommendation) -> None:
    cost = fitted.cost
    assert cost is not None and cost.tier == "small" and cost.clouds
    months = frames.cost_months(fitted)
    local = months[months["series"] == "local: small"].sort_values("month")
    assert local["month"].tolist() == list(range(1, cost.horizon_months + 1))
    assert local["usd"].iloc[0] == pytest.approx(cost.hardware_usd + cost.running_monthly_usd)
    assert local["usd"].diff().dropna().to_numpy() == pytest.approx(cost.running_monthly_usd)
    for c in cost.clouds:
        series = months[months["series"] == f"cloud: {c.cloud}"]
        assert series["usd"].tolist() == pytest.approx([m * c.cloud_monthly_usd for m in series["month"]])
    assert len(months) == cost.horizon_months * (len(cost.clouds) + 1)

    even = frames.break_even(fitted)
    assert even["cloud"].tolist() == [c.cloud for c in cost.clouds]
    # $2,000 + $11.7/month against $814 (GPT-4) and $130 (Claude 3.5) a month: months 2.5 and 16.9, rounded up
    assert dict(zip(even["cloud"], even["break_even_month"], strict=True)) == {"gpt-4": 3, "claude-3.5": 17}
    for row, c in zip(even.itertuples(), cost.clouds, strict=True):
        expected = c.break_even_month
        assert (row.break_even_month == expected) if expected is not None else pd.isna(row.break_even_month)
        assert row.hardware_usd == cost.hardware_usd == 2000
        assert row.local_running_monthly_usd == cost.running_monthly_usd
    # the break-even month is the first month the local line is at or below the cloud's in the months frame
    for c in cost.clouds:
        cloud = months[months["series"] == f"cloud: {c.cloud}"].set_index("month")["usd"]
        below = [m for m in cloud.index if local.set_index("month").loc[m, "usd"] <= cloud[m] + 1e-6]
        assert (below[0] if below else None) == c.break_even_month


def test_cost_frames_are_empty_when_nothing_fits(nothing: Recommendation) -> None:
    months = frames.cost_months(nothing)
    assert months.empty and list(months.columns) == ["month", "series", "usd"]
    assert frames.break_even(nothing).empty
    assert frames.deployments(nothing).empty and frames.latency_checks(nothing).empty


def test_cost_frames_of_the_stack_at_the_best_quality_are_flagged(too_weak: Recommendation) -> None:
    months = frames.cost_months(too_weak)
    assert "local: small (below the quality floors)" in set(months["series"])
    table = frames.break_even(too_weak)
    assert not table["meets_the_profile"].any() and set(table["tier"]) == {"small"}
    assert list(table["break_even_month"]) == [c.break_even_month for c in too_weak.at_best_quality_cost.clouds]
    fig = charts.cost(months, table)
    assert "best quality measured" in fig.layout.title.text
    assert frames.deployments(too_weak).empty  # the stack is not recommended: no deployment table


# ---------------------------------------------------------------- headline


def test_headline_of_a_fit(fitted: Recommendation) -> None:
    text = summary.headline(fitted)
    assert text.startswith("hand: tier small") and "\n" not in text
    assert "big:q4_k_m@llamacpp (tool_calls, extraction, reasoning)" in text
    assert "measured capacity" in text and "break-even vs gpt-4 month 3, claude-3.5 month 17" in text
    assert fitted.cost is not None
    for c in fitted.cost.clouds:
        when = f"month {c.break_even_month}" if c.break_even_month else f"not within {len(c.months)}"
        assert f"{c.cloud} {when}" in text


def test_headline_when_nothing_fits(nothing: Recommendation) -> None:
    text = summary.headline(nothing)
    assert text.startswith("hand: nothing fits")
    for m in nothing.missing:
        assert m.detail in text
    assert "What is missing" in summary.markdown(nothing)


# ---------------------------------------------------------------- charts


def _pattern(trace: Any) -> str:
    return trace.marker.pattern.shape or ""


def test_throughput_chart_hatches_projections() -> None:
    ev = Evidence(speed=[speed("small", "big", 10, source="projected", decode_tok_s=40.0)])
    fig = charts.throughput(frames.throughput(cells_frame(cell("c-1")), ev))
    projected = [t for t in fig.data if "projected" in t.name]
    measured = [t for t in fig.data if "measured" in t.name]
    assert projected and measured
    assert all(_pattern(t) for t in projected) and not any(_pattern(t) for t in measured)


def test_memory_chart_hatches_projections() -> None:
    out = frames.memory_fit(Evidence(speed=[speed("small", "big", 10)]), cells_frame(cell("c-1")))
    fig = charts.memory_fit(out)
    bars = [t for t in fig.data if t.type == "bar"]
    assert {_pattern(t) for t in bars if "projected" in t.name} == {charts.PATTERN["projected"]}
    assert {_pattern(t) for t in bars if "measured" in t.name} == {""}
    assert any(t.name == "usable memory of the tier" for t in fig.data)


def test_pareto_chart_symbols_and_front() -> None:
    frame = frames.pareto(
        cells_frame(cell("a", model="a", quality=0.5, e2e_ms_p50=100.0), cell("b", model="b", quality=0.9))
    )
    frame.loc[frame["run_id"] == "b", "measured"] = False  # a projected point must look hollow
    fig = charts.pareto(frame)
    symbols = {t.name: t.marker.symbol for t in fig.data if t.mode == "markers"}
    assert symbols == {
        "a:q4_k_m, measured": charts.SYMBOL["measured"],
        "b:q4_k_m, projected": charts.SYMBOL["projected"],
    }
    assert any(t.name == "Pareto front" for t in fig.data)


def test_cost_chart_dashes_the_modelled_local_line(fitted: Recommendation) -> None:
    fig = charts.cost(frames.cost_months(fitted), frames.break_even(fitted))
    local = [t for t in fig.data if t.name.startswith("local")]
    assert len(local) == 1 and local[0].line.dash == charts.DASH["modelled"]
    assert all(t.line.dash == "solid" for t in fig.data if t.name.startswith("cloud"))


def _annotated(fig: go.Figure) -> bool:
    return isinstance(fig, go.Figure) and not fig.data and len(fig.layout.annotations) == 1


def test_every_chart_draws_an_empty_frame(nothing: Recommendation) -> None:
    empty = cells_frame()
    assert _annotated(charts.pareto(frames.pareto(empty)))
    assert _annotated(charts.throughput(frames.throughput(empty, Evidence())))
    assert _annotated(charts.memory_fit(frames.memory_fit(Evidence(), empty)))
    assert _annotated(charts.cost(frames.cost_months(nothing), frames.break_even(nothing)))
    assert _annotated(charts.latency(frames.latency_checks(nothing)))
    missing = Path("/nonexistent/routing_policy.json")
    assert _annotated(
        charts.routing(frames.routing_curves(missing), pd.DataFrame(), frames.routing_comparison(missing))
    )
    for draw in (charts.throughput, charts.memory_fit, charts.latency):  # a frame without columns too
        assert _annotated(draw(pd.DataFrame()))


# ---------------------------------------------------------------- sweeps


def test_resolve_sweeps_names_what_is_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lalo_bench.tracking import Tracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    tracker = Tracker()
    with pytest.raises(LaloError) as info:
        evidence.resolve_sweeps(tracker, None)
    assert "no finished sweep" in str(info.value) and "\n" not in str(info.value)

    ladder = tracker.start_sweep("ladder", "key-1", {}, "name: ladder\n")
    tracker.finish_sweep(ladder, 0)
    tracker.start_sweep("unfinished", "key-2", {}, "name: unfinished\n")
    assert evidence.resolve_sweeps(tracker, None) == [ladder.run_id]
    assert evidence.resolve_sweeps(tracker, ["ladder", ladder.run_id]) == [ladder.run_id]
    for wanted in ("nope", "unfinished"):
        with pytest.raises(LaloError) as info:
            evidence.resolve_sweeps(tracker, [wanted])
        message = str(info.value)
        assert f"no finished sweep '{wanted}'" in message and f"ladder ({ladder.run_id[:8]})" in message
        assert "unfinished (" not in message and "\n" not in message
