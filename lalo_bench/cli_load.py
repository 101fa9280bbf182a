"""``lalo-bench loadtest``, ``import`` and ``launch``: serving benchmarks from the command line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lalo_bench.console import err, out, print_frame
from lalo_bench.errors import LaloError
from lalo_bench.measure.load.profiles import CliProfile, parse_list
from lalo_bench.measure.load.schemas import LoadPoint, LoadReport, Slo

if TYPE_CHECKING:
    from lalo_bench.serving.launch import RunningServer

SUMMARY_COLUMNS = {
    "target": "target",
    "requests_per_s": "req/s",
    "concurrency": "conc",
    "ttft_ms_p50": "TTFT p50",
    "ttft_ms_p99": "TTFT p99",
    "itl_ms_p50": "ITL p50",
    "itl_ms_p99": "ITL p99",
    "tpot_ms_p50": "TPOT p50",
    "e2e_ms_p50": "e2e p50",
    "output_tok_s": "out tok/s",
    "goodput_rps": "goodput/s",
    "slo_attainment": "SLO met",
    "requests_ok": "ok",
    "requests_errored": "err",
}


def summary_frame(report: LoadReport) -> pd.DataFrame:
    from lalo_bench.measure.load.report_io import point_rows

    frame = pd.DataFrame(point_rows(report))
    keep = [c for c in SUMMARY_COLUMNS if c in frame.columns]
    if frame["params"].notna().any():
        keep.insert(1, "params")
    for count in ("requests_ok", "requests_errored"):
        frame[count] = frame[count].astype(int)
    return frame[keep].rename(columns=SUMMARY_COLUMNS)


def _print_point(point: LoadPoint) -> None:
    t, i = point.ttft_ms, point.itl_ms
    line = (
        f"[green]done[/] {point.target.label()}: {point.requests.ok} ok, {point.requests.errored} errored"
        f" · {point.requests_per_s or 0:.2f} req/s · TTFT p50 {t.p50 or 0:.1f} ms · ITL p50 {i.p50 or 0:.1f} ms"
        f" · {point.output_tok_s or 0:.1f} out tok/s"
    )
    if point.stop_reason:
        line += f" · [yellow]stopped: {point.stop_reason}[/]"
    err.print(line, highlight=False)


@contextlib.contextmanager
def _server(
    url: str | None, launch: str | None, backend: str | None, quant: str | None, port: int | None, threads: int | None
) -> Iterator[tuple[str, str | None, RunningServer | None]]:
    """Yields (base url, served model name or None, running server or None)."""
    if launch is None:
        if url is None:
            raise LaloError("give --url http://HOST:PORT/v1 of a running server, or --launch MODEL to start one")
        yield url, None, None
        return
    from lalo_bench.config import load_catalog
    from lalo_bench.serving.launch import launch_server

    if backend is None:
        raise LaloError("--launch needs --backend (llamacpp-server or vllm)")
    err.print(f"starting {backend} for {launch} …")
    with launch_server(load_catalog(None), launch, quant, backend, port=port, n_threads=threads) as server:
        err.print(f"[green]ready[/] {server.url} in {server.startup_s:.1f} s (log: {server.log_path})")
        yield server.url, server.model, server


def loadtest(
    url: Annotated[str | None, typer.Option(help="Server base URL ending in /v1, e.g. http://HOST:8000/v1.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Model name to request (default: the server's first model).")
    ] = None,
    profile: Annotated[CliProfile, typer.Option(help="Load profile.")] = "sweep",
    concurrency: Annotated[
        str | None, typer.Option(help="Concurrencies, e.g. 1,16,64 (sweep: the largest is its maximum).")
    ] = None,
    rate: Annotated[str | None, typer.Option(help="Request rates (req/s) for constant/poisson, e.g. 0.5,1,2.")] = None,
    burstiness: Annotated[float, typer.Option(help="Poisson gamma shape: 1 = Poisson, <1 burstier.")] = 1.0,
    sweep_points: Annotated[int, typer.Option(help="Rates a sweep runs between synchronous and maximum.")] = 8,
    sweep_rate_type: Annotated[str, typer.Option(help="constant or poisson: how sweep rates release.")] = "constant",
    max_requests: Annotated[int | None, typer.Option(help="Requests per load point.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Seconds per load point (in-flight cut off).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Output tokens per request (fixed).")] = None,
    output_tokens: Annotated[str, typer.Option(help="Output length: N or LOW:HIGH.")] = "128",
    prompt_tokens: Annotated[str, typer.Option(help="Prompt length: N, LOW:HIGH (words) or suite:ID.")] = "128",
    ignore_eos: Annotated[bool, typer.Option(help="Ask the server to run every reply to its length.")] = False,
    api: Annotated[str, typer.Option(help="chat or completions.")] = "chat",
    temperature: Annotated[
        float, typer.Option(min=0, help="Sampling temperature (1 keeps dummy-weight models from repeating one token).")
    ] = 0.0,
    warmup: Annotated[int, typer.Option(help="Unmeasured requests before each load point.")] = 0,
    ramp_up: Annotated[float, typer.Option(help="Seconds over which concurrent slots start (0: all at once).")] = 0.0,
    busy_poll: Annotated[
        bool, typer.Option(help="Spin the client while measuring (exact stamps on VMs; burns a core).")
    ] = False,
    max_error_rate: Annotated[float, typer.Option(help="Stop a point when more than this share errors.")] = 0.5,
    slo_ttft_ms: Annotated[float | None, typer.Option(help="SLO: TTFT objective (ms).")] = None,
    slo_itl_ms: Annotated[float | None, typer.Option(help="SLO: ITL objective (ms), on each request's mean.")] = None,
    slo_e2e_ms: Annotated[float | None, typer.Option(help="SLO: end-to-end objective (ms).")] = None,
    slo_attainment: Annotated[float, typer.Option(help="Share of requests that must meet the SLO.")] = 0.9,
    output: Annotated[Path | None, typer.Option(help="Write FILE.json (+ .csv and .requests.jsonl beside).")] = None,
    track: Annotated[bool, typer.Option(help="Log to MLflow (a child run per load point).")] = True,
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "lalo-bench",
    launch: Annotated[str | None, typer.Option(help="Start this catalog model's server first (see --backend).")] = None,
    backend: Annotated[str | None, typer.Option(help="With --launch: llamacpp-server or vllm.")] = None,
    quant: Annotated[str | None, typer.Option(help="With --launch: quantization (default: the model's).")] = None,
    port: Annotated[int | None, typer.Option(help="With --launch: port (default: a free one).")] = None,
    threads: Annotated[int | None, typer.Option(help="With --launch: CPU threads for the server.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for prompts, lengths and arrivals.")] = 0,
    api_key: Annotated[str | None, typer.Option(help="Bearer key (default: $OPENAI_API_KEY).")] = None,
) -> None:
    """Load-test an OpenAI-compatible server: TTFT, ITL, TPOT, throughput and goodput per load point."""
    from lalo_bench.backends.openai_http import OpenAIHttpBackend
    from lalo_bench.measure.load.report_io import write_outputs
    from lalo_bench.measure.load.runner import Limits, PointProgress, run_loadtest
    from lalo_bench.measure.load.workload import Workload

    if api not in ("chat", "completions"):
        raise LaloError(f"--api must be chat or completions, not '{api}'")
    if sweep_rate_type not in ("constant", "poisson"):
        raise LaloError(f"--sweep-rate-type must be constant or poisson, not '{sweep_rate_type}'")
    concurrencies = parse_list(concurrency, int, "--concurrency")
    rates = parse_list(rate, float, "--rate")
    limits = Limits(
        max_requests=max_requests, max_seconds=max_seconds, warmup=warmup, max_error_rate=max_error_rate,
        ramp_up_s=ramp_up, busy_poll=busy_poll,
    )  # fmt: skip
    slo = Slo(ttft_ms=slo_ttft_ms, itl_ms=slo_itl_ms, e2e_ms=slo_e2e_ms)
    with _server(url, launch, backend, quant, port, threads) as (base_url, served_model, server):
        probe = OpenAIHttpBackend(base_url, model or served_model or "", api_key=api_key)
        offered = probe.models()
        name = model or served_model or (offered[0] if offered else None)
        if name is None:
            raise LaloError(f"{base_url} lists no models; pass --model")
        workload = Workload(
            name,
            prompt=prompt_tokens,
            output=str(max_tokens) if max_tokens else output_tokens,
            api=api,
            seed=seed,
            ignore_eos=ignore_eos,
            temperature=temperature,
        )
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("load", total=None, info="")

            def progress(p: PointProgress) -> None:
                total = p.max_requests if p.max_requests else p.max_seconds
                done = p.finished if p.max_requests else min(p.elapsed_s, p.max_seconds or 0)
                info = f"{p.finished} done · {p.errored} err · {p.in_flight} in flight"
                bar.update(task, description=p.target.label(), total=total, completed=done, info=info)

            report = run_loadtest(
                base_url,
                name,
                profile,
                workload,
                limits,
                concurrencies,
                rates,
                burstiness,
                sweep_points,
                sweep_rate_type,
                slo if not slo.is_empty() else None,
                slo_attainment,
                api_key,
                on_point=_print_point,
                progress=progress,
            )
        if server is not None:
            report.backend = f"{server.backend_kind} {server.backend_version}"
    print_frame(summary_frame(report), f"load test · {name} · {base_url}")
    if report.slo is not None:
        best = report.max_rate_meeting_slo
        verdict = f"{best:.2f} req/s" if best is not None else "none of the points"
        out.print(f"highest rate meeting {report.slo.label()} for {slo_attainment:.0%} of requests: {verdict}")
    files = write_outputs(report, output) if output else []
    for path in files:
        out.print(f"wrote {path}")
    if track:
        from lalo_bench.tracking import Tracker

        artifacts = [*files, *([Path(server.log_path)] if server is not None else [])]
        run_id = Tracker(experiment).log_load_report(report, f"loadtest-{name}", {"profile": profile}, artifacts)
        out.print(f"MLflow run {run_id} ({len(report.points)} load points)")


def import_results(
    files: Annotated[list[Path], typer.Argument(help="JSON results of vllm bench serve, GuideLLM or llama-bench.")],
    tool: Annotated[str | None, typer.Option(help="vllm, guidellm or llama-bench (default: detected).")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "lalo-bench",
    output: Annotated[Path | None, typer.Option(help="Also write the converted report here (JSON).")] = None,
) -> None:
    """Import other tools' benchmark results into lalo-bench's schema and MLflow, beside its own."""
    from lalo_bench.measure.load.importers import import_file
    from lalo_bench.measure.load.report_io import write_outputs
    from lalo_bench.tracking import Tracker

    tracker = Tracker(experiment)
    for path in files:
        report = import_file(path, tool)
        run_id = tracker.log_load_report(report, f"import-{report.source}-{path.stem}", {"file": str(path)}, [path])
        print_frame(summary_frame(report), f"{path.name} · {report.source} · {report.model}")
        out.print(f"MLflow run {run_id} ({len(report.points)} load points)")
        if output is not None:
            target = output if len(files) == 1 else output.with_name(f"{output.stem}-{path.stem}{output.suffix}")
            for written in write_outputs(report, target):
                out.print(f"wrote {written}")


def launch(
    model: Annotated[str, typer.Argument(help="Catalog model id, e.g. smollm2-135m-instruct.")],
    backend: Annotated[str, typer.Option(help="llamacpp-server or vllm.")] = "llamacpp-server",
    quant: Annotated[str | None, typer.Option(help="Quantization (default: the model's).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: a free one).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the server.")] = None,
    n_ctx: Annotated[int, typer.Option(help="Context length.")] = 2048,
) -> None:
    """Start a model's OpenAI-compatible server and keep it up until Ctrl-C (then stop it cleanly)."""
    import time

    from lalo_bench.config import load_catalog
    from lalo_bench.serving.launch import launch_server

    err.print(f"starting {backend} for {model} …")
    with launch_server(load_catalog(None), model, quant, backend, port=port, n_threads=threads, n_ctx=n_ctx) as srv:
        out.print(f"[green]ready[/] {srv.url}  model '{srv.model}'  ({srv.backend_kind} {srv.backend_version})")
        out.print(f"log: {srv.log_path}   try: lalo-bench loadtest --url {srv.url} --profile sweep --max-seconds 30")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            err.print("stopping …")
