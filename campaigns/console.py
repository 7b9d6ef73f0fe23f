"""Printing for the command line: user text (names, paths, messages) is shown as written, never read as rich markup.

Every error ends the same way: one line on stderr and exit code 1. `--debug` (`set_debug`) shows
the traceback instead.
"""

from __future__ import annotations

import io
import re
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup
from typer.exceptions import TyperException

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
_state = {"debug": False}
MESSAGE_CHARS = 2000  # an error line longer than this is cut (a message may quote user input)


def say(label: str, style: str, text: str) -> None:
    """One line on stderr: a styled `label:`, then `text` as written."""
    err.print(f"[{style}]{label}:[/] {escape(text)}", highlight=False)


def set_debug(on: bool) -> None:
    _state["debug"] = on


def fail(error: Exception) -> NoReturn:
    """End the command: `error` as one line and exit code 1 (with `--debug`: raise it)."""
    if _state["debug"]:
        raise error
    say("error", "bold red", one_line(str(error)))
    raise typer.Exit(1)


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    """`text` on one line (whitespace runs collapsed), cut to about `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters in all)"


class OneLineErrors(TyperGroup):
    """The `valley` command group: an unexpected error in any command ends in one line and a hint.

    Errors Valley expects (bad input) are reported by each command; anything else (a bug, a full
    disk) is caught here, so no raw traceback reaches the user unless `--debug` asks for it.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except Exception as error:
            if _state["debug"]:
                raise
            command = ctx.invoked_subcommand or "COMMAND"
            detail = one_line(str(error), 300)
            say(
                "error",
                "bold red",
                f"unexpected {type(error).__name__}{': ' + detail if detail else ''}. Rerun with "
                f"`valley --debug {command} ...` to see the full traceback, and report it if the cause is not clear.",
            )
            raise typer.Exit(1) from None


def user_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean bad input (a command reports them in one line), imported on first use."""
    from data import DataFileError
    from design import InputError

    return (InputError, DataFileError)


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


LONG_NAME = 12  # a name in a column header longer than this is abbreviated, with a legend under the table
SUFFIXES = ("_mean", "_sd")
# column importance, most important first: the rest (the design's parameters) come with rank 0
RANKS = (
    (("rank", "role", "all_met", "p_safe"), 0),
    (("objective", "meets_confidence"), 1),
    (("p_feasible", "expected_objective", "distance_to_data", "hessian_max_eig", "candidate_row"), 4),
)


def print_table(console: Console, df, title: str, where: str = "the CSV (-o FILE)") -> None:
    """Print `df` so that it fits `console.width`: the most important columns, short headers, a legend.

    Long names in headers are abbreviated (`tcell_activation_mean` -> `ta_mean`) and explained
    under the table; numbers are rounded to what matters (4 significant digits, 2 for an `_sd`,
    3 for a probability); when the columns still do not fit, the least important ones (sds,
    then diagnostics) are left out and a line names them and `where` to find them. Printed to a
    pipe or a file (not a terminal), the table is printed whole, as `table_of` does.
    """
    if not console.is_terminal:
        console.print(table_of(df, title))
        return
    labels, legend = short_headers([str(c) for c in df.columns])
    cells = {c: [_cell(c, v) for v in df[c]] for c in df.columns}
    shown = list(df.columns)
    order = sorted(shown, key=lambda c: (_importance(str(c)), shown.index(c)))
    table = _table(df, shown, labels, cells, title)
    while _width(table) > console.width and len(shown) > 1:
        shown.remove(order.pop())
        table = _table(df, shown, labels, cells, title)
    console.print(table)
    words = {m.group(1) for c in shown for m in NAME.finditer(labels[str(c)])}
    used = {a: n for a, n in legend.items() if a in words}
    if used:
        console.print("  ".join(f"{a} = {n}" for a, n in used.items()), highlight=False, markup=False)
    hidden = [str(c) for c in df.columns if c not in shown]
    if hidden:
        console.print(f"{len(hidden)} more column(s) in {where}: {', '.join(hidden)}", highlight=False, markup=False)


def short_headers(columns: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """A label per column with each long name abbreviated, and the legend `{abbreviation: name}`.

    A name is a run of letters, digits and `_` without a `_mean`/`_sd` ending; a long one becomes
    the initials of its `_`-separated words (`tcell_activation` -> `ta`), lengthened until every
    abbreviation is distinct and is not a name of its own.
    """
    names = {m.group(1) for c in columns for m in NAME.finditer(c) if len(m.group(1)) > LONG_NAME}
    short = _distinct_abbreviations(sorted(names), taken={m.group(1) for c in columns for m in NAME.finditer(c)})
    labels = {c: NAME.sub(lambda m: short.get(m.group(1), m.group(1)) + (m.group(2) or ""), c) for c in columns}
    return labels, {a: n for n, a in short.items()}


NAME = re.compile(r"([A-Za-z0-9_]+?)(_mean|_sd)?(?![A-Za-z0-9_])")


def _distinct_abbreviations(names: list[str], taken: set[str]) -> dict[str, str]:
    """The shortest abbreviation of each name, lengthened only where two would clash."""
    k = dict.fromkeys(names, 1)
    others = taken - set(names)
    for _ in range(max((len(n) for n in names), default=0)):
        short = {n: _abbreviate(n, k[n]) for n in names}
        clashes = [n for n in names if list(short.values()).count(short[n]) > 1 or short[n] in others]
        if not clashes:
            return short
        for n in clashes:
            k[n] += 1
    return {n: n for n in names}


def _abbreviate(name: str, k: int) -> str:
    """The first `k` letters of each `_`-separated word (of the first `LONG_NAME - 2 + k` letters for one word)."""
    words = [w for w in name.split("_") if w]
    if len(words) == 1:
        return name[: LONG_NAME - 3 + k] + "."
    return "_".join(w[:k] for w in words) if k > 1 else "".join(w[0] for w in words)


def _importance(column: str) -> int:
    for names, rank in RANKS:
        if column in names:
            return rank
    if column.endswith("_sd"):
        return 3
    if column.endswith("_mean") or column.startswith("p_") or column.endswith("_true"):
        return 1
    if column.startswith("met: ") or column.endswith("_error"):
        return 2
    return 0


def _cell(column, value) -> str:  # noqa: ANN001 - a column name and a cell of any type
    if isinstance(value, bool) or not isinstance(value, float):
        return escape(str(value))
    if str(column).endswith("_sd"):
        return f"{value:.2g}"
    if str(column).startswith("p_"):
        return f"{value:.3g}"
    return f"{value:.4g}"


def _table(df, shown: list, labels: dict[str, str], cells: dict, title: str) -> Table:  # noqa: ANN001
    table = Table(title=escape(title), box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    for column in shown:
        table.add_column(escape(labels[str(column)]), justify="right", no_wrap=True)
    for i in range(len(df)):
        table.add_row(*[cells[c][i] for c in shown])
    return table


def _width(table: Table) -> int:
    """Columns the table needs when nothing is squeezed."""
    console = Console(width=100_000, file=io.StringIO())
    return console.measure(table).maximum
