"""The inverse-design benchmark from the command line: every method scored on the robot arm."""

from __future__ import annotations


def test_inverse_benchmark_scores_every_method_on_the_robot_arm():
    from typer.testing import CliRunner

    from campaigns.cli import app

    args = ["benchmark", "inverse", "--problems", "robot_arm", "--starts", "16", "--steps", "10", "--n-train", "30"]
    result = CliRunner().invoke(app, [*args, "-n", "2", "--seeds", "2"])
    assert result.exit_code == 0, result.output
    assert "mean over 2 seed(s)" in result.output
    for method in ("gradient", "training best", "random search", "differential evolution"):
        assert method in result.output
