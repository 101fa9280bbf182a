"""Open an HTML report in headless Chromium and check what a client would see.

A report can be valid HTML and still show blank boxes: plotly.js left out, a
figure whose plot call throws, a script fetched from a CDN the client's network
blocks. Only a real browser tells, so this one loads the file, records every
JavaScript error, console error and outside request, counts the plotly figures
that drew, and can save a screenshot.

Playwright drives Debian's chromium (``apt-get install chromium``) and never
downloads a browser of its own. Every request other than the page itself is
blocked, so a report that would reach for the network fails here even on a
machine that has one.

Usage: python -m lalo_bench.report.browser REPORT.html [--screenshot OUT.png] [--expect-plots N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pydantic import BaseModel

from lalo_bench.errors import LaloError

if TYPE_CHECKING:
    from playwright.sync_api import Page

DEBIAN_CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "install Debian's chromium: apt-get install chromium (or set LALO_CHROMIUM)"
# Root in a container needs --no-sandbox; the rest stop Chromium calling Google (refused offline, noise online).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# plotly.py's to_html writes div.plotly-graph-div; plotly.js adds js-plotly-plot once it runs. Counting both
# finds the figures whose plot call never ran, which div.js-plotly-plot alone would miss.
PLOT_STATE_JS = """() => {
  const plots = [...document.querySelectorAll('div.js-plotly-plot, div.plotly-graph-div')];
  return {
    plots: plots.length,
    rendered: plots.filter((p) => p.querySelector('svg.main-svg')).length,
    plotly: typeof window.Plotly !== 'undefined',
  };
}"""
# Fonts loaded and two frames painted, so the screenshot shows what the figures drew.
SETTLE_JS = (
    "() => document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))"
)
# Once a script has failed (or plotly.js is absent), figures that have not drawn for this long never will.
STUCK_S = 1.0


class BrowserError(LaloError):
    """Chromium is missing or could not open the report."""


class BrowserCheck(BaseModel):
    """What headless Chromium saw when it opened one report."""

    path: str
    js_errors: list[str] = []
    console_errors: list[str] = []
    failed_requests: list[str] = []
    plots: int = 0
    plots_rendered: int = 0
    plotly_js: bool = False  # whether window.Plotly existed once the page loaded
    expected_plots: int | None = None
    screenshot: str | None = None
    timed_out: bool = False
    timeout_s: float = 60

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """One line per failure, each saying what broke and where to look."""
        out = [f"JavaScript error: {e}" for e in self.js_errors]
        out += [f"console error: {e}" for e in self.console_errors]
        out += [f"request failed: {r}; a self-contained report loads nothing but itself" for r in self.failed_requests]
        if self.plots == 0:
            out.append("no plotly figures found (expected div.js-plotly-plot; was the figure output dropped?)")
        elif self.plots_rendered < self.plots:
            if not self.plotly_js:
                why = "plotly.js never loaded: embed it with include_plotlyjs=True"
            elif self.js_errors:
                why = "see the JavaScript errors"
            else:
                why = "their plot calls never ran"
            out.append(f"{self.plots - self.plots_rendered} of {self.plots} plotly figures did not render ({why})")
        if self.expected_plots is not None and self.plots < self.expected_plots:
            out.append(f"found {self.plots} plotly figures, expected at least {self.expected_plots}")
        if self.timed_out:
            out.append(f"gave up after {self.timeout_s:g} s waiting for the page to load and its figures to render")
        return out


def chromium_path() -> str:
    """The chromium to drive: $LALO_CHROMIUM, else Debian's, else the first on PATH."""
    env = os.environ.get("LALO_CHROMIUM")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise BrowserError(f"LALO_CHROMIUM={env} is not an executable file; {INSTALL_HINT}")
    if os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    found = shutil.which("chromium")
    if found:
        return found
    raise BrowserError(f"chromium not found; {INSTALL_HINT}")


