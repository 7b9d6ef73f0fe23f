"""Tests for the toolkit table's assembly (each row's own benchmark has its own tests)."""

from __future__ import annotations

import benchmarks.toolkit as toolkit


def test_rows_of_every_maker_are_ordered_by_item_and_formatted(monkeypatch):
    def one(seed: int) -> dict:
        return {
            "item": "4 step control",
            "plain": "Adam",
            "plain_figure": "21 steps",
            "valley_figure": "28",
            "seconds": 1.4,
        }

    def many(seed: int) -> list[dict]:
        return [
            {
                "item": "7 flat minima",
                "plain": "objective",
                "plain_figure": "a",
                "valley_figure": f"seed {seed}",
                "seconds": 2,
            },
            {"item": "10 later", "plain": "x", "plain_figure": "b", "valley_figure": "c", "seconds": 3},
        ]

    monkeypatch.setattr(toolkit, "toolkit_rows", lambda: [many, one])
    lines: list[str] = []
    results = toolkit.run_toolkit_benchmark(seed=5, progress=lines.append)
    assert results["item"].tolist() == ["4 step control", "7 flat minima", "10 later"]
    assert list(results.columns) == toolkit.COLUMNS
    assert results.loc[1, "valley_figure"] == "seed 5"
    assert lines == ["many ...", "one ..."]  # the function names, or the module of a `toolkit_row(s)`
    text = toolkit.format_toolkit(results)
    assert "flat minima" in text and "1.4" not in text  # seconds are rounded
