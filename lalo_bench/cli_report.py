"""``lalo-bench report``: a client's report from the tracking store — notebooks, HTML, recommendation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lalo_bench.console import err, out
from lalo_bench.errors import LaloError


def report(
    profile: Annotated[
        list[str], typer.Option("--profile", "-p", help="Shipped profile name or profile YAML; repeat for several.")
    ],
    sweep: Annotated[
        list[str] | None,
        typer.Option("--sweep", help="Sweep run id or name to read; repeat for several (default: every finished one)."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: reports/PROFILE; with several, their parent).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Open the HTML in headless Chromium; fail on a JavaScript error.")
    ] = False,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log the report as an MLflow run.")] = True,
    catalog: Annotated[str | None, typer.Option(help="Catalog YAML (default: the shipped one).")] = None,
) -> None:
    """Run the three notebooks for a client profile into reports/PROFILE/ and print its recommendation."""
    from lalo_bench.report.build import HTML_FILE, build_report

    for name in profile:
        stem = Path(name).stem if name.endswith((".yaml", ".yml")) else name
        folder = (out_dir / stem if len(profile) > 1 else out_dir) if out_dir else Path("reports") / stem
        result = build_report(name, folder, sweep, catalog, log, lambda msg, s=stem: err.print(f"[dim]{s}: {msg}[/]"))
        if check:
            from lalo_bench.report.browser import check_html

            err.print(f"[dim]{stem}: opening {HTML_FILE} in headless Chromium[/]")
            checked = check_html(Path(result.folder) / HTML_FILE, screenshot=Path(result.folder) / "report.png")
            if not checked.ok:
                raise LaloError(f"{result.folder}/{HTML_FILE}: " + "; ".join(checked.problems()))
            err.print(f"[dim]{stem}: {checked.plots_rendered} plots rendered, no JavaScript errors[/]")
        out.print(result.headline, highlight=False, soft_wrap=True)
        run = f"; MLflow run {result.run_id}" if result.run_id else ""
        err.print(f"[green]ok[/] {result.folder} ({len(result.files)} files, {result.seconds:.0f} s){run}")
