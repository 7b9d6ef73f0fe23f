"""The README's examples run as written (from a copy of the repository's examples/)."""

import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from campaigns.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_console_example_runs(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    (block,) = _blocks("console")
    for line in block.strip().splitlines():
        args = shlex.split(line)
        assert args[0] == "valley"
        result = runner.invoke(app, args[1:])
        assert result.exit_code == 0, (line, result.output)
    proposals = pd.read_csv("next.csv")
    assert len(proposals) == 4 and {"tcell_activation_mean", "p_safe"} <= set(proposals.columns)
    everything = pd.read_csv("everything.csv")
    assert set(everything["record"]) == {"measurement", "proposal"}


def test_readme_python_example_runs(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in _blocks("python") if "Campaign.create" in b]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert len(namespace["proposals_df"]) == 4
    assert namespace["camp"].best() is not None
