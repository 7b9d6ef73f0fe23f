"""Printing for the command line: user text (names, paths, messages) is shown as written, never read as rich markup.

Every error ends the same way: one line on stderr and exit code 1. `--debug` (`set_debug`) shows
the traceback instead.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
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
