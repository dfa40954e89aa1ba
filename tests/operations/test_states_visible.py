"""docs/wire.md lists the order states a client can see, and only those.

``INIT``, ``VALIDATING`` and ``PENDING`` are rows of the lifecycle table for the
pre-trade steps, which run in memory before the claim: nothing stores, replies or
publishes an order in them. Checked three ways: the spec's state list, the source (no
order is ever built or evolved into one of them), and a real daemon on both stores
(every state in an order's trace and in every published event of an accepted, a
canceled and a refused order is a documented one).
"""

from __future__ import annotations

import ast
import contextlib
import re
from pathlib import Path
from typing import Any

from oexec.app import Daemon
from oexec.client import AsyncClient, ClientError
from oexec.models.enums import OrderState

from ..e2e.conftest import endpoint

ROOT = Path(__file__).resolve().parents[2]
WIRE = ROOT / "docs" / "wire.md"
INTERNAL = {OrderState.INIT, OrderState.VALIDATING, OrderState.PENDING}
VISIBLE = {s.value for s in OrderState} - {s.value for s in INTERNAL}


def documented_states() -> set[str]:
    row = re.search(r"^\| `state` \| str \| (.+) \|$", WIRE.read_text(), re.M)
    assert row is not None
    return set(re.findall(r"`([A-Z_]+)`", row.group(1)))


def test_spec_lists_the_visible_states_and_names_the_internal_ones() -> None:
    assert documented_states() == VISIBLE
    section = WIRE.read_text().split("### States", 1)[1].split("\n### ", 1)[0]
    for state in INTERNAL:
        assert f"`{state.value}`" in section
    assert "internal" in section and "never stored" in section


ENUMS = {"OrderState", "S"}  # how the source names the enum (order_state.py: S)


def states_assigned(tree: ast.AST) -> set[str]:
    """Every ``OrderState.<NAME>`` inside a ``state=`` keyword (constructors, ``evolve``),
    conditional expressions included."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "state":
            for part in ast.walk(node.value):
                named = isinstance(part, ast.Attribute) and isinstance(part.value, ast.Name)
                if named and part.value.id in ENUMS:  # type: ignore[attr-defined]
                    found.add(part.attr)  # type: ignore[attr-defined]
    return found


def triggers_used(tree: ast.AST) -> set[str]:
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Trigger"
    }


def test_no_code_puts_an_order_in_an_internal_state() -> None:
    assigned: dict[str, set[str]] = {}
    triggers: set[str] = set()
    for path in (ROOT / "oexec").rglob("*.py"):
        tree = ast.parse(path.read_text())
        if path.name != "order_state.py":  # the table itself names every move
            triggers |= triggers_used(tree)
        if names := states_assigned(tree):
            assigned[str(path.relative_to(ROOT))] = names
    everywhere = set().union(*assigned.values())
    assert {"SUBMITTING", "REJECTED"} <= everywhere  # the scan sees the real assignments
    leaks = {f: n & {s.value for s in INTERNAL} for f, n in assigned.items()}
    assert not any(leaks.values()), leaks
    # VALIDATE and ACCEPT are the only ways into VALIDATING and PENDING
    assert not triggers & {"VALIDATE", "ACCEPT"}, triggers


def order_states(node: Any) -> set[str]:
    """Every ``state`` / ``previous_state`` value anywhere in a reply or event body."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("state", "previous_state") and isinstance(value, str):
                found.add(value)
            found |= order_states(value)
    elif isinstance(node, list):
        for item in node:
            found |= order_states(item)
    return found


async def test_a_daemon_shows_only_documented_states(daemon: Daemon) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        resting = await client.place_order(
            symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.010", price="49000.0",
            time_in_force="GTC", request_id="states-rest",
        )  # fmt: skip
        await client.cancel_order(order_id=resting.id)
        with contextlib.suppress(ClientError):  # refused before the venue: PRICE_TICK
            await client.place_order(
                symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.010",
                price="49000.05", time_in_force="GTC", request_id="states-tick",
            )  # fmt: skip
        seen: set[str] = set()
        for rid in ("states-rest", "states-tick"):
            seen |= order_states(await client.trace(request_id=rid))
        events = (await client.replay(0))["events"]
    assert events
    seen |= order_states(events)
    assert {"SUBMITTING", "NEW", "CANCELED", "REJECTED"} <= seen
    assert seen <= VISIBLE, seen - VISIBLE
