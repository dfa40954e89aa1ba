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


# --- one owner per concern (issue 15) ----------------------------------------------------
#: The modules that may put events on a sink: the writer announces every stored order
#: and fill change, the outbox relay (re)delivers what the store holds; oexec/events/
#: holds the sinks themselves.
PUBLISHERS = {"oexec.service.writer", "oexec.service.outbox"}
#: What of the writer nobody else touches: its sink, its listeners, its announcing.
WRITER_PRIVATE = {"events", "listeners", "announce", "fills_recorded", "_recorded"}


def _writer_like(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "writer") or (
        isinstance(node, ast.Attribute) and node.attr == "writer"
    )


def _publish_violations(module: str, source: str) -> list[str]:
    if module in PUBLISHERS or _inside(module, "oexec.events") or _inside(module, "oexec.sim"):
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "publish"
        ):
            found.append(f"{module}:{node.lineno} calls .publish()")
        if (
            isinstance(node, ast.Attribute)
            and node.attr in WRITER_PRIVATE
            and _writer_like(node.value)
        ):
            found.append(f"{module}:{node.lineno} touches writer.{node.attr}")
    return found


def test_only_the_writer_and_the_outbox_relay_publish_order_and_fill_events() -> None:
    violations = [
        v
        for path in sorted(PACKAGE.rglob("*.py"))
        for v in _publish_violations(module_name(path), path.read_text())
    ]
    assert violations == []


def test_the_publish_check_catches_a_reach_in() -> None:
    """The check above fails on the code issue 15 removed (a test that can fail)."""
    source = (
        "async def adopt(self, order):\n"
        "    await self.writer.events.publish('order.created', {})\n"
        "    for listener in self.writer.listeners:\n"
        "        listener(None, order)\n"
    )
    found = _publish_violations("oexec.service.reconcile", source)
    assert len(found) == 3  # the publish call, writer.events, writer.listeners
    assert _publish_violations("oexec.service.writer", source) == []


def test_the_composition_root_opens_venues_by_name_only() -> None:
    """app.py, cluster.py and cli/ know ``oexec.venue.open_venue``, no adapter module
    (a venue is a package behind the ports, chosen by ``[venue] name``)."""
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if not any(_inside(module, root) for root in ("oexec.app", "oexec.cluster", "oexec.cli")):
            continue
        for imported in imports_of(path):  # lazy imports inside functions count too
            if imported.startswith("oexec.venue."):
                violations.append(f"{module} imports {imported}")
    assert violations == []


def test_the_tracker_alone_sets_its_stream_state() -> None:
    """``stream_up``/``down_since`` belong to the tracker: others lead it through methods
    (oexec/service/tracking.py), and the cluster takes the typed unit, not the daemon."""
    roots = ("oexec.service", "oexec.app", "oexec.cluster")
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if module == "oexec.service.tracker" or not any(_inside(module, r) for r in roots):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            violations += [
                f"{module}:{node.lineno} sets .{t.attr}"
                for t in targets
                if isinstance(t, ast.Attribute) and t.attr in {"stream_up", "down_since"}
            ]
    cluster_source = (PACKAGE / "cluster.py").read_text()
    assert "daemon:" not in cluster_source, "oexec.cluster takes the daemon"
    assert violations == []
