"""Plotly figures of the report's tables (:mod:`lalo_bench.report.frames`), drawn one way everywhere.

**Measured** numbers are solid: filled markers, solid lines, plain bars. **Projected** (roofline) and
**modelled** (costs from list prices) numbers are hollow markers, dashed lines and hatched bars, and say so
in the legend. A reader can tell which is which on every chart without reading the caption.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

SOURCE = {True: "measured", False: "projected"}
PATTERN = {"measured": "", "projected": "/", "modelled": "/"}
SYMBOL = {"measured": "circle", "projected": "circle-open"}
DASH = {"measured": "solid", "projected": "dash", "modelled": "dash"}
TEMPLATE = "plotly_white"


def _with_source(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(source=frame["measured"].map(SOURCE))


def _empty(title: str, why: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=why, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, template=TEMPLATE, xaxis_visible=False, yaxis_visible=False, height=260)
    return fig


def _bars(data: pd.DataFrame, x: str, y: str, color: str, hover: list[str], labels: dict[str, str],
          log_y: bool = False) -> go.Figure:  # fmt: skip
    """Grouped bars, measured solid and projected hatched: the one bar style of the report."""
    return px.bar(
        data, x=x, y=y, color=color, pattern_shape="source", pattern_shape_map=PATTERN, barmode="group",
        hover_data=hover, log_y=log_y, template=TEMPLATE, labels=labels,
    )  # fmt: skip


def pareto(frame: pd.DataFrame) -> go.Figure:
    """Quality against median end-to-end latency, one panel per suite; the front joined by a line."""
    if frame.empty:
        return _empty("Quality vs latency", "no sweep cell")
    data = _with_source(frame.dropna(subset=["latency_ms", "quality"]))
    if data.empty:
        return _empty("Quality vs latency", "no cell with both a quality and a latency")
    order = {"suite_label": sorted(set(data["suite_label"]))}
    fig = px.scatter(
        data,
        category_orders=order,
        x="latency_ms",
        y="quality",
        color="label",
        symbol="source",
        symbol_map=SYMBOL,
        facet_col="suite_label",
        facet_col_wrap=3,
        error_y="error",
        hover_data=["backend", "tier", "items", "run_id"],
        log_x=True,
        template=TEMPLATE,
        labels={"latency_ms": "e2e latency p50 (ms, log)", "quality": "quality (mean score)", "label": "model"},
    )
    # The fronts, drawn with the same facets (same order) so each lands on its suite's panel.
    front = data[data["on_front"]].sort_values("latency_ms")
    lines = px.line(
        front, x="latency_ms", y="quality", facet_col="suite_label", facet_col_wrap=3, category_orders=order,
        log_x=True,
    )  # fmt: skip
    for i, trace in enumerate(lines.data):
        trace.update(line={"color": "grey", "width": 1}, name="Pareto front", showlegend=i == 0, hoverinfo="skip")
        fig.add_trace(trace)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(title="Quality vs latency per suite (measured; bars: 95% sampling interval)", height=650)
    return fig


def throughput(frame: pd.DataFrame) -> go.Figure:
    """Decode tokens/s per request by model × quant, one colour per backend@tier; projections hatched."""
    if frame.empty:
        return _empty("Decode speed", "no speed measured or projected")
    data = _with_source(frame).assign(where=lambda f: f["backend"] + "@" + f["tier"])
    labels = {"decode_tok_s": "decode tok/s per request (log)", "label": "model:quant", "where": "backend@tier"}
    fig = _bars(data.sort_values(["label", "where"]), "label", "decode_tok_s", "where", ["quant", "users", "run_id"],
                labels, log_y=True)  # fmt: skip
    fig.update_layout(title="Decode speed by quantization, backend and tier (hatched: projected)", height=520)
    return fig


def memory_fit(frame: pd.DataFrame) -> go.Figure:
    """Memory needed per model × quant on each tier against the tier's memory (the black tick)."""
    if frame.empty:
        return _empty("Memory fit", "no model to size")
    data = _with_source(frame)
    labels = {"required_gb": "memory (GB, log)", "label": "model:quant"}
    fig = _bars(data, "tier", "required_gb", "label", ["backend", "fits", "available_gb", "run_id"], labels, log_y=True)
    caps = data.dropna(subset=["available_gb"]).drop_duplicates("tier")
    fig.add_trace(
        go.Scatter(
            x=caps["tier"], y=caps["available_gb"], mode="markers", name="usable memory of the tier",
            marker={"symbol": "line-ew-open", "size": 40, "color": "black", "line": {"width": 3}},
        )
    )  # fmt: skip
    fig.update_layout(
        title="Memory fit by tier (hatched: computed for the profile's peak; solid: peak RSS measured here)",
        height=520,
    )
    return fig


