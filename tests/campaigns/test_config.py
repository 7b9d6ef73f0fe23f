"""Tests for the campaign config: valid configs load, and each broken one gives a one-line error."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from campaigns import CampaignConfig, load_config
from campaigns.config import dump_config
from design import InputError


def base_config() -> dict:
    return {
        "name": "demo",
        "parameters": [
            {"name": "x1", "type": "continuous", "bounds": [0, 1]},
            {"name": "x2", "type": "continuous", "bounds": [-40, 40]},
            {"name": "layers", "type": "integer", "bounds": [1, 5]},
            {"name": "ligand", "type": "categorical", "values": ["none", "a"]},
        ],
        "constraints": ["x1 + 0.1 * x2 <= 3"],
        "objectives": [{"name": "y", "goal": "maximize"}],
        "safety": [{"name": "tox", "upper": 1.5}],
    }


def broken(change) -> str:
    """Apply `change` to a copy of the base config; return the message of the InputError it causes."""
    config = copy.deepcopy(base_config())
    change(config)
    with pytest.raises(InputError) as raised:
        load_config(config)
    message = str(raised.value)
    assert "\n" not in message  # one line for the user
    return message


def test_valid_config_from_dict():
    config = load_config(base_config())
    assert isinstance(config, CampaignConfig)
    assert config.name == "demo"
    assert config.seed == 0  # default
    assert config.parameter_names == ["x1", "x2", "layers", "ligand"]
    assert config.outcomes == ["y", "tox"]  # objectives first
    assert config.parameters[2].bounds == (1, 5)
    assert config.parameters[3].values == ("none", "a")
    assert config.safety[0].upper == 1.5 and config.safety[0].confidence == 0.95
    assert config.acquisition.effort(mixed=True) == (8, 256)  # integer and categorical parameters
    assert config.acquisition.effort(mixed=False) == (3, 64)
    space = config.space()
    assert space.d == 4 and len(space.constraints) == 1


def test_valid_config_from_yaml_file_equals_the_dict(tmp_path):
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(base_config()))
    assert load_config(path) == load_config(base_config())
    assert load_config(str(path)) == load_config(base_config())


def test_dumped_config_loads_back_unchanged(tmp_path):
    config = load_config({**base_config(), "seed": 7, "acquisition": {"num_restarts": 2}})
    path = tmp_path / "dumped.yaml"
    path.write_text(dump_config(config))
    again = load_config(path)
    assert again == config
    assert again.seed == 7 and again.acquisition.num_restarts == 2


def test_target_objective_with_target_is_valid():
    config = load_config({**base_config(), "objectives": [{"name": "y", "goal": "target", "target": 2.5}]})
    assert config.objectives[0].target == 2.5


def test_reversed_bounds_name_the_field_and_value():
    message = broken(lambda c: c["parameters"][1].update(bounds=[40, -40]))
    assert message.startswith("config: ")
    assert "parameters[1].bounds" in message
    assert "[40, -40]" in message


def test_non_numeric_bounds_name_the_field_and_value():
    message = broken(lambda c: c["parameters"][0].update(bounds=["a", 1]))
    assert "parameters[0].bounds" in message
    assert "['a', 1]" in message


def test_fractional_integer_bounds_name_the_field_and_value():
    message = broken(lambda c: c["parameters"][2].update(bounds=[1.5, 5]))
    assert "parameters[2].bounds" in message
    assert "1.5" in message


def test_unknown_parameter_type_names_the_field_and_value():
    message = broken(lambda c: c["parameters"][1].update(type="float"))
    assert "parameters[1].type" in message
    assert "'float'" in message
    assert "continuous" in message  # lists what is allowed


def test_missing_field_in_a_parameter_is_named():
    message = broken(lambda c: c["parameters"][1].pop("bounds"))
    assert "parameters[1].bounds is missing" in message


def test_missing_top_level_field_is_named():
    assert "name is missing" in broken(lambda c: c.pop("name"))
    assert "objectives is missing" in broken(lambda c: c.pop("objectives"))


def test_missing_parameter_type_is_named_as_missing():
    message = broken(lambda c: c["parameters"][1].pop("type"))
    assert "parameters[1].type is missing" in message


def test_unknown_top_level_field_is_named():
    message = broken(lambda c: c.update(objective=[{"name": "y"}]))
    assert "objective is not a known field" in message


def test_unknown_field_in_a_parameter_is_named():
    message = broken(lambda c: c["parameters"][0].update(values=["a", "b"]))
    assert "parameters[0].values is not a known field" in message


def test_categorical_with_one_value_names_field_and_value():
    message = broken(lambda c: c["parameters"][3].update(values=["only"]))
    assert "parameters[3].values" in message
    assert "['only']" in message


def test_safety_limit_with_neither_bound():
    message = broken(lambda c: c["safety"][0].pop("upper"))
    assert "safety[0]" in message
    assert "upper" in message and "lower" in message


def test_safety_limit_with_lower_above_upper():
    message = broken(lambda c: c["safety"][0].update(lower=2.0))
    assert "safety[0]" in message
    assert "lower=2.0" in message and "upper=1.5" in message


def test_safety_confidence_out_of_range_names_field_and_value():
    message = broken(lambda c: c["safety"][0].update(confidence=1.5))
    assert "safety[0].confidence" in message
    assert "1.5" in message


@pytest.mark.parametrize("change", [{"safety_mode": "safe_set"}, {"safety": []}], ids=["safe_set", "no limits"])
def test_exploring_designs_need_the_probabilistic_mode_and_a_limit(change):
    message = broken(lambda c: c.update(safety_explore=1, **change))
    assert "safety_explore 1" in message and "safety_explore: 0" in message
    load_config({**base_config(), "safety_explore": 1})  # probabilistic with a limit: fine


def test_objective_goal_target_without_target():
    message = broken(lambda c: c["objectives"][0].update(goal="target"))
    assert "objectives[0]" in message
    assert "target" in message and "'target'" in message


def test_target_given_for_a_maximized_objective():
    message = broken(lambda c: c["objectives"][0].update(target=3.0))
    assert "objectives[0]" in message and "target=3.0" in message


def test_constraint_naming_an_unknown_parameter():
    message = broken(lambda c: c.update(constraints=["x1 + zeta <= 1"]))
    assert "'x1 + zeta <= 1'" in message
    assert "'zeta'" in message


def test_non_linear_constraint():
    message = broken(lambda c: c.update(constraints=["x1 * x2 <= 1"]))
    assert "'x1 * x2 <= 1'" in message
    assert "not linear" in message


def test_constraint_on_a_categorical_parameter():
    message = broken(lambda c: c.update(constraints=["ligand <= 1"]))
    assert "'ligand'" in message and "categorical" in message


def test_constraint_error_names_the_field_path():
    message = broken(lambda c: c.update(constraints=["x1 <= 1", "x1 * x2 <= 1"]))
    assert "constraints[1]" in message


def test_log_parameter_with_low_not_positive():
    message = broken(lambda c: c["parameters"][0].update(log=True))
    assert "parameters[0]" in message
    assert "low > 0" in message
    assert re.search(r"\[0(\.0)?, 1(\.0)?\]", message)
    message = broken(lambda c: c["parameters"][1].update(log=True))
    assert "parameters[1]" in message and re.search(r"\[-40(\.0)?, 40(\.0)?\]", message)


def test_log_parameter_with_positive_low_is_valid():
    config = copy.deepcopy(base_config())
    config["parameters"][0].update(bounds=[0.1, 10], log=True)
    config["constraints"] = []
    assert load_config(config).parameters[0].log is True


def test_duplicate_parameter_names():
    message = broken(lambda c: c["parameters"][1].update(name="x1"))
    assert "distinct names" in message and "'x1'" in message


def test_outcome_named_like_a_parameter():
    message = broken(lambda c: c["safety"][0].update(name="x2"))
    assert "'x2'" in message and "parameter" in message


def test_acquisition_setting_out_of_range_names_field_and_value():
    message = broken(lambda c: c.update(acquisition={"num_restarts": 0}))
    assert "acquisition.num_restarts" in message
    assert "Got 0" in message


def test_several_problems_are_counted():
    def change(c):
        c.pop("name")
        c["parameters"][1]["bounds"] = [40, -40]

    assert "1 more problem(s)" in broken(change)


def test_broken_yaml_file_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(
        "name: demo\nparameters:\n  - name: x\n    type: continuous\n    bounds: [0, 1\nobjectives:\n  - name: y\n"
    )
    with pytest.raises(InputError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "broken.yaml" in message
    assert "broken YAML at line 6" in message


def test_yaml_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(InputError, match=r"list\.yaml: expected a mapping.*Got list"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml: no such file"):
        load_config(tmp_path / "nope.yaml")


def test_error_in_a_yaml_file_names_the_file_and_field(tmp_path):
    config = base_config()
    config["parameters"][1]["bounds"] = [40, -40]
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(InputError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}: parameters[1].bounds")
    assert "[40, -40]" in str(raised.value)
