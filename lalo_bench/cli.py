"""The ``lalo-bench`` command line. Every command is a thin wrapper over a library function.

Errors a user can fix arrive as :class:`~lalo_bench.errors.LaloError` and are
printed as one line on stderr with exit code 2 — never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import click
import pandas as pd
import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from lalo_bench.cli_cluster import worker
from lalo_bench.cli_hardware import project, project_plan, project_sweep
from lalo_bench.cli_load import import_results, launch, loadtest
from lalo_bench.cli_report import report
from lalo_bench.cli_route import route_app
from lalo_bench.cli_serve import serve
from lalo_bench.cli_tracking import tracking_server
from lalo_bench.config import Catalog, load_catalog
from lalo_bench.console import err, out, print_frame
from lalo_bench.errors import LaloError

app = typer.Typer(help="Size an on-premise LLM install with evidence.", no_args_is_help=True, add_completion=False)
models_app = typer.Typer(help="Model catalog, acquisition and quantization.", no_args_is_help=True)
suites_app = typer.Typer(help="Task suites and their data.", no_args_is_help=True)
catalog_app = typer.Typer(help="The catalog of models, backends and hardware tiers.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(suites_app, name="suites")
app.add_typer(catalog_app, name="catalog")
app.add_typer(route_app, name="route")

CatalogOpt = Annotated[
    Path | None, typer.Option("--catalog", help="Catalog YAML (default: the one shipped with lalo-bench).")
]


def _catalog(path: Path | None) -> Catalog:
    return load_catalog(path)


def _bytes_progress(label: str) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err, transient=True
    )


# ---------------------------------------------------------------- models


@models_app.command("list")
def models_list(catalog: CatalogOpt = None) -> None:
    """Catalog models, their quantizations, and which are in the local store (✓)."""
    from lalo_bench.models import store

    cat = _catalog(catalog)
    table = Table(
        title=f"models (store: {store.home()})",
        title_justify="left",
        caption="✓ in the local store; * derived by llama.cpp's quantizer from another quant",
        caption_justify="left",
    )
    for col in ("id", "params", "active", "roles", "quants", "license"):
        table.add_column(col)
    for m in cat.models:
        quants = []
        for q, spec in m.quants.items():
            derived = "*" if spec.derive_from else ""
            stored = "✓" if store.read_record(m.id, q) else ""
            quants.append(f"{q}{derived}{stored}")
        active = f"{m.arch.active_params_b:g}B" if m.arch.active_params_b else ""
        table.add_row(m.id, f"{m.arch.params_b:g}B", active, ",".join(m.roles), " ".join(quants), m.license)
    out.print(table)


@models_app.command("pull")
def models_pull(
    model_id: Annotated[str, typer.Argument(help="Catalog model id, e.g. smollm2-135m-instruct.")],
    quant: Annotated[str | None, typer.Option(help="Quantization (default: the model's default).")] = None,
    from_path: Annotated[Path | None, typer.Option("--from", help="Use this local file instead of the source.")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256 where the catalog pins none.")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Fetch a model's weights into the store and verify their sha256."""
    from lalo_bench.models import acquire, store

    cat = _catalog(catalog)
    with _bytes_progress(f"pull {model_id}") as progress:
        task = progress.add_task("pull", total=None)
        record = acquire.pull(
            cat, model_id, quant, from_path, sha256, lambda d, t: progress.update(task, completed=d, total=t)
        )
    path = store.model_dir(record.model) / record.file
    out.print(f"[green]ok[/] {record.model}:{record.quant} {record.size_bytes / 2**20:.1f} MiB sha256 {record.sha256}")
    out.print(f"   {path}")


@models_app.command("quantize")
def models_quantize(
    model_id: Annotated[str, typer.Argument(help="Catalog model id.")],
    to: Annotated[str, typer.Option("--to", help="Comma-separated targets, e.g. q8_0,q5_k_m,q4_k_m,q2_k.")],
    catalog: CatalogOpt = None,
) -> None:
    """Derive quantizations with llama.cpp's own quantizer (recorded with source, sha256 and size)."""
    from lalo_bench.models import quantize

    cat = _catalog(catalog)
    for target in [t.strip().lower() for t in to.split(",") if t.strip()]:
        with _bytes_progress(f"{model_id}:{target}") as progress:
            task = progress.add_task("verify", total=None)
            record = quantize.ensure(
                cat, model_id, target, lambda d, t, task=task: progress.update(task, completed=d, total=t)
            )
        out.print(
            f"[green]ok[/] {record.model}:{record.quant} from {record.source_quant} "
            f"(requantized={record.requantized}) {record.size_bytes / 2**20:.1f} MiB sha256 {record.sha256}"
        )


