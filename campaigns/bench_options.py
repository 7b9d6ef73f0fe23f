"""Option parsing and Ray fan-out shared by the `valley benchmark ...` commands."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rich.markup import escape

from campaigns.console import fail, out, progress_line


def on_ray(function: Callable[..., Any], tasks: list[tuple], address: str, workers: int | None, name: Callable) -> list:
    """`function(*task)` of every task as Ray tasks (`benchmarks.ray_fanout`), in task order; one line as each ends.

    A task Ray lost (its worker died) is said and left out; Ray missing or unreachable ends the command in one line.
    """
    from benchmarks.ray_fanout import RayUnavailable, ray_map

    results = {}
    try:
        for index, result, error in ray_map(function, tasks, address, workers, progress_line):
            progress_line(f"{name(tasks[index])}: {f'failed ({error})' if error else 'done'}")
            if not error:
                results[index] = result
    except RayUnavailable as e:
        fail(e)
    return [results[i] for i in sorted(results)]


def parse_choices(text: str, option: str, allowed: Iterable[str]) -> list[str]:
    """The comma-separated names of `text`, each one of `allowed`; else one error line naming `option`."""
    known = list(allowed)
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if not chosen or unknown:
        fail(ValueError(f"{option} must be among {', '.join(known)}. Got {text!r} instead."))
    return chosen


def parse_sizes(text: str, option: str) -> list[int]:
    """Comma-separated positive row counts, e.g. `50,200`."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"{option} must be comma-separated positive row counts, e.g. 50,200. Got {text!r} instead.")
    return values


def print_notes(df) -> None:
    """The distinct notes of a part's rows (skipped sizes, failed children), one line each."""
    for note in dict.fromkeys(n for n in df["note"] if n):
        out.print(f"note: {escape(note)}", highlight=False)
