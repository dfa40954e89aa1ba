"""Dependencies point inward: the core never imports an adapter.

Read from the source with ``ast`` so a violation fails here, not in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "oexec"

#: package -> oexec packages it must never import
FORBIDDEN = {
    "oexec.errors": {"oexec"},
    "oexec.models": {
        "oexec.service",
        "oexec.store",
        "oexec.venue",
        "oexec.sim",
        "oexec.front",
        "oexec.events",
        "oexec.ops",
        "oexec.client",
        "oexec.wire",
        "oexec.app",
        "oexec.cli",
        "oexec.limits",
        "oexec.breaker",
        "oexec.config",
    },
    "oexec.service": {
        "oexec.store",
        "oexec.venue",
        "oexec.sim",
        "oexec.front",
        "oexec.events",
        "oexec.ops",
        "oexec.client",
        "oexec.wire",
        "oexec.app",
        "oexec.cli",
    },
    "oexec.wire": {
        "oexec.service.pipeline",
        "oexec.store",
        "oexec.venue",
        "oexec.sim",
        "oexec.front",
        "oexec.app",
        "oexec.cli",
    },
    "oexec.venue": {
        "oexec.service.pipeline",
        "oexec.store",
        "oexec.sim",
        "oexec.front",
        "oexec.app",
        "oexec.cli",
    },
    "oexec.store": {
        "oexec.service.pipeline",
        "oexec.venue",
        "oexec.sim",
        "oexec.front",
        "oexec.app",
        "oexec.cli",
    },
    "oexec.sim": {"oexec.service", "oexec.store", "oexec.front", "oexec.app", "oexec.client"},
    "oexec.client": {
        "oexec.service",
        "oexec.store",
        "oexec.venue",
        "oexec.sim",
        "oexec.app",
        "oexec.front",
    },
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "oexec" or n.startswith("oexec.")}


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("owner", sorted(FORBIDDEN))
def test_no_outward_imports(owner: str) -> None:
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if not _inside(module, owner):
            continue
        for imported in imports_of(path):
            for banned in FORBIDDEN[owner]:
                if _inside(imported, banned) and not _inside(imported, owner):
                    violations.append(f"{module} imports {imported}")
    assert violations == []
