"""A campaign over sequences: config to proposals, import validation, pools and a safety limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from campaigns import Campaign, load_config
from design import InputError
from tests.campaigns.test_cli import fingerprint, invoke

ALPHABET = "ACDE"
TINY = {"kind": "ensemble", "members": 2, "epochs": 15}  # a tiny ensemble: seconds, not minutes


def config(**fields) -> dict:
    base = {
        "name": "peptides",
        "seed": 0,
        "parameters": [{"name": "pep", "type": "sequence", "alphabet": ALPHABET, "length": 4}],
        "objectives": [{"name": "y", "goal": "maximize"}],
        "surrogate": TINY,
    }
    return {**base, **fields}


def random_sequences(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    drawn = ("".join(rng.choice(list(ALPHABET), 4)) for _ in range(20 * n))
    return list(dict.fromkeys(drawn))[:n]


def lab(sequences: list[str]) -> pd.DataFrame:
    """`y` counts the A's (and likes a C first); `s` counts the D's."""
    return pd.DataFrame(
        {
            "pep": sequences,
            "y": [s.count("A") + 0.5 * (s[0] == "C") for s in sequences],
            "s": [float(s.count("D")) for s in sequences],
        }
    )


def valid(sequences: pd.Series) -> bool:
    return all(len(s) == 4 and set(s) <= set(ALPHABET) for s in sequences)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    camp = Campaign.create(tmp_path_factory.mktemp("seq") / "camp", config())
    measured = lab(random_sequences(22, seed=0))[["pep", "y"]]
    measured.loc[[20, 21], "y"] = np.nan  # two failed runs: proposals are weighted by P(success)
    camp.add_measurements(measured)
    return camp, camp.propose(4), camp.propose(4)


# -- config ----------------------------------------------------------------------------------------


def test_a_sequence_parameter_is_accepted_and_defaults_to_the_ensemble():
    cfg = load_config({k: v for k, v in config().items() if k != "surrogate"})
    assert cfg.parameters[0].type == "sequence" and cfg.space().d == 16
    assert cfg.surrogate.kind == "auto" and cfg.surrogate_kind(10) == "ensemble"
    assert load_config(config(surrogate={"kind": "gp"})).surrogate_kind(10) == "gp"  # an explicit kind stays


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ({"alphabet": "A"}, ["parameters[0].alphabet", "at least two letters", "'A'"]),
        ({"alphabet": "ACA"}, ["parameters[0].alphabet", "repeats 'A'"]),
        ({"alphabet": "A,C"}, ["parameters[0].alphabet", "no spaces, commas", "','"]),
        ({"length": 0}, ["parameters[0].length", "from 1 to", "Got 0"]),
        ({"length": 2.5}, ["parameters[0].length", "whole number", "Got 2.5"]),
        ({"length": None}, ["parameters[0].length", "Got None"]),
        ({"type": "sequnce"}, ["parameters[0].type", "sequence", "'sequnce'"]),
    ],
)
def test_a_bad_sequence_parameter_is_one_line_naming_the_field(parameter, expected):
    entry = {"name": "pep", "type": "sequence", "alphabet": ALPHABET, "length": 4, **parameter}
    with pytest.raises(InputError) as raised:
        load_config(config(parameters=[entry]))
    message = str(raised.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, message


# -- proposals -------------------------------------------------------------------------------------


def test_proposals_are_new_valid_sequences(campaign):
    camp, first, second = campaign
    assert first.attrs["method"] == "qLogNEI" and second.attrs["method"] == "qLogNEI"
    assert "p_feasible" in first.columns
    measured = set(camp.measurements["pep"])
    for batch in (first, second):
        assert len(batch) == 4 and valid(batch["pep"]) and batch["pep"].is_unique
        assert not set(batch["pep"]) & measured
    assert not set(first["pep"]) & set(second["pep"])  # the first batch was pending for the second
    assert np.isfinite(first["y_mean"]).all() and (first["y_sd"] > 0).all()


def test_a_pool_of_sequences_gives_rows_of_the_pool(tmp_path, campaign):
    camp, _, _ = campaign
    pool = pd.DataFrame({"pep": [s for s in random_sequences(40, seed=5) if s not in set(camp.proposals["pep"])]})
    proposals = camp.propose(3, candidates=pool)
    assert len(proposals) == 3 and proposals["pep"].is_unique
    assert set(proposals["pep"]) <= set(pool["pep"])
    assert (pool.loc[proposals.index, "pep"] == proposals["pep"]).all()  # the pool's own rows


def test_a_safety_limit_on_a_sequence_campaign(tmp_path):
    safety = [{"name": "s", "upper": 1.5, "confidence": 0.8}]
    camp = Campaign.create(tmp_path / "camp", config(safety=safety))
    camp.add_measurements(lab(random_sequences(20, seed=1)))
    proposals = camp.propose(3)
    assert len(proposals) == 3 and valid(proposals["pep"]) and proposals["pep"].is_unique
    assert {"p_safe", "meets_confidence", "role"} <= set(proposals.columns)
    assert proposals["meets_confidence"].all() and (proposals["p_safe"] >= 0.8).all()
    assert (lab(list(proposals["pep"]))["s"] <= 1.5).all()  # and they are safe indeed


def test_failed_runs_and_too_few_data_fall_back_to_new_sequences(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    measured = lab(random_sequences(4, seed=2))[["pep", "y"]]
    measured.loc[1, "y"] = np.nan  # a failed run
    camp.add_measurements(measured)
    proposals = camp.propose(3)
    assert proposals.attrs["method"] == "space-filling"
    assert valid(proposals["pep"]) and not set(proposals["pep"]) & set(measured["pep"])


# -- import validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("ACDX", ["row 3", "column 'pep'", "'ACDX'", "letter 'X'", "alphabet 'ACDE'", "Fix the sequence"]),
        ("ACD", ["row 3", "column 'pep'", "3 letters", "length 4", "Fix the sequence"]),
        ("acde", ["row 3", "column 'pep'", "case-sensitive", "'ACDE'"]),
    ],
)
def test_a_bad_sequence_is_refused_and_the_campaign_is_unchanged(tmp_path, bad, expected):
    config_file = tmp_path / "peptides.yaml"
    config_file.write_text(yaml.safe_dump(config()))
    directory = tmp_path / "camp"
    assert invoke("init", directory, "--config", config_file).exit_code == 0
    good = tmp_path / "good.csv"
    lab(random_sequences(3, seed=3))[["pep", "y"]].to_csv(good, index=False)
    assert invoke("add", directory, good).exit_code == 0
    before = fingerprint(directory)

    table = lab(["AAAA", "CCCC", "EEEE"])[["pep", "y"]]
    table.loc[1, "pep"] = bad  # line 3 of the file
    broken = tmp_path / "broken.csv"
    table.to_csv(broken, index=False)
    for args in (("add", directory, broken), ("propose", directory, "--candidates", broken)):
        result = invoke(*args)
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output
        for part in expected:
            assert part in lines[0], lines[0]
        assert fingerprint(directory) == before