def check_html(
    path: Path, screenshot: Path | None = None, expected_plots: int | None = None, timeout_s: float = 60
) -> BrowserCheck:
    """Open ``path`` in headless Chromium, wait for its figures, and report what went wrong (if anything)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise BrowserError(f"report not found: {path}; render it first or check the path")
    exe = chromium_path()
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserError(f"playwright is not installed ({exc}); pip install -e '.[report]'") from exc

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
            try:
                return _check_page(browser.new_page(), path, screenshot, expected_plots, timeout_s)
            finally:
                browser.close()
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BrowserError(f"chromium ({exe}) could not check {path.name}: {first}; try: {exe} --version") from exc


def _check_page(
    page: Page, path: Path, screenshot: Path | None, expected_plots: int | None, timeout_s: float
) -> BrowserCheck:
    """Listeners first, then navigation, so errors thrown while the page parses are caught too."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url = path.as_uri()
    check = BrowserCheck(path=str(path), expected_plots=expected_plots, timeout_s=timeout_s)

    def outside(request_url: str) -> bool:
        return unquote(request_url) != unquote(url) and not request_url.startswith(("data:", "blob:", "about:"))

    page.route(outside, lambda route: route.abort("blockedbyclient"))
    page.on("pageerror", lambda e: check.js_errors.append(f"{e.name}: {e.message}" if e.name else e.message))
    page.on("crash", lambda _: check.js_errors.append("the page crashed"))
    page.on("console", lambda m: _on_console(check, m.type, m.text))
    page.on("requestfailed", lambda r: check.failed_requests.append(f"{_short(r.url)} ({_failure(r.failure)})"))

    deadline = time.monotonic() + timeout_s
    try:
        page.goto(url, wait_until="load", timeout=timeout_s * 1000)
        state = _wait_for_plots(page, check, deadline)
        if state["plots"] == state["rendered"]:
            page.evaluate(SETTLE_JS)
    except PlaywrightTimeout:
        check.timed_out = True
        state = page.evaluate(PLOT_STATE_JS)
    check.plots, check.plots_rendered, check.plotly_js = state["plots"], state["rendered"], state["plotly"]
    if screenshot is not None:
        screenshot = Path(screenshot)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True, timeout=timeout_s * 1000)
        check.screenshot = str(screenshot)
    return check


def _wait_for_plots(page: Page, check: BrowserCheck, deadline: float) -> dict[str, Any]:
    """Poll until every figure drew, or none can any more (a script failed, no plotly.js), or the deadline."""
    last, changed = None, time.monotonic()
    while True:
        state = page.evaluate(PLOT_STATE_JS)
        now = time.monotonic()
        if state["plots"] == state["rendered"]:
            return state
        if state != last:
            last, changed = state, now
        if now - changed >= STUCK_S and (check.js_errors or not state["plotly"]):
            return state
        if now >= deadline:
            check.timed_out = True
            return state
        page.wait_for_timeout(100)


def _on_console(check: BrowserCheck, kind: str, text: str) -> None:
    # Chromium echoes each failed load as "Failed to load resource"; requestfailed already names its URL.
    if kind == "error" and not text.startswith("Failed to load resource"):
        check.console_errors.append(text)


def _failure(failure: str | None) -> str:
    if failure and failure.startswith("net::ERR_BLOCKED_BY_CLIENT"):
        return "blocked: outside the report"
    return failure or "failed"


def _short(url: str, limit: int = 160) -> str:
    return url if len(url) <= limit else url[: limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    """CLI: one line per problem (or one ok line); exit 1 when the report fails, 2 on a usage or setup error."""
    parser = argparse.ArgumentParser(
        prog="python -m lalo_bench.report.browser", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("report", type=Path, help="the HTML report to open")
    parser.add_argument("--screenshot", type=Path, help="write a full-page PNG here")
    parser.add_argument("--expect-plots", type=int, help="fail unless at least this many plotly figures are present")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for load and rendering")
    args = parser.parse_args(argv)
    try:
        check = check_html(args.report, args.screenshot, args.expect_plots, args.timeout)
    except LaloError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    problems = check.problems()
    for line in problems:
        print(f"{args.report}: {line}")
    if problems:
        return 1
    print(f"ok: {check.plots} plots rendered, no JavaScript errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
