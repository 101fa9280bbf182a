"""A recommendation in words: the one-line headline and the markdown a report opens with."""

from __future__ import annotations

from lalo_bench.costs import CostComparison
from lalo_bench.recommend import Recommendation


def deployed(rec: Recommendation) -> str:
    """The chosen deployments as ``model:quant@backend (tasks)``."""
    if rec.choice is None:
        return ""
    return ", ".join(f"{d.model}:{d.quant}@{d.backend} ({', '.join(d.tasks)})" for d in rec.choice.deployments)


def break_even_text(cost: CostComparison | None) -> str:
    if cost is None:
        return ""
    parts = [
        f"{c.cloud} month {c.break_even_month}" if c.break_even_month else f"{c.cloud} not within {len(c.months)}"
        for c in cost.clouds
    ]
    return "break-even vs " + ", ".join(parts)


def headline(rec: Recommendation) -> str:
    """One line: tier, models, break-even months; or what is missing."""
    if rec.choice is None:
        needs = "; ".join(m.detail for m in rec.missing) or "no tier meets the profile"
        then = f" (that stack: {break_even_text(rec.at_best_quality_cost)})" if rec.at_best_quality_cost else ""
        return f"{rec.profile}: nothing fits — {needs}{then}"
    c = rec.choice
    speed = "measured" if c.measured else "projected"
    return (
        f"{rec.profile}: tier {c.tier} ({c.tier_name}, ${c.hardware_usd:,.0f}) serving {deployed(rec)}; "
        f"peak {rec.load.peak_rps:.2f} req/s at {c.utilisation:.0%} of {speed} capacity; {break_even_text(rec.cost)}"
    )


def markdown(rec: Recommendation) -> str:
    """The report's opening: headline, load, margins, what is missing, caveats."""
    lines = [f"## Recommendation for `{rec.profile}`", "", f"**{headline(rec)}**", ""]
    load = rec.load
    lines += [
        f"Peak load: **{load.peak_rps:.2f} requests/s**, about **{load.peak_concurrency:.1f}** in flight "
        f"({load.requests_per_day:,.0f} requests per working day).",
        "",
    ]
    if rec.choice is not None:
        c = rec.choice
        growth = f"{c.peak_growth:.1f}x" if c.peak_growth is not None else "n/a"
        lines += [
            f"- Memory: {c.memory_required_gb:.1f} of {c.memory_available_gb:.1f} GB "
            f"(margin {c.memory_margin_gb:.1f} GB)",
            f"- Capacity: {c.utilisation:.0%} used at peak, limit {c.utilisation_limit:.0%}; the peak may grow "
            f"{growth} before the limit",
            f"- Mix-weighted quality: {c.mix_quality:.2f}",
            f"- Speed evidence: {'measured' if c.measured else 'projected (roofline, calibrated)'}",
            "",
        ]
    if rec.missing:
        lines += ["### What is missing", "", *[f"- **{m.need}**: {m.detail}" for m in rec.missing], ""]
    if rec.caveats:
        lines += ["### Caveats", "", *[f"- {c}" for c in rec.caveats], ""]
    return "\n".join(lines)
