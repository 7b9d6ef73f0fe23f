"""Printing for the command line: user text (names, paths, messages) is shown as written, never read as rich markup."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def say(label: str, style: str, text: str) -> None:
    """One line on stderr: a styled `label:`, then `text` as written."""
    err.print(f"[{style}]{label}:[/] {escape(text)}", highlight=False)


def progress_line(line: str) -> None:
    """A progress line of a long command, on stderr, as written."""
    err.print(line, highlight=False, markup=False)


def table_of(df, title: str) -> Table:
    """A rich table of a DataFrame: floats to 4 significant digits, every cell as written."""
    table = Table(title=escape(title))
    for column in df.columns:
        table.add_column(escape(str(column)), justify="right")
    for row in df.itertuples(index=False):
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else escape(str(v)) for v in row])
    return table
