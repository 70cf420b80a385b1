"""The harness's layers hold: imports run only downward, and no target imports another.

    root      fixtures.plugin, .registry, .stack, .prove, .shards (knows every target)
    targets   fixtures.targets.<name>                      (none imports another)
    plumbing  fixtures.docker, fixtures.k8s                (neither imports the other)
    core      fixtures.core                                (imports nothing above it)

Suites and chaos experiments see the core only (the Kubernetes release checks also read
the chart's names). Imports under ``if TYPE_CHECKING:`` are annotations, not arrows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"core": 0, "docker": 1, "k8s": 1, "targets": 2}
ROOT_MODULES = {"plugin", "registry", "stack", "prove", "shards", "cli"}
PACKAGE = "mlflow_acceptance"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """Every module a file imports at run time (function-level imports included), named
    from the checkout's root (``mlflow_acceptance.fixtures.core`` as ``fixtures.core``)."""
    tree = ast.parse(path.read_text())
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only |= {id(child) for child in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name.removeprefix(f"{PACKAGE}.") for name in found}


def place(module: str) -> tuple[int, str]:
    """(layer, unit) of a fixtures module; unit is its package within the layer."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ROOT_MODULES:
        return 3, "root"
    layer = LAYER[parts[1]]
    unit = ".".join(parts[:3]) if parts[1] == "targets" and len(parts) > 2 else parts[1]
    return layer, unit


def fixtures_modules() -> list[Path]:
    return sorted((ROOT / "fixtures").rglob("*.py"))


def known(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@pytest.mark.parametrize("path", fixtures_modules(), ids=lambda p: module_name(p))
def test_imports_run_only_downward_and_never_to_a_sibling(path):
    here = module_name(path)
    layer, unit = place(here)
    wrong = []
    for imported in sorted(runtime_imports(path)):
        if not imported.startswith("fixtures.") or not known(imported):
            continue
        their_layer, their_unit = place(imported)
        if their_unit == unit:
            continue
        if their_layer > layer or (their_layer == layer and layer < 3):
            wrong.append(f"{here} ({unit}) imports {imported} ({their_unit})")
    assert not wrong, "\n".join(wrong)


def test_the_check_would_see_an_upward_import(tmp_path):
    """The rule itself: core importing a target, and a target importing another, are caught."""
    assert place("fixtures.core.deployment") < place("fixtures.targets.local.stack")
    assert place("fixtures.targets.kind.target")[1] != place("fixtures.targets.cluster.target")[1]
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from fixtures.k8s.access import KubernetesAccess\n"
        "def f():\n    from fixtures.targets.local.stack import LocalStack\n"
    )
    assert "fixtures.targets.local.stack" in runtime_imports(source)
    assert "fixtures.k8s.access" not in runtime_imports(source)


TEST_MODULE_FOLDERS = ("suites", "chaos")
LIBRARY_FOLDERS = (*TEST_MODULE_FOLDERS, "load", "fixtures")


@pytest.mark.parametrize(
    "path",
    sorted(p for folder in TEST_MODULE_FOLDERS for p in (ROOT / folder).rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_suites_and_experiments_see_the_core_only(path):
    allowed = ("fixtures.core",)
    if path.name == "test_k8s_release.py":
        allowed += ("fixtures.k8s",)  # the Kubernetes-only checks read the chart's names
    wrong = [
        name
        for name in runtime_imports(path)
        if name.startswith("fixtures") and name != "fixtures" and not name.startswith(allowed)
    ]
    assert not wrong, f"{path.name} imports {sorted(wrong)}"


@pytest.mark.parametrize(
    "path",
    sorted(p for folder in LIBRARY_FOLDERS for p in (ROOT / folder).rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_module_imports_a_test_module_or_a_conftest(path):
    """Only the self-tests under tests/ call checks directly, to show them fail on fakes."""
    wrong = [
        name
        for name in runtime_imports(path)
        if name.split(".")[0] in LIBRARY_FOLDERS
        and any(part.startswith(("test_", "conftest")) for part in name.split("."))
    ]
    assert not wrong, f"{path.name} imports {sorted(wrong)} (tests and conftests are not libraries)"
