"""The package layers: every module imports, and imports only point down.

`data` and `surrogates` sit at the bottom, `design` uses `surrogates` only through its Protocol,
and `campaigns` sits on top. Checked on the source with `ast`, so late imports count too.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["data", "surrogates", "design", "campaigns"]


def modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def imported(module: str) -> set[str]:
    """Dotted names of everything `module` imports, wherever in the file the import is."""
    parts = module.split(".")
    path = ROOT.joinpath(*parts)
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = parts if path.name == "__init__.py" else parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join([*base, node.module] if node.module else base)
            names.add(stem)
            names.update(f"{stem}.{alias.name}" for alias in node.names)
    return names


def ours(names: set[str], package: str) -> set[str]:
    return {n for n in names if n == package or n.startswith(package + ".")}


ALL_MODULES = [m for p in PACKAGES for m in modules(p)]


def test_every_package_has_modules():
    for package in PACKAGES:
        assert package in ALL_MODULES and len(modules(package)) > 1


@pytest.mark.parametrize("module", ALL_MODULES)
def test_module_imports(module):
    importlib.import_module(module)


@pytest.mark.parametrize("module", modules("data"))
def test_data_imports_nothing_above_it(module):
    names = imported(module)
    for above in ("surrogates", "design", "campaigns"):
        assert not ours(names, above), f"{module} imports {sorted(ours(names, above))}"


@pytest.mark.parametrize("module", modules("surrogates"))
def test_surrogates_import_nothing_above_them(module):
    names = imported(module)
    for above in ("design", "campaigns"):
        assert not ours(names, above), f"{module} imports {sorted(ours(names, above))}"


@pytest.mark.parametrize("module", modules("design"))
def test_design_uses_surrogates_only_through_the_protocol(module):
    names = imported(module)
    allowed = {"surrogates.protocol"} | {f"surrogates.protocol.{n}" for n in ("Surrogate", "Posterior")}
    assert ours(names, "surrogates") <= allowed, f"{module} imports {sorted(ours(names, 'surrogates'))}"
    assert not ours(names, "campaigns"), f"{module} imports {sorted(ours(names, 'campaigns'))}"


def test_the_import_scanner_sees_late_imports():
    assert "surrogates.protocol.Surrogate" in imported("design.bo")
    assert "campaigns.Campaign" in imported("campaigns.cli")  # imported inside the command functions


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_lists_its_public_names(package):
    module = importlib.import_module(package)
    assert module.__all__
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


def test_the_command_line_loads_without_torch():
    """`valley --help` answers at once: the CLI module imports torch only inside its commands."""
    code = "import sys, campaigns.cli; print(sorted({'torch', 'botorch', 'gpytorch'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"
