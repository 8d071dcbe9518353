"""Imports only point downward (docs/architecture.md); this test fails on a wrong-way import."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "smartregion"

# layer -> the layers of ours it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "settings": {"errors"},
    "core": {"errors"},
    "storage": {"core", "errors"},
    "governance": {"core", "storage", "errors"},
    "broker": {"governance", "core", "storage", "errors"},
    "ldes": {"broker", "governance", "core", "storage", "errors"},
    "ingestion": {"broker", "governance", "core", "storage", "errors"},
    "hub": {"governance", "core", "storage", "errors"},
    "api": {
        "broker",
        "ldes",
        "ingestion",
        "hub",
        "governance",
        "core",
        "storage",
        "errors",
        "settings",
    },
    "web": {
        "broker",
        "ldes",
        "ingestion",
        "hub",
        "governance",
        "core",
        "storage",
        "errors",
        "settings",
    },
    "cli": {
        "app",
        "broker",
        "ldes",
        "ingestion",
        "hub",
        "governance",
        "core",
        "storage",
        "errors",
        "settings",
    },
    "app": {
        "api",
        "web",
        "broker",
        "ldes",
        "ingestion",
        "hub",
        "governance",
        "core",
        "storage",
        "errors",
        "settings",
    },
    "__init__": set(),
    "__main__": {"cli"},
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "smartregion" and node.level == 0:
            # `from smartregion import errors, __version__`: each name is a layer or the package root
            names = [
                f"smartregion.{a.name}" if a.name in ALLOWED else "smartregion" for a in node.names
            ]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "smartregion" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] == "smartregion":
                found.add("__init__")
    return found


def test_every_module_belongs_to_a_known_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert layer_of(path) in ALLOWED, f"{path} is in no known layer"


def test_imports_point_downward() -> None:
    wrong: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        layer = layer_of(path)
        # the package root only holds the version: anyone may import it
        for target in imported_layers(path) - {layer, "__init__"}:
            if target not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(PACKAGE)} ({layer}) imports {target}")
    assert not wrong, "wrong-way imports:\n" + "\n".join(wrong)


def test_the_checker_catches_a_wrong_way_import(tmp_path: Path) -> None:
    # The walker must see a storage module importing the broker: a test that cannot fail is no test.
    module = tmp_path / "bad.py"
    module.write_text("from smartregion.broker.entities import EntityService\n")
    assert imported_layers(module) == {"broker"}
    assert "broker" not in ALLOWED["storage"]
