"""Campaigns shared by several test modules (module-scoped: each is fitted once per module)."""

import numpy as np
import pytest

from campaigns import Campaign
from tests.campaigns.safety_support import MULTI, config, lab, multi_lab, uniform


@pytest.fixture(scope="module")
def probabilistic(tmp_path_factory):
    camp = Campaign.create(tmp_path_factory.mktemp("prob") / "camp", config())
    camp.add_measurements(lab(uniform(8, seed=0)))
    return camp, camp.propose(4)


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    path = tmp_path_factory.mktemp("multi") / "camp"
    camp = Campaign.create(path, MULTI)
    measured = multi_lab(uniform(12, seed=2))
    measured.loc[len(measured)] = {"x1": 0.99, "x2": 0.6, "f1": 5.0, "f2": -5.0, "s": 1.59}  # best on both, unsafe
    measured.loc[len(measured)] = {"x1": 0.98, "x2": 0.01, "f1": 6.0, "f2": -6.0, "s": np.nan}  # failed
    camp.add_measurements(measured)
    return camp, camp.propose(3)
