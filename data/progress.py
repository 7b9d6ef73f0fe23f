"""Progress bars for long Python calls (`fit(..., progress=True)`, `InverseOptions(progress=True)`).

It lives in `data`, the bottom layer, so that `surrogates` and `design` can both use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def epoch_bar(enabled: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A callback `(done, total)` that advances a transient bar on stderr; None when not `enabled`.

    The bar is drawn only on a terminal (rich turns it off in pipes, files and CI logs).
    """
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
