"""``lalo-bench route``: learn routing thresholds from a sweep, check a policy file, route a prompt with it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from lalo_bench.console import err, out, print_frame
from lalo_bench.errors import LaloError
from lalo_bench.routing.calibrate import Objective

route_app = typer.Typer(help="Route requests across a ladder of models, learned from a sweep.", no_args_is_help=True)


def _objective(target_quality: float | None, max_cost: float | None, max_p95_ms: float | None) -> Objective:
    given = {
        "target_quality": target_quality,
        "max_cost": max_cost,
        "max_p95_ms": max_p95_ms,
    }
    chosen = {k: v for k, v in given.items() if v is not None}
    if len(chosen) != 1:
        raise LaloError("give exactly one of --target-quality, --max-cost, --max-p95-ms")
    kind, value = next(iter(chosen.items()))
    if value < 0 or (kind == "target_quality" and value > 1):
        raise LaloError(f"--{kind.replace('_', '-')} out of range: {value}")
    return Objective(kind=kind, value=value)


@route_app.command("calibrate")
def calibrate(
    sweep_id: Annotated[str | None, typer.Option("--sweep", help="Sweep run id (default: the latest sweep).")] = None,
    target_quality: Annotated[
        float | None, typer.Option(help="Reach this mean quality (0–1) at the least cost.")
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option(help="Best quality within this mean cost (device-seconds per request).")
    ] = None,
    max_p95_ms: Annotated[float | None, typer.Option(help="Best quality within this p95 latency (ms).")] = None,
    ladder: Annotated[
        str | None,
        typer.Option(help="MODEL[:QUANT][@BACKEND],… cheapest first (default: every model of the sweep, by cost)."),
    ] = None,
    router: Annotated[
        Literal["learned", "keyword", "task_type"], typer.Option(help="The router the policy deploys.")
    ] = "learned",
    features: Annotated[str, typer.Option(help="Learned router features: tfidf, embed or both.")] = "tfidf,embed",
    per_task_type: Annotated[
        Literal["auto", "on", "off"], typer.Option(help="Thresholds per task type: auto = where it helps on train.")
    ] = "auto",
    test_fraction: Annotated[float, typer.Option(help="Share of requests held out for the report.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the split, the random router and the bootstrap.")] = 0,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals.")] = 1000,
    out_file: Annotated[Path, typer.Option("--out", help="Policy file to write.")] = Path("routing_policy.json"),
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "lalo-bench",
) -> None:
    """Fit routers on a sweep's per-item results, calibrate thresholds, write the policy, print the comparison."""
    from lalo_bench.routing.pipeline import CalibrateSettings, calibrate_sweep
    from lalo_bench.tracking import Tracker

    objective = _objective(target_quality, max_cost, max_p95_ms)
    kinds = [f.strip() for f in features.split(",") if f.strip()]
    unknown = [f for f in kinds if f not in ("tfidf", "embed")]
    if unknown or not kinds:
        raise LaloError(f"--features takes tfidf, embed or both, got '{features}'")
    tracker = Tracker(experiment)
    sweep_id = sweep_id or tracker.latest_sweep_id()
    if sweep_id is None:
        raise LaloError("no sweep found in the tracking store; run `lalo-bench sweep --config FILE` first")
    settings = CalibrateSettings(
        sweep_id=sweep_id, objective=objective, ladder=[s.strip() for s in ladder.split(",")] if ladder else None,
        router=router, features=kinds, per_task_type=per_task_type, test_fraction=test_fraction, seed=seed,
        resamples=bootstrap, out=out_file,
    )  # fmt: skip
    with err.status("fitting routers and calibrating thresholds"):
        result = calibrate_sweep(tracker, settings)
    ladder_text = " → ".join(m.name for m in result.policy.models)
    title = (
        f"routing on {result.test_requests} held-out requests ({result.train_requests} to train) · "
        f"{objective.label()} · {ladder_text}"
    )
    print_frame(result.comparison.display, title)
    out.print(
        f"cost: device-seconds per request on the sweep's tier (measured e2e); calls %: per model, cheapest first; "
        f"APGR, CPT: RouteLLM's, {result.policy.models[0].model} vs {result.policy.models[-1].model}; "
        "intervals: bootstrap over held-out requests",
        highlight=False,
    )
    for pair, values in result.comparison.deltas.items():
        if "apgr" in values:
            out.print(
                f"{pair}: APGR {values['apgr']:+.3f} [{values['apgr_lo']:+.3f}, {values['apgr_hi']:+.3f}], "
                f"cost {values['cost']:+.2f} s/req [{values['cost_lo']:+.2f}, {values['cost_hi']:+.2f}]",
                highlight=False,
            )
    equal = result.equal_quality
    if equal and "learned" in equal["cost"]:
        cost, saving = equal["cost"], equal["saving_vs_keyword_pct"]
        out.print(
            f"at the keyword router's test quality {equal['quality']:.3f}: learned {cost['learned']:.2f} s/req vs "
            f"keyword {cost['keyword']:.2f} ({saving['learned']:+.0f}%), oracle {cost['oracle']:.2f} "
            "(each router's cheapest point on its test envelope)",
            highlight=False,
        )
    for note in result.notes:
        out.print(f"· {note}", highlight=False)
    if not result.policy.target_met_on_train:
        err.print(
            f"[yellow]warning[/]: no thresholds of the {router} router meet {objective.label()} on the train split"
        )
    out.print(f"[green]ok[/] policy {result.files['policy']} (routing run {result.run_id}, sweep {sweep_id})")


@route_app.command("check")
def check(
    policy_file: Annotated[Path, typer.Argument(help="routing_policy.json")],
    prompt: Annotated[str | None, typer.Option(help="Route this user prompt and print the decision.")] = None,
) -> None:
    """Validate a policy as a gateway loads it (schema, weights sha256, embedding model); optionally route a prompt."""
    from lalo_bench.routing.runtime import PolicyRouter

    loaded = PolicyRouter.from_file(policy_file)
    policy = loaded.policy
    out.print(
        f"[green]ok[/] {policy_file}: {policy.router.type} router over "
        + " → ".join(m.name for m in policy.models)
        + f" ({policy.objective.kind} {policy.objective.value:g}, sweep {policy.source.sweep_run_id})",
        highlight=False,
    )
    if prompt is not None:
        decision = loaded.route([{"role": "user", "content": prompt}])
        task = f", task type {decision.task_type}" if decision.task_type else ""
        out.print(f"score {decision.score:.3f}{task} → {decision.model}", highlight=False)
