"""Campaigns shared by several test modules (module-scoped: each is fitted once per module)."""

import numpy as np
import pytest
import yaml

from campaigns import Campaign
from tests.campaigns.safety_support import MULTI, config, lab, multi_lab, uniform
from tests.campaigns.test_cli import CONFIG, invoke


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


@pytest.fixture
def config_file(tmp_path):
    """The CLI tests' campaign config, as a YAML file."""
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture
def camp_dir(tmp_path, config_file):
    """A campaign made by `valley init` from `config_file`, with no measurements."""
    directory = tmp_path / "camp"
    result = invoke("init", directory, "--config", config_file)
    assert result.exit_code == 0, result.output
    return directory
