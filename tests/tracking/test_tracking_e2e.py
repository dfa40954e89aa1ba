"""Tracking against the real simulator with faults: lost, late, reordered stream events,
disconnects, unknown submits and cancels, adoption, trace, reconcile --check, dead-man."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

import msgpack
import pytest

from oexec.app import Daemon
from oexec.cli.main import main
from oexec.client import AsyncClient
from oexec.config import TrackingConfig, VenueConfig
from oexec.models import OrderState, OrderTerms, OrderType, Side, TimeInForce
from oexec.service.ports import VenueOrderRequest
from oexec.service.reconcile import compare
from oexec.sim.app import SimServer
from oexec.venue.binance.adapter import BinanceUsdmVenue

from ..e2e.conftest import REDIS_URL, DaemonFactory, SimControl, endpoint, events_endpoint
from .helpers import EventLog, limit, wait_for

FAST = TrackingConfig(poll_interval_s=0.2, sweep_interval_s=0.5)


async def _state(client: AsyncClient, order_id: str, state: OrderState) -> Any:
    order = await client.get_order(order_id=order_id)
    return order if order.state is state else None


@contextlib.asynccontextmanager
async def event_log(daemon: Daemon) -> Any:
    log = EventLog()
    task = asyncio.create_task(log.collect(events_endpoint(daemon)))
    await asyncio.sleep(0.3)  # ZeroMQ slow joiner
    try:
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _truth_fills(control: SimControl) -> set[tuple[str, int]]:
    return {(o["symbol"], int(f["tradeId"])) for o in await control.orders() for f in o["fills"]}


def _sample(daemon: Daemon, name: str, **labels: str) -> float:
    return daemon.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_dropped_stream_events_are_caught_by_the_sweep(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemon = await make_daemon(tracking=FAST)
    async with event_log(daemon) as log, AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(**limit("drop-1", "49500.0"))
        await control.fault("stream_drop", probability=1.0)
        await control.price("BTCUSDT", "49400.0")
        filled = await wait_for(lambda: _state(client, order.id, OrderState.FILLED))
        await asyncio.sleep(0.5)
    assert filled.filled_quantity == Decimal("0.010")
    assert (await control.stats())["faults_fired"].get("stream_drop", 0) >= 1
    assert set(log.fills_by_trade()) == await _truth_fills(control)
    assert set(log.fills_by_trade().values()) == {1}
    assert log.topic_by_order("order.filled") == {order.id: 1}
    assert _sample(daemon, "tracking_corrections_total", trigger="sweep") >= 1


async def test_many_missed_fills_are_read_a_request_per_symbol(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    """After a gap many orders differ at once: their states come from one ``allOrders``
    and their trades from one ``userTrades`` per symbol, not a query and a trade fetch
    per order (a full-size chaos run spent its whole weight budget that way and showed
    FILLED orders as NEW for 55 s). Every fill still lands once, with its event."""
    daemon = await make_daemon(tracking=FAST)
    async with event_log(daemon) as log, AsyncClient(endpoint(daemon)) as client:
        orders = [await client.place_order(**limit(f"bulk-{i}", "49500.0")) for i in range(8)]
        await control.fault("stream_drop", probability=1.0)
        before = (await control.stats())["requests_by_route"]
        await control.price("BTCUSDT", "49400.0")  # all eight fill, the stream says nothing
        for order in orders:
            await wait_for(lambda o=order: _state(client, o.id, OrderState.FILLED))
        after = (await control.stats())["requests_by_route"]
        await asyncio.sleep(0.5)

    def spent(route: str) -> int:
        return int(after.get(route, 0)) - int(before.get(route, 0))

    assert spent("GET /fapi/v1/allOrders") >= 1
    assert spent("GET /fapi/v1/order") < len(orders)  # not one query per order
    assert spent("GET /fapi/v1/userTrades") < len(orders)  # nor a trade fetch per order
    assert set(log.fills_by_trade()) == await _truth_fills(control)
    assert set(log.fills_by_trade().values()) == {1}
    assert log.topic_by_order("order.filled") == {o.id: 1 for o in orders}


async def test_fills_during_a_disconnect_are_recovered_once(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemon = await make_daemon(tracking=TrackingConfig(poll_interval_s=5.0, sweep_interval_s=60))
    async with event_log(daemon) as log, AsyncClient(endpoint(daemon)) as client:
        orders = [await client.place_order(**limit(f"gap-{i}", "49500.0")) for i in range(3)]
        await wait_for(lambda: asyncio.sleep(0, daemon.tracker.stream_up))
        await control.fault("stream_disconnect", probability=1.0, count=1)
        await control.fault("stream_drop", probability=1.0, count=3)
        await control.price("BTCUSDT", "49400.0")  # all three fill around the disconnect
        for order in orders:
            await wait_for(lambda o=order: _state(client, o.id, OrderState.FILLED))
        await asyncio.sleep(0.5)
    assert _sample(daemon, "user_stream_reconnects_total") >= 1
    assert _sample(daemon, "tracking_recoveries_total", trigger="gap") >= 2
    assert set(log.fills_by_trade()) == await _truth_fills(control)
    assert set(log.fills_by_trade().values()) == {1}
    assert log.topic_by_order("order.filled") == {o.id: 1 for o in orders}


async def test_reordered_and_late_events_are_harmless(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemon = await make_daemon(tracking=FAST)
    await control.fault("stream_reorder", probability=0.5)
    await control.fault("stream_delay", probability=0.3, params={"ms": 300})
    async with event_log(daemon) as log, AsyncClient(endpoint(daemon)) as client:
        orders = [
            await client.place_order(**limit(f"ro-{i}", f"{49500 - i * 10}.0", qty="0.020"))
            for i in range(8)
        ]
        await control.price("BTCUSDT", "49300.0")
        for order in orders:
            await wait_for(lambda o=order: _state(client, o.id, OrderState.FILLED))
        await asyncio.sleep(1.0)
        assert await compare(daemon.store, daemon.venue) == []
    assert set(log.fills_by_trade()) == await _truth_fills(control)
    assert set(log.fills_by_trade().values()) == {1}
    assert log.topic_by_order("order.filled") == {o.id: 1 for o in orders}
    assert _sample(daemon, "user_stream_lag_seconds") >= 0


async def test_not_visible_yet_is_not_lost(daemon: Daemon, control: SimControl) -> None:
    """-2013 right after an unknown submit means "not yet", not "never placed"."""
    await control.fault("timeout_after_accept", probability=1.0, count=1, path="/fapi/v1/order")
    await control.fault("read_after_write_lag", probability=1.0, count=1, params={"ms": 1500})
    async with AsyncClient(endpoint(daemon), timeout_s=10) as client:
        with contextlib.suppress(Exception):
            await client.place_order(**limit("raw-1", "49000.0"))
        order = await wait_for(
            lambda: _state_any(client, "raw-1", (OrderState.NEW, OrderState.REJECTED))
        )
        trace = await client.trace(order_id=order.id)
    assert order.state is OrderState.NEW
    truth = [o for o in await control.orders() if o["clientOrderId"] == order.client_order_id]
    assert len(truth) == 1
    decisions = [e["decision"] for e in trace["journal"] if e["kind"] == "decision"]
    assert any("not visible yet" in d for d in decisions), decisions
    assert not any("never placed" in d for d in decisions), decisions


async def _state_any(client: AsyncClient, request_id: str, states: tuple[OrderState, ...]) -> Any:
    order = await client.get_order(request_id=request_id)
    return order if order.state in states else None


async def test_cancel_with_unknown_outcome_is_resolved_by_query(
    daemon: Daemon, control: SimControl
) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(**limit("uc-1", "49000.0"))
        await control.fault("reset_after_accept", probability=1.0, count=1, path="/fapi/v1/order")
        canceled = await client.cancel_order(order_id=order.id)
        trace = await client.trace(request_id="uc-1")
    assert canceled.state is OrderState.CANCELED
    assert (await control.stats())["faults_fired"].get("reset_after_accept") == 1
    kinds = [(e["kind"], e.get("op")) for e in trace["journal"]]
    after_cancel = kinds[kinds.index(("request", "cancel_order")) :]
    assert ("response", "query_order") in after_cancel  # resolved by asking, not assumed


def _foreign(coid: str, price: str = "48000") -> VenueOrderRequest:
    return VenueOrderRequest(
        client_order_id=coid,
        terms=OrderTerms(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            quantity=Decimal("0.005"),
            price=Decimal(price),
            time_in_force=TimeInForce.GTC,
        ),
    )


async def _place_directly(sim: SimServer, coid: str) -> None:
    venue = BinanceUsdmVenue(
        VenueConfig(base_url=sim.base_url, api_key=sim.api_key, api_secret=sim.api_secret)
    )
    await venue.start()
    try:
        await venue.place_order(_foreign(coid))
    finally:
        await venue.close()


async def test_venue_orders_unknown_to_the_store_are_adopted_at_start(
    make_daemon: DaemonFactory, sim: SimServer, control: SimControl
) -> None:
    await _place_directly(sim, "manual-1")
    daemon = await make_daemon()
    adopted = await daemon.store.get_by_client_order_id("manual-1")
    assert adopted is not None and adopted.state is OrderState.NEW
    assert adopted.request_id == "adopted:manual-1"
    assert await compare(daemon.store, daemon.venue) == []
    async with event_log(daemon) as log:
        await _place_directly(sim, "manual-2")
        report = await daemon.reconciler.run()
        await asyncio.sleep(0.2)
    assert report.adopted == ("manual-2",)
    created = [e for e in log.events if e.topic == "order.created"]
    assert [e.data["order"]["client_order_id"] for e in created] == ["manual-2"]
    assert created[0].data["adopted"] is True


async def test_unknown_venue_orders_are_canceled_when_adoption_is_off(
    make_daemon: DaemonFactory, sim: SimServer, control: SimControl
) -> None:
    await _place_directly(sim, "manual-x")
    daemon = await make_daemon(tracking=TrackingConfig(adopt_unknown_orders=False))
    assert await daemon.store.get_by_client_order_id("manual-x") is None
    truth = {o["clientOrderId"]: o["status"] for o in await control.orders()}
    assert truth["manual-x"] == "CANCELED"


async def test_trace_has_requests_raw_answers_and_no_secrets(
    daemon: Daemon, sim: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(**limit("tr-1", "49000.0"))
        await client.cancel_order(order_id=order.id)
        await asyncio.sleep(0.1)  # the journal writes in the background
        trace = await client.trace(request_id="tr-1")
    kinds = [(e["kind"], e.get("op")) for e in trace["journal"]]
    assert ("request", "place_order") in kinds and ("response", "place_order") in kinds
    assert ("request", "cancel_order") in kinds and ("response", "cancel_order") in kinds
    response = next(e for e in trace["journal"] if e["kind"] == "response")
    assert response["raw"]["clientOrderId"] == order.client_order_id
    assert [s["state"] for s in trace["states"]][-1] == "CANCELED"
    blob = msgpack.packb(trace, default=str)
    for secret in (sim.api_key, sim.api_secret, "signature"):
        assert secret.encode() not in blob

    code = await asyncio.to_thread(
        main, ["trace", "--order-id", order.id, "--endpoint", endpoint(daemon)]
    )
    out = capsys.readouterr().out
    assert code == 0 and "place_order" in out and "CANCELED" in out
    code = await asyncio.to_thread(
        main, ["trace", "--request-id", "nope", "--endpoint", endpoint(daemon), "--json"]
    )
    assert code == 1 and "NOT_FOUND" in capsys.readouterr().out


async def test_reconcile_check_exit_code_follows_agreement(
    daemon: Daemon,
    sim: SimServer,
    store_kind: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OEXEC_API_KEY", sim.api_key)
    monkeypatch.setenv("OEXEC_API_SECRET", sim.api_secret)
    store = REDIS_URL if store_kind == "redis" else f"sqlite:///{daemon.config.store.sqlite_path}"
    argv = ["reconcile", "--check", "--venue", sim.base_url, "--store", store]
    argv += ["--prefix", daemon.store_prefix]
    async with AsyncClient(endpoint(daemon)) as client:
        await client.place_order(**limit("rc-1", "49000.0"))
    assert await asyncio.to_thread(main, argv) == 0
    assert "agree" in capsys.readouterr().out
    await _place_directly(sim, "manual-rc")
    assert await asyncio.to_thread(main, argv) == 1
    out = capsys.readouterr().out
    assert "missing_in_store" in out and "manual-rc" in out


async def test_dead_man_switch_is_armed_with_open_orders_and_disarmed_without(
    make_daemon: DaemonFactory, sim: SimServer
) -> None:
    daemon = await make_daemon(tracking=TrackingConfig(dead_man_switch_s=30))
    countdowns = sim.exchange._state.countdowns
    async with AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(**limit("dm-1", "49000.0"))
        await wait_for(lambda: asyncio.sleep(0, any(k[1] == "BTCUSDT" for k in countdowns)))
        await client.cancel_order(order_id=order.id)
        await wait_for(lambda: asyncio.sleep(0, not countdowns))
    assert daemon.dead_man.armed == set()
