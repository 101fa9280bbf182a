"""The consoles and table printing every command shares."""

from __future__ import annotations

import sys

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Piped output (CI logs, `| tee`) gets a wide fixed width instead of rich's 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def print_frame(frame: pd.DataFrame, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col in frame.columns:
        table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left")
    for _, row in frame.iterrows():
        table.add_row(*[escape(fmt(v)) for v in row])
    out.print(table)


def fmt(value: object) -> str:
    if isinstance(value, float):
        if pd.isna(value):
            return "–"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)
