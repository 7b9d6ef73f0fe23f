"""Tests for the system registry, the shared design helpers and the package's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import data
from data import get_system, is_safe, list_systems, sample_designs, satisfies_constraints

CONFIG_KEYS = {"name", "seed", "parameters", "constraints", "objectives", "safety", "surrogate"}


def test_every_listed_system_is_complete_and_simulates():
    assert list_systems() == [
        "nanoparticles",
        "gardner",
        "spring",
        "pressure_vessel",
        "welded_beam",
        "gramacy",
        "three_bar_truss",
    ]
    for name in list_systems():
        system = get_system(name)
        assert system.name == name == system.config["name"]
        assert set(system.config) == CONFIG_KEYS
        assert system.description and np.isfinite(system.best_safe_value)
        designs_df = sample_designs(system.config, 7, np.random.default_rng(0))
        outcomes_df = system.simulate(designs_df, np.random.default_rng(1))
        assert outcomes_df.shape[0] == 7
        assert system.objective in outcomes_df.columns
        assert {limit["name"] for limit in system.config["safety"]} <= set(outcomes_df.columns)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="welded_beam") as raised:
        get_system("nanoparticle")
    assert "'nanoparticle'" in str(raised.value)


def test_each_caller_gets_its_own_config():
    first = get_system("nanoparticles")
    first.config["seed"] = 123
    first.config["parameters"][0]["bounds"][1] = 1.0
    second = get_system("nanoparticles")
    assert second.config["seed"] == 0
    assert second.config["parameters"][0]["bounds"] == [20, 200]


def test_sample_designs_respects_bounds_types_and_constraints():
    config = get_system("nanoparticles").config
    designs_df = sample_designs(config, 3000, np.random.default_rng(4))
    assert len(designs_df) == 3000 and list(designs_df.index) == list(range(3000))
    assert satisfies_constraints(designs_df, config).all()
    assert designs_df["diameter_nm"].between(20, 200).all()
    assert set(designs_df["n_layers"]) == {1, 2, 3, 4, 5}
    assert set(designs_df["ligand"]) == {"none", "antiCD3", "antiCD28"}
    # Log-uniform: about half of the doses lie below the geometric midpoint of 10 ug.
    assert (designs_df["dose_ug"] < 10).mean() == pytest.approx(0.5, abs=0.05)


def test_sample_designs_is_reproducible():
    config = get_system("spring").config
    pd.testing.assert_frame_equal(
        sample_designs(config, 10, np.random.default_rng(5)),
        sample_designs(config, 10, np.random.default_rng(5)),
    )


def test_impossible_constraints_raise():
    config = get_system("nanoparticles").config
    config["constraints"] = ["peg_pct <= -1"]
    with pytest.raises(ValueError, match="feasible"):
        sample_designs(config, 5, np.random.default_rng(0), max_tries=3)


def test_is_safe_reads_upper_and_lower_limits():
    config = {"safety": [{"name": "a", "upper": 1.0}, {"name": "b", "lower": 0.0}]}
    outcomes_df = pd.DataFrame({"a": [0.5, 2.0, 0.5], "b": [1.0, 1.0, -1.0]})
    assert is_safe(outcomes_df, config).tolist() == [True, False, False]


def test_data_imports_nothing_from_the_packages_above_it():
    for path in Path(data.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in {"design", "surrogates", "campaigns"}, path


def test_at_confidence_changes_every_limit_and_leaves_the_system_alone():
    system = get_system("three_bar_truss")
    relaxed = system.at_confidence(0.8)
    assert [limit["confidence"] for limit in relaxed.config["safety"]] == [0.8] * len(system.config["safety"])
    assert [limit["name"] for limit in relaxed.config["safety"]] == [limit["name"] for limit in system.config["safety"]]
    assert all(limit.get("confidence") != 0.8 for limit in system.config["safety"])  # the original is untouched
