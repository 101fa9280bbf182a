"""The HTML report checker against real headless Chromium.

No skip when chromium is missing: these tests then fail with the one-line install hint, which is the point
(`make` installs Debian's chromium).
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import pytest

from lalo_bench.errors import LaloError
from lalo_bench.report.browser import check_html, main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figure_div(title: str, include_plotlyjs: bool) -> str:
    fig = go.Figure(go.Bar(x=["a", "b", "c"], y=[3, 1, 2]), layout={"title": title, "width": 500, "height": 300})
    return fig.to_html(include_plotlyjs=include_plotlyjs, full_html=False)


def _page(tmp_path: Path, name: str, *, include_plotlyjs: bool = True, extra: str = "", plots: int = 2) -> Path:
    """A self-contained page like a rendered report: plotly.js inline once, then ``plots`` figures."""
    divs = [_figure_div(f"figure {i}", include_plotlyjs and i == 0) for i in range(plots)]
    html = f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{''.join(divs)}{extra}</body></html>"
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


def test_working_report_passes_and_screenshots(tmp_path: Path) -> None:
    shot = tmp_path / "shots" / "report.png"
    check = check_html(_page(tmp_path, "good.html"), screenshot=shot, expected_plots=2)
    assert check.ok, check.problems()
    assert (check.plots, check.plots_rendered) == (2, 2)
    assert check.screenshot == str(shot)
    assert shot.read_bytes()[:8] == PNG_MAGIC and shot.stat().st_size > 5000


def test_script_error_fails(tmp_path: Path) -> None:
    check = check_html(_page(tmp_path, "boom.html", extra='<script>throw new Error("boom")</script>'))
    assert not check.ok
    assert any("boom" in e for e in check.js_errors)
    assert check.plots_rendered == 2  # the figures drew; the stray script alone fails the report
    assert any("boom" in line for line in check.problems())


def test_missing_plotlyjs_fails(tmp_path: Path) -> None:
    check = check_html(_page(tmp_path, "no_js.html", include_plotlyjs=False, plots=1), timeout_s=20)
    assert not check.ok
    assert (check.plots, check.plots_rendered) == (1, 0)
    assert any("ReferenceError" in e and "Plotly" in e for e in check.js_errors)
    assert not check.plotly_js and any("include_plotlyjs=True" in line for line in check.problems())
    assert not check.timed_out  # gives up once plotly.js is known to be absent, not at the timeout


def test_outside_request_fails(tmp_path: Path) -> None:
    check = check_html(_page(tmp_path, "cdn.html", plots=1, extra='<script src="https://cdn.plot.ly/x.js"></script>'))
    assert not check.ok
    assert check.plots_rendered == 1
    assert any("cdn.plot.ly" in r for r in check.failed_requests)


def test_fewer_plots_than_expected_fails(tmp_path: Path) -> None:
    check = check_html(_page(tmp_path, "two.html"), expected_plots=3)
    assert not check.ok
    assert check.problems() == ["found 2 plotly figures, expected at least 3"]


def test_cli_reports_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = _page(tmp_path, "boom.html", plots=1, extra='<script>throw new Error("boom")</script>')
    assert main([str(page), "--expect-plots", "1"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{page}: JavaScript error: Error: boom"]


def test_missing_chromium_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LALO_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(LaloError) as info:
        check_html(_page(tmp_path, "good.html", plots=1))
    message = str(info.value)
    assert "\n" not in message
    assert "apt-get install chromium" in message and "LALO_CHROMIUM" in message
