"""The test tiers stay apart: every integration module is marked, no unit module is.

``pytest -m "not integration"`` is the unit tier only if every module under
``tests/integration`` carries the marker; a module without it would start a broker
inside the fast tier. Reading the test tree's own sources is the check (no import,
no collection), so it runs in the unit tier, where a forgotten marker shows first.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _marks(path: Path) -> list[str]:
    """The module-level ``pytestmark`` of a test module, as source text."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            out.append(ast.unparse(node.value))
    return out


def _mentions_integration(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.Attribute) and node.attr == "integration" for node in ast.walk(tree)
    )


def test_every_integration_module_carries_the_marker():
    modules = sorted((TESTS / "integration").glob("test_*.py"))
    assert modules
    unmarked = [p.name for p in modules if "pytest.mark.integration" not in _marks(p)]
    assert not unmarked, f"add 'pytestmark = pytest.mark.integration' to {unmarked}"


def test_no_unit_module_is_marked_integration():
    marked = [p.name for p in sorted((TESTS / "unit").glob("*.py")) if _mentions_integration(p)]
    assert not marked, f"{marked} are marked integration: move them to tests/integration"


def test_module_names_are_unique_across_the_tiers():
    unit = {p.name for p in (TESTS / "unit").glob("*.py")}
    integration = {p.name for p in (TESTS / "integration").glob("*.py")}
    clashes = sorted((unit & integration) - {"conftest.py"})
    assert not clashes, f"{clashes} exist in both tiers: rename one (there is no __init__.py)"
