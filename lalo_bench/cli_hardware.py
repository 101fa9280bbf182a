"""``lalo-bench project``: fit, memory and projected speed of a model on a hardware tier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
import typer

from lalo_bench.console import out, print_frame


def project(
    model: Annotated[str, typer.Option(help="Catalog model id, e.g. hermes-4-70b.")],
    tier: Annotated[
        str, typer.Option(help="Tier id: cpu-local, minimal, small, medium, large, enterprise, h100, h200.")
    ],
    quant: Annotated[
        str | None, typer.Option(help="Quantization (default: the tier's usual one for the model).")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="Backend id (default: follows the quant's format).")] = None,
    users: Annotated[int, typer.Option(help="Concurrent users decoding at once.")] = 1,
    context: Annotated[int, typer.Option(help="Context tokens per user.")] = 4096,
    prompt_tokens: Annotated[int, typer.Option(help="Prompt length for TTFT.")] = 512,
    slo_ttft_ms: Annotated[float, typer.Option(help="TTFT objective for 'users at SLO'.")] = 2000.0,
    slo_itl_ms: Annotated[float, typer.Option(help="ITL objective for 'users at SLO'.")] = 100.0,
    format: Annotated[Literal["table", "json"], typer.Option("--format", help="table or json.")] = "table",
    catalog: Annotated[Path | None, typer.Option(help="Catalog YAML (default: shipped).")] = None,
) -> None:
    """Does it fit, how fast, how many users: a projection from the memory model and the roofline."""
    from lalo_bench.config import load_catalog
    from lalo_bench.hardware.calibration import default_calibration
    from lalo_bench.hardware.projection import project as run_projection

    p = run_projection(
        load_catalog(catalog), model, tier, quant, backend, users, context, prompt_tokens, slo_ttft_ms, slo_itl_ms,
        calibration=default_calibration(),
    )  # fmt: skip
    if format == "json":
        out.print_json(p.model_dump_json())
        return
    m = p.memory
    verdict = "[green]fits[/]" if p.fits else "[red]does not fit[/]"
    out.print(f"{p.model}:{p.quant} on {p.backend} · tier {p.tier} · {verdict} (projected, not measured)")
    if p.efficiency.calibrated:
        err = f", leave-one-out median error ±{p.expected_error_pct:.0f}%" if p.expected_error_pct is not None else ""
        out.print(f"speed calibrated on measured cells (calibration {p.efficiency.calibration_id}{err})")
    rows = [
        ("weights", m.weights_gb),
        (f"KV cache ({p.users} user(s) × {p.context_tokens} tokens)", m.kv_cache_gb),
        ("runtime overhead", m.overhead_gb),
        ("required", m.required_gb),
        (f"available on {m.devices_used} device(s)", m.device_available_gb),
        *(
            [("system RAM llama.cpp may offload into", m.available_gb - m.device_available_gb)]
            if m.available_gb > m.device_available_gb
            else []
        ),
        ("margin", m.margin_gb if m.offload_gb else m.device_available_gb - m.required_gb),
    ]
    print_frame(pd.DataFrame(rows, columns=["memory", "GB"]), "memory")
    if p.decode_tok_s is not None:
        speed = [
            ("decode tok/s per user", p.decode_tok_s),
            ("decode tok/s, all users", p.aggregate_tok_s),
            (f"TTFT ms ({p.prompt_tokens}-token prompt)", p.ttft_ms),
            (f"users within TTFT ≤ {p.slo_ttft_ms:g} ms and ITL ≤ {p.slo_itl_ms:g} ms", float(p.users_at_slo or 0)),
        ]
        print_frame(pd.DataFrame(speed, columns=["speed", "projected"]), f"speed ({p.bound}-bound decode)")
    for note in p.notes:
        out.print(f"· {note}", highlight=False)


def project_plan(
    slo_ttft_ms: Annotated[float, typer.Option(help="TTFT objective for 'users at SLO'.")] = 2000.0,
    format: Annotated[Literal["table", "json"], typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The plan's models on the plan's five tiers at their usual quantizations: fit, memory, speed, users."""
    from lalo_bench.config import load_catalog
    from lalo_bench.hardware.calibration import default_calibration
    from lalo_bench.hardware.projection import plan_table

    catalog = load_catalog()
    rows = plan_table(catalog, slo_ttft_ms=slo_ttft_ms, calibration=default_calibration())
    if format == "json":
        out.print_json(data=[p.model_dump(mode="json") for p in rows])
        return
    frame = pd.DataFrame(
        {
            "tier": p.tier,
            "model": p.model,
            "quant": p.quant,
            "backend": p.backend,
            "fits": "yes" if p.fits else "no",
            "required GB": p.memory_required_gb,
            "available GB": p.memory_available_gb,
            "decode tok/s (1 user)": p.decode_tok_s,
            "replicas": p.replicas,
            f"users at TTFT ≤ {slo_ttft_ms / 1000:g} s": p.users_at_slo,
            "± %": "uncalibrated" if p.expected_error_pct is None else f"{p.expected_error_pct:.0f}",
        }
        for p in rows
    )
    print_frame(frame, "the plan's tiers x models (projected, not measured)")
    for tier in dict.fromkeys(p.tier for p in rows):
        fitting = sorted(
            (p for p in rows if p.tier == tier and p.fits), key=lambda p: -catalog.model(p.model).arch.params_b
        )
        missing = [p.model for p in rows if p.tier == tier and not p.fits]
        names = ", ".join(f"{p.model} ({p.quant})" for p in fitting) or "none of these models"
        out.print(f"· {tier}: fits {names}" + (f"; not {', '.join(missing)}" if missing else ""), highlight=False)
        for p in rows:
            if p.tier == tier and not p.fits:
                for note in p.notes:
                    if "catalog quants" in note or note.startswith("No quant of"):
                        out.print(f"    {note}", highlight=False)
    claims = next((p for p in rows if any("The plan says" in n for n in p.notes)), None)
    for note in claims.notes if claims else []:
        if "The plan says" in note:
            out.print(f"· {note}", highlight=False)


