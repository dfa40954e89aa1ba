"""Issue 17 against a real daemon and the simulator, on both stores: positions and
balances are events (through the outbox, the sequence and replay), and ``oexec watch
--from SEQ`` replays through the daemon."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import pytest

from oexec.app import Daemon
from oexec.cli.main import main
from oexec.client import AsyncClient, Event

from ..e2e.conftest import SimControl, endpoint, events_endpoint

pytestmark = pytest.mark.timeout(60)


async def _until(sub: Any, want: set[str], timeout_s: float = 10.0) -> list[Event]:
    got: list[Event] = []
    async with asyncio.timeout(timeout_s):
        while not want <= {e.topic for e in got}:
            got.append(await sub.receive())
    return got


async def test_fill_moves_position_and_balance_as_events(daemon: Daemon) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        with client.subscribe(events_endpoint(daemon)) as sub:
            await asyncio.sleep(0.3)
            order = await client.place_order(
                symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.010"
            )
            live = await _until(sub, {"fill", "position", "balance"})
        position = next(e for e in live if e.topic == "position").data
        balance = next(e for e in live if e.topic == "balance").data
        assert position["position"]["symbol"] == "ETHUSDT"
        assert Decimal(position["position"]["amount"]) == Decimal("0.010")
        assert position["position"]["position_side"] == "BOTH"
        assert position["position"]["event_time"] > 0 and position["reason"] == "ORDER"
        assert balance["balance"]["asset"] == "USDT" and balance["balance"]["event_time"] > 0
        assert all(e.gap is None for e in live)
        # the same events, numbered once, from the log
        await daemon.events.flush()
        page = await client.replay(0, topics=["position", "balance"])
        replayed = {(e["topic"], e["seq"]) for e in page["events"]}
        assert {(e.topic, e.seq) for e in live if e.topic in ("position", "balance")} <= replayed
        assert order.symbol == "ETHUSDT"


async def test_watch_from_replays_through_the_daemon(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        for _ in range(2):
            await client.place_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.010")
    await asyncio.sleep(0.5)
    await daemon.events.flush()
    last = daemon.events.last_seq
    assert last >= 6
    capsys.readouterr()
    argv = ["watch", "--endpoint", events_endpoint(daemon), "--daemon", endpoint(daemon)]
    argv += ["--from", "0", "--json", "--count", str(last)]
    assert await asyncio.wait_for(asyncio.to_thread(main, argv), 20) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [e["seq"] for e in lines] == list(range(1, last + 1))
    assert "gap" not in json.dumps(lines)


async def test_a_dropped_stream_event_is_caught_within_3_s(
    daemon: Daemon, control: SimControl
) -> None:
    """The venue's user stream loses the fill of a resting order: with the default
    [tracking] settings the sweep (weight-budgeted: a symbol costs 1) finds it within
    3 s, not sweep_interval_s (30 s) later (issue 17: fast convergence)."""
    await control.price("ETHUSDT", "3000")
    async with AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(
            symbol="ETHUSDT", side="BUY", type="LIMIT", quantity="0.010", price="2990",
            time_in_force="GTC",
        )  # fmt: skip
        await asyncio.sleep(1.0)  # the stream's NEW arrives; the next sweep is due
        await control.fault("stream_drop", probability=1.0)
        await control.price("ETHUSDT", "2980")  # the resting BUY fills at the venue
        filled_at = time.monotonic()
        async with asyncio.timeout(10):
            while (await client.get_order(order_id=order.id)).state.value != "FILLED":  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        caught = time.monotonic() - filled_at
    assert (await control.stats())["faults_fired"].get("stream_drop", 0) >= 1  # it was lost
    assert caught <= 3.0, caught
    assert daemon.tracker.sweep_every_s() < 3.0


async def test_a_leverage_change_is_a_position_event(daemon: Daemon) -> None:
    """The venue's ACCOUNT_CONFIG_UPDATE after set_leverage: a position event with the
    new leverage, no side (every leg of the symbol), the venue's event time."""
    async with AsyncClient(endpoint(daemon)) as client:
        with client.subscribe(events_endpoint(daemon), ["position"]) as sub:
            await asyncio.sleep(0.3)
            await client.set_leverage("ETHUSDT", 7)
            async with asyncio.timeout(10):
                event = await sub.receive()
    body = event.data["position"]
    assert event.data["reason"] == "ACCOUNT_CONFIG_UPDATE"
    assert body["symbol"] == "ETHUSDT" and body["leverage"] == 7 and body["event_time"] > 0
    assert "position_side" not in body
