"""The package layers: every module imports, and imports only point down.

`data` and `surrogates` sit at the bottom, `design` uses `surrogates` only through its Protocol,
`campaigns` sits on top, and `benchmarks` beside it uses all four; only the `valley benchmark`
commands reach `benchmarks`, from inside their functions. Checked on the source with `ast`, so
late imports count too.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ["data", "surrogates", "design", "campaigns"]
PACKAGES = [*LIBRARY, "benchmarks"]


def modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def imported(module: str, at_import: bool = False) -> set[str]:
    """Dotted names of everything `module` imports, wherever in the file the import is.

    With `at_import`, only the imports that run when the module is imported: those inside
    function bodies (late imports) are left out.
    """
    parts = module.split(".")
    path = ROOT.joinpath(*parts)
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = parts if path.name == "__init__.py" else parts[:-1]
    names = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in _module_level(tree) if at_import else ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join([*base, node.module] if node.module else base)
            names.add(stem)
            names.update(f"{stem}.{alias.name}" for alias in node.names)
    return names


def _module_level(tree: ast.AST):
    """Every node of `tree` outside function bodies and `if TYPE_CHECKING:` blocks."""
    for node in ast.iter_child_nodes(tree):
        type_checking = isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and not type_checking:
            yield node
            yield from _module_level(node)


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
    for above in ("surrogates", "design", "campaigns", "benchmarks"):
        assert not ours(names, above), f"{module} imports {sorted(ours(names, above))}"


@pytest.mark.parametrize("module", modules("surrogates"))
def test_surrogates_import_nothing_above_them(module):
    names = imported(module)
    for above in ("design", "campaigns", "benchmarks"):
        assert not ours(names, above), f"{module} imports {sorted(ours(names, above))}"


@pytest.mark.parametrize("module", modules("design"))
def test_design_uses_surrogates_only_through_the_protocol(module):
    names = imported(module)
    allowed = {"surrogates.protocol"} | {f"surrogates.protocol.{n}" for n in ("Surrogate", "Posterior")}
    assert ours(names, "surrogates") <= allowed, f"{module} imports {sorted(ours(names, 'surrogates'))}"
    for above in ("campaigns", "benchmarks"):
        assert not ours(names, above), f"{module} imports {sorted(ours(names, above))}"


@pytest.mark.parametrize("module", modules("campaigns"))
def test_campaigns_reach_benchmarks_only_from_inside_the_benchmark_commands(module):
    late = ours(imported(module), "benchmarks")
    if module in (
        "campaigns.bench_cli",
        "campaigns.bench_toolkit_cli",
        "campaigns.bench_options",
    ):  # `valley benchmark`
        assert late, "the `valley benchmark` commands call into benchmarks/"
        assert not ours(imported(module, at_import=True), "benchmarks"), f"{module} imports benchmarks at import"
    else:
        assert not late, f"{module} imports {sorted(late)}"


@pytest.mark.parametrize("module", modules("benchmarks"))
def test_benchmarks_import_only_the_packages_below_them(module):
    others = {n.split(".")[0] for n in imported(module)} & {"tests", "examples"}
    assert not others, f"{module} imports {sorted(others)}"


def test_the_import_scanner_sees_late_imports():
    assert "surrogates.protocol.Surrogate" in imported("design.bo")
    assert "campaigns.Campaign" in imported("campaigns.cli")  # imported inside the command functions
    assert "campaigns.Campaign" not in imported("campaigns.cli", at_import=True)


def import_time_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports when it is imported (late and TYPE_CHECKING imports left out)."""
    known = set(ALL_MODULES)
    graph = {}
    for module in ALL_MODULES:
        targets = set()
        for name in imported(module, at_import=True):
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` as a path that returns to its start, or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycles():
    """Whichever module a caller imports first loads: no module imports itself back at import time."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the finder finds one
    cycle = find_cycle(import_time_graph())
    assert not cycle, " -> ".join(cycle)


def test_the_design_inverse_package_imports_in_a_fresh_interpreter():
    done = subprocess.run([sys.executable, "-c", "import design.inverse"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]


@pytest.mark.parametrize("package", LIBRARY)
def test_each_package_lists_its_public_names(package):
    module = importlib.import_module(package)
    assert module.__all__
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


def test_the_command_line_loads_without_torch():
    """`valley --help` answers at once: the CLI module imports torch (and the web server) only inside its commands."""
    code = "import sys, campaigns.cli; print(sorted({'torch', 'botorch', 'gpytorch', 'starlette', 'uvicorn'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"
