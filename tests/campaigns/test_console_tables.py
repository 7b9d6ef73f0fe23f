"""Terminal tables that fit: the most important columns, legible distinct headers, a legend, the rest named."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from rich.console import Console

from campaigns.console import print_table, short_headers

PROPOSALS = pd.DataFrame(
    {
        "diameter_nm": [123.456, 45.6],
        "zeta_mV": [-12.3456, 3.2],
        "peg_pct": [1.234, 5.6],
        "ligand": ["antiCD28", "none"],
        "n_layers": [3, 1],
        "dose_ug": [12.34, 56.7],
        "tcell_activation_mean": [1.234, 2.345],
        "tcell_activation_sd": [0.1234, 0.2],
        "tcell_activity_mean": [0.4, 0.5],  # a name close to another: abbreviations must still differ
        "complement_activation_mean": [0.5, 0.9],
        "complement_activation_sd": [0.05, 0.1],
        "p_safe": [0.9634, 0.99],
        "meets_confidence": [True, True],
        "role": ["optimize", "closest-to-safe"],
    }
)


def _render(width: int) -> str:
    console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system=None)
    print_table(console, PROPOSALS, "Batch 1 (qLogNEI)", "next.csv")
    return console.file.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_a_table_fits_the_terminal_with_every_header_whole_and_distinct(width):
    text = _render(width)
    lines = text.splitlines()
    header = next(line for line in lines if "diameter_nm" in line)
    labels, legend = short_headers(list(PROPOSALS.columns))
    shown = [c for c in PROPOSALS.columns if re.search(rf"(^|\s){re.escape(labels[c])}(\s|$)", header)]
    hidden = [c for c in PROPOSALS.columns if c not in shown]
    assert all(len(line) <= width for line in lines[: lines.index(header) + 4])  # the table itself fits
    assert len({labels[c] for c in shown}) == len(shown)  # every header distinct
    assert "p_safe" in shown and all(p in shown for p in ["diameter_nm", "zeta_mV", "ligand", "dose_ug"])
    for abbreviation, name in legend.items():  # each abbreviation shown is explained under the table
        if any(re.search(rf"\b{abbreviation}\b", labels[c]) for c in shown):
            assert f"{abbreviation} = {name}" in text
    if hidden:
        assert f"{len(hidden)} more column(s) in next.csv: {', '.join(hidden)}" in " ".join(text.split())
    assert "…" not in text  # nothing cut mid-word


def test_wider_terminals_show_more_and_drop_the_sds_first():
    narrow, wide = _render(80), _render(120)
    hidden_narrow = narrow.split("more column(s) in next.csv:")[1]
    hidden_wide = wide.split("more column(s) in next.csv:")[1]
    assert len(hidden_wide.split(",")) < len(hidden_narrow.split(","))
    assert "tcell_activation_sd" in hidden_wide and "tcell_activation_mean" not in hidden_wide


def test_long_names_get_distinct_initials_and_short_ones_stay():
    labels, legend = short_headers(["tcell_activation_mean", "tcell_activity_sd", "complement_activation_sd", "x"])
    assert labels["x"] == "x"
    assert labels["complement_activation_sd"] == "ca_sd"
    assert labels["tcell_activation_mean"] != labels["tcell_activity_sd"].replace("_sd", "_mean")
    assert set(legend.values()) == {"tcell_activation", "tcell_activity", "complement_activation"}


def test_a_pipe_gets_the_whole_table():
    console = Console(width=80, file=io.StringIO(), force_terminal=False)
    print_table(console, PROPOSALS, "Batch 1", "next.csv")
    assert "more column(s)" not in console.file.getvalue()