def routing(curves: pd.DataFrame, chosen: pd.DataFrame, comparison: pd.DataFrame) -> go.Figure:
    """Quality against cost of each router's threshold sweep (held-out items), and the chosen thresholds."""
    if curves.empty:
        return _empty("Routing curves", "no routing run for these sweeps (lalo-bench route calibrate)")
    # The envelope (no threshold of the router is cheaper at that quality) as the line; every threshold as a dot.
    front = curves[curves["on_cost_front"].astype(bool)] if "on_cost_front" in curves else curves
    fig = px.line(
        front.sort_values("cost"),
        x="cost",
        y="quality",
        color="router",
        markers=True,
        hover_data=["thresholds"],
        template=TEMPLATE,
        labels={"cost": "cost per request (model-seconds)", "quality": "quality on held-out items"},
    )
    if not comparison.empty:
        single = comparison[comparison["router"].str.startswith("always ")]
        fig.add_trace(
            go.Scatter(
                x=single["cost"], y=single["quality"], mode="markers+text", text=single["router"],
                textposition="top center", name="single models", marker={"symbol": "diamond", "size": 10},
            )
        )  # fmt: skip
    for split, symbol in (("test", "star"), ("train", "star-open")):
        point = chosen[chosen["split"] == split]
        if not point.empty:
            fig.add_trace(
                go.Scatter(
                    x=point["cost"], y=point["quality"], mode="markers", name=f"chosen thresholds ({split})",
                    marker={"symbol": symbol, "size": 18, "color": "black"}, hovertext=point["thresholds"],
                )
            )  # fmt: skip
    fig.update_layout(
        title="Routing: each router's cheapest thresholds per quality (measured on held-out items)", height=520
    )
    return fig


def cost(months: pd.DataFrame, break_even: pd.DataFrame) -> go.Figure:
    """Cumulative spend over 36 months: local (hardware + electricity, modelled) against the cloud prices."""
    if months.empty:
        return _empty("Cost over 36 months", "nothing recommended, so no tier to cost")
    below = months["series"].str.contains("below the quality floors").any()
    note = "<br><sup>nothing meets the floors: the stack at the best quality measured is costed</sup>"
    fig = go.Figure()
    for series, group in months.groupby("series", sort=False):
        local = str(series).startswith("local")
        fig.add_trace(
            go.Scatter(
                x=group["month"], y=group["usd"], mode="lines",
                name=f"{series} (modelled)" if local else f"{series} (list prices)",
                line={"dash": DASH["modelled"] if local else "solid", "width": 3 if local else 2},
            )
        )  # fmt: skip
    for row in break_even.itertuples():
        if row.break_even_month is not None and pd.notna(row.break_even_month):
            fig.add_vline(
                x=row.break_even_month, line_dash="dot", line_color="grey",
                annotation_text=f"break-even vs {row.cloud}: month {int(row.break_even_month)}",
            )  # fmt: skip
    fig.update_layout(
        title="Cumulative cost: local tier vs cloud APIs (dashed: modelled from price and power)"
        + (note if below else ""),
        xaxis_title="month",
        yaxis_title="cumulative USD",
        template=TEMPLATE,
        height=480,
    )
    return fig


def latency(frame: pd.DataFrame) -> go.Figure:
    """Each deployment's latency estimates as a share of the objective (≤ 1 meets it)."""
    if frame.empty:
        return _empty("Latency against objectives", "nothing recommended")
    data = _with_source(frame)
    labels = {"share_of_objective": "estimate / objective"}
    fig = _bars(data, "metric", "share_of_objective", "deployment", ["estimate", "objective"], labels)
    fig.add_hline(y=1.0, line_dash="dot", annotation_text="objective")
    fig.update_layout(title="Latency at peak load against the objectives (hatched: projected)", height=420)
    return fig