# ---------------------------------------------------------------- sweep and results


@app.command()
def sweep(
    config: Annotated[Path, typer.Option("--config", "-c", help="Sweep spec YAML.")],
    new: Annotated[bool, typer.Option("--new", help="Start a new sweep even if an unfinished one can resume.")] = False,
    executor: Annotated[
        Literal["local", "ray"],
        typer.Option(
            "--executor",
            help="Where cells run: local (this machine, one after another) or ray (each on a node of its tier).",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster HOST:PORT (default: RAY_ADDRESS, then a cluster on this machine)."),
    ] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Run every model × quant × backend × suite (× tier) cell and log it to MLflow."""
    from lalo_bench import sweep as sweep_mod
    from lalo_bench.executors import get_executor
    from lalo_bench.tracking import tracking_uri

    cat = _catalog(catalog)
    spec = sweep_mod.load(config, cat)
    try:
        outcome = sweep_mod.run_sweep(spec, cat, new=new, console=err, executor=get_executor(executor, address))
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted[/]: run the same `lalo-bench sweep --config {config}` again to resume")
        raise typer.Exit(130) from None
    if not outcome.table.empty:
        print_frame(outcome.table, f"sweep {spec.name} ({outcome.run_id})")
    out.print(
        f"cells: {outcome.ran} ran, {outcome.skipped} already done, {outcome.failed} failed"
        + (f", {outcome.retired} interrupted run(s) redone" if outcome.retired else "")
        + (f", {outcome.lost} attempt(s) lost with their node" if outcome.lost else "")
    )
    _ui_hint(tracking_uri())
    if outcome.failed:
        out.print("run the same command again to redo the failed cells (finished ones stand; --new starts over)")
        raise typer.Exit(1)


def _ui_hint(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        out.print(f"open the results: mlflow ui --backend-store-uri {uri}  (then http://127.0.0.1:5000)")
    else:
        out.print(f"results are in the MLflow tracking server at {uri}")


@app.command()
def results(
    sweep_id: Annotated[str | None, typer.Option("--sweep", help="Sweep run id (default: the latest sweep).")] = None,
    name: Annotated[str | None, typer.Option(help="Latest sweep with this name.")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "lalo-bench",
    csv: Annotated[Path | None, typer.Option(help="Also write the table as CSV.")] = None,
) -> None:
    """Print the finished cells of a sweep, read back from MLflow."""
    from lalo_bench.sweep import results_table
    from lalo_bench.tracking import Tracker

    tracker = Tracker(experiment)
    sweep_id = sweep_id or tracker.latest_sweep_id(name)
    if sweep_id is None:
        raise LaloError("no sweep found in the tracking store; run `lalo-bench sweep --config FILE` first")
    table = results_table(tracker, sweep_id)
    if table.empty:
        raise LaloError(f"sweep {sweep_id} has no finished cells yet")
    print_frame(table, f"sweep {sweep_id}")
    if csv:
        table.to_csv(csv, index=False)
        out.print(f"wrote {csv}")


# ---------------------------------------------------------------- suites and catalog


def _options(pairs: list[str] | None) -> dict[str, str]:
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LaloError(f"--option expects KEY=VALUE, got '{pair}'")
        options[key] = value
    return options


OptionOpt = Annotated[list[str] | None, typer.Option("--option", help="Suite option KEY=VALUE (repeatable).")]


@suites_app.command("list")
def suites_list() -> None:
    """Suites with their task type, version, item counts and categories (data verified against manifests)."""
    from collections import Counter

    from lalo_bench.suites import get_suite, suite_ids

    rows = []
    for sid in suite_ids():
        try:
            suite = get_suite(sid)
            items = suite.items()
        except LaloError as exc:
            rows.append(
                {"suite": sid, "task type": "–", "version": "–", "items": 0, "categories": f"unavailable: {exc}"}
            )
            continue
        counts = Counter(i.category for i in items)
        rows.append(
            {
                "suite": sid,
                "task type": suite.task_type,
                "version": suite.version,
                "items": len(items),
                "categories": ", ".join(f"{c} {n}" for c, n in sorted(counts.items())),
            }
        )
    print_frame(pd.DataFrame(rows), "suites")


@app.command()
def score(
    suite: Annotated[str, typer.Option("--suite", "-s", help="Suite id.")],
    predictions: Annotated[Path, typer.Option("--predictions", "-p", help='JSONL, one {"id", "output"} a line.')],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Per-item JSONL (default: PREDICTIONS.scored.jsonl).")
    ] = None,
    option: OptionOpt = None,
) -> None:
    """Score outputs produced elsewhere: per-item JSONL to a file, the summary JSON on stdout."""
    from lalo_bench import scoring
    from lalo_bench.suites import get_suite

    the_suite = get_suite(suite, _options(option))
    records = scoring.score_predictions(the_suite, scoring.read_predictions(predictions), str(predictions))
    target = out_file or predictions.with_suffix(".scored.jsonl")
    scoring.write_records(records, target)
    print(scoring.summarize(the_suite, records).model_dump_json(indent=2))
    err.print(f"per-item scores: {target}")


GENERATED_SUITES = {
    "extraction": "lalo_bench.suites.extraction",
    "reasoning": "lalo_bench.suites.reasoning_data",
    "puzzles": "lalo_bench.suites.puzzles",
}
"""Suites whose data is made by a seeded generator: module with ``write_dataset(out_dir, seed=…)``."""


@suites_app.command("generate")
def suites_generate(
    suite: Annotated[str, typer.Argument(help=f"Suite id ({', '.join(GENERATED_SUITES)}).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder (default: the repository's eval_suites/<suite>/v1).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Generator seed (default: the shipped data's).")] = None,
    count: Annotated[int | None, typer.Option(help="Number of items (extraction only).")] = None,
) -> None:
    """Regenerate a suite's data and manifest; the shipped seed reproduces the shipped files byte for byte."""
    from importlib import import_module

    from lalo_bench.suites.manifest import load_manifest

    if suite == "tool_calls":  # not generated: copied out of the pinned bfcl-eval wheel
        from lalo_bench.models.acquire import download_wheel
        from lalo_bench.suites import tool_calls

        wheel = download_wheel(tool_calls.BFCL_PACKAGE, tool_calls.BFCL_VERSION)
        manifest_path = tool_calls.write_dataset(out_dir or tool_calls.default_data_dir(), wheel)
        out.print(f"[green]ok[/] tool_calls: BFCL data from {wheel.name} → {manifest_path}")
        return
    if suite not in GENERATED_SUITES:
        raise LaloError(f"suite '{suite}' has no generator (generators: {', '.join(GENERATED_SUITES)}, tool_calls)")
    if count is not None and suite != "extraction":
        raise LaloError("--count applies to the extraction suite only")
    module = import_module(GENERATED_SUITES[suite])
    data_module = import_module(f"lalo_bench.suites.{suite}")
    target = out_dir or data_module.default_data_dir()
    kwargs: dict[str, int] = {"seed": seed} if seed is not None else {}
    if count is not None:
        kwargs["count"] = count
    manifest_path = module.write_dataset(target, **kwargs)
    manifest = load_manifest(Path(manifest_path).parent)
    out.print(f"[green]ok[/] {suite}: {manifest.count} items, seed {manifest.seed} → {manifest_path}")


@catalog_app.command("check")
def catalog_check(path: Annotated[Path | None, typer.Argument(help="Catalog YAML (default: shipped).")] = None) -> None:
    """Validate a catalog file."""
    cat = _catalog(path)
    out.print(f"[green]ok[/] {len(cat.models)} models, {len(cat.tiers)} tiers, {len(cat.backends)} backends")


@catalog_app.command("tiers")
def catalog_tiers(catalog: CatalogOpt = None) -> None:
    """Hardware tiers with their spec-sheet figures."""
    cat = _catalog(catalog)
    rows = [
        {
            "id": t.id,
            "hardware": f"{t.devices}× {t.device}",
            "memory GB": t.total_memory_gb,
            "GB/s per device": t.memory_bandwidth_gbs,
            "FP16 TFLOPS per device": t.fp16_tflops,
            "price $": t.price_usd,
            "power W": t.power_w,
        }
        for t in cat.tiers
    ]
    print_frame(pd.DataFrame(rows), "hardware tiers")


app.command()(loadtest)
app.command("import")(import_results)
app.command()(launch)
app.command()(project)
app.command("project-plan")(project_plan)
app.command("project-sweep")(project_sweep)
app.command("worker")(worker)
app.command()(report)
app.command()(serve)
app.command("tracking-server")(tracking_server)


def main() -> None:
    """Console entry point: one line per user error, exit code 2."""
    try:
        code = app(standalone_mode=False)
    except LaloError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    if isinstance(code, int):
        sys.exit(code)


if __name__ == "__main__":
    main()