def project_sweep(
    tiers: Annotated[
        str, typer.Option(help="Target tiers, comma-separated.")
    ] = "minimal,small,medium,large,enterprise,h100,h200",
    sweep_id: Annotated[str | None, typer.Option("--sweep", help="Sweep run id (default: the latest sweep).")] = None,
    name: Annotated[str | None, typer.Option(help="Latest sweep with this name.")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "lalo-bench",
    calibrate: Annotated[
        bool, typer.Option(help="Calibrate on the measured cells shipped in benchmarks/results.")
    ] = True,
) -> None:
    """Project a sweep's measured cells onto tiers not at hand; logged as projected cells (lalo.measured=false)."""
    from lalo_bench.config import load_catalog
    from lalo_bench.errors import LaloError
    from lalo_bench.hardware.calibration import default_calibration
    from lalo_bench.hardware.project_sweep import project_and_log
    from lalo_bench.tracking import Tracker

    catalog = load_catalog()
    targets = [t.strip() for t in tiers.split(",") if t.strip()]
    for t in targets:
        catalog.tier(t)
    tracker = Tracker(experiment)
    sweep = sweep_id or tracker.latest_sweep_id(name)
    if sweep is None:
        raise LaloError("no sweep found: run `lalo-bench sweep --config …` first, or pass --sweep RUN_ID")
    if tracker.cells_frame(sweep).empty:
        raise LaloError(f"sweep {sweep} has no finished cells to project")
    calibration = default_calibration() if calibrate else None
    cells = project_and_log(catalog, tracker, sweep, targets, calibration, skip_done=False)
    rows = [
        {
            "tier": c.tier,
            "model": c.model,
            "quant": c.quant,
            "suite": c.suite_label,
            "fits": "yes" if c.projection.fits else "no",
            "required GB": c.projection.memory_required_gb,
            "decode tok/s": c.projection.decode_tok_s,
            "TTFT ms": c.projection.ttft_ms,
            "± %": c.expected_error_pct,
            "quality (measured)": c.quality,
        }
        for c in cells
    ]
    print_frame(pd.DataFrame(rows), f"projected cells of sweep {sweep} (not measured)")
    out.print(f"logged {len(cells)} projected cell(s) to MLflow (lalo.kind=projected_cell, lalo.measured=false)")
