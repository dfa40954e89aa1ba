"""Adoption after a long user-stream disconnect, end to end (docs/tracking.md,
"Reconciliation"): while the daemon's stream is down for longer than
``tracking.long_disconnect_s`` someone places orders on the account directly; when the
stream comes back the daemon reconciles and adopts them (announced as ``order.created``
with ``"adopted": true``) or, with ``adopt_unknown_orders = false``, cancels them.

The stream is held down the way a venue can: the listen key expires and creating a new
one fails (5xx) for a while. REST stays up, so the daemon polls meanwhile; polling
recovers the daemon's own orders but never adopts: only the long-gap reconciliation does.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

import pytest

from oexec.client import AsyncClient
from oexec.config import TrackingConfig, VenueConfig
from oexec.models import OrderState, OrderTerms, OrderType, Side, TimeInForce
from oexec.service.ports import VenueOrderRequest
from oexec.service.reconcile import compare
from oexec.sim.app import SimServer
from oexec.venue.binance.adapter import BinanceUsdmVenue

from ..e2e.conftest import DaemonFactory, SimControl, endpoint, events_endpoint
from .helpers import EventLog, limit, wait_for

LONG_GAP_S = 1.5
#: openOrders without a symbol weighs 40: polling every 2 s is 1,200 of the venue's
#: 2,400 per minute (every 0.3 s would exhaust it and throttle the reconciliation).
POLL_S = 2.0


async def _place_directly(sim: SimServer, coid: str, price: str) -> None:
    """An order on the account from outside the daemon (a person, another tool)."""
    venue = BinanceUsdmVenue(
        VenueConfig(base_url=sim.base_url, api_key=sim.api_key, api_secret=sim.api_secret)
    )
    await venue.start()
    try:
        await venue.place_order(
            VenueOrderRequest(
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
        )
    finally:
        await venue.close()


async def _truth(control: SimControl) -> dict[str, dict[str, Any]]:
    return {o["clientOrderId"]: o for o in await control.orders()}


@pytest.mark.parametrize("adopt", [True, False], ids=["adopt", "cancel"])
async def test_orders_placed_during_a_long_stream_outage_are_adopted_or_canceled(
    adopt: bool, make_daemon: DaemonFactory, sim: SimServer, control: SimControl
) -> None:
    daemon = await make_daemon(
        tracking=TrackingConfig(
            poll_interval_s=POLL_S,
            sweep_interval_s=60,
            long_disconnect_s=LONG_GAP_S,
            adopt_unknown_orders=adopt,
        )
    )
    tracker = daemon.tracker
    log = EventLog()
    collector = asyncio.create_task(log.collect(events_endpoint(daemon)))
    try:
        async with AsyncClient(endpoint(daemon)) as client:
            await wait_for(lambda: asyncio.sleep(0, tracker.stream_up))
            own = await client.place_order(**limit("lg-own", "49500.0"))
            await asyncio.sleep(0.3)  # ZeroMQ slow joiner: the collector is connected

            # The stream goes down and stays down: key expired, no new key for now.
            await control.fault("error_5xx", probability=1.0, path="/fapi/v1/listenKey")
            await control.fault("listen_key_expiry", probability=1.0, count=1)
            await wait_for(lambda: asyncio.sleep(0, not tracker.stream_up))

            await _place_directly(sim, "manual-lg-1", "48000")
            await control.price("BTCUSDT", "49400.0")  # the daemon's own order fills
            await wait_for(lambda: _state(client, own.id, OrderState.FILLED))  # by polling
            await asyncio.sleep(LONG_GAP_S + 0.5)  # down longer than long_disconnect_s
            assert not tracker.stream_up
            # Polling recovers our orders; it does not adopt (only reconciliation does).
            assert await daemon.store.get_by_client_order_id("manual-lg-1") is None

            await control.clear_faults()  # a new key can be had: the stream comes back
            await wait_for(lambda: asyncio.sleep(0, tracker.stream_up), within_s=20)
            if adopt:
                adopted = await wait_for(
                    lambda: daemon.store.get_by_client_order_id("manual-lg-1"), within_s=10
                )
                assert adopted.request_id == "adopted:manual-lg-1"
                assert adopted.state is OrderState.NEW
                assert adopted.price == Decimal("48000")
            else:
                await wait_for(lambda: _venue_status(control, "manual-lg-1", "CANCELED"))
                assert await daemon.store.get_by_client_order_id("manual-lg-1") is None
            await wait_for(lambda: _agree(daemon))
            await asyncio.sleep(0.3)  # events in flight
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector

    assert _sample(daemon, "tracking_recoveries_total", trigger="reconcile") >= 2  # start + gap
    created = [e.data for e in log.events if e.topic == "order.created"]
    adopted_events = [d for d in created if d.get("adopted")]
    if adopt:
        assert [d["order"]["client_order_id"] for d in adopted_events] == ["manual-lg-1"]
    else:
        assert adopted_events == []
    assert log.topic_by_order("order.filled") == {own.id: 1}
    truth = await _truth(control)
    assert set(truth) == {own.client_order_id, "manual-lg-1"}  # nothing placed by us twice
    assert truth["manual-lg-1"]["status"] == ("NEW" if adopt else "CANCELED")


async def _state(client: AsyncClient, order_id: str, state: OrderState) -> Any:
    order = await client.get_order(order_id=order_id)
    return order if order.state is state else None


async def _venue_status(control: SimControl, coid: str, status: str) -> bool:
    return (await _truth(control)).get(coid, {}).get("status") == status


async def _agree(daemon: Any) -> bool:
    return not await compare(daemon.store, daemon.venue)


def _sample(daemon: Any, name: str, **labels: str) -> float:
    return daemon.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("store_kind", ["sqlite"])
async def test_a_failed_long_gap_reconciliation_is_retried(
    make_daemon: DaemonFactory,
    sim: SimServer,
    control: SimControl,
    caplog: pytest.LogCaptureFixture,
) -> None:
    daemon = await make_daemon(
        tracking=TrackingConfig(poll_interval_s=POLL_S, sweep_interval_s=60, long_disconnect_s=1.0)
    )
    tracker = daemon.tracker
    await wait_for(lambda: asyncio.sleep(0, tracker.stream_up))
    # The venue is unwell: openOrders fails, and no listen key can be had for 3 stream
    # attempts of 4 requests each (>= 1.75 s of reconnect backoff: a long gap).
    await control.fault("error_5xx", probability=1.0, path="/fapi/v1/openOrders")
    await control.fault("error_5xx", probability=1.0, count=12, path="/fapi/v1/listenKey")
    await control.fault("listen_key_expiry", probability=1.0, count=1)
    await wait_for(lambda: asyncio.sleep(0, not tracker.stream_up))
    await _place_directly(sim, "manual-lg-x", "48000")
    await wait_for(lambda: _stream_connections(control, 1), within_s=20)  # it is back
    # Keep openOrders failing until the reconciliation has given up on it (its retries
    # take <= ~3 s; the message is today's code's, the bound serves a fixed one).
    with contextlib.suppress(TimeoutError):
        await wait_for(lambda: asyncio.sleep(0, "StreamGap" in caplog.text), within_s=8)
    await control.clear_faults()  # the venue is well again

    adopted = await wait_for(
        lambda: daemon.store.get_by_client_order_id("manual-lg-x"), within_s=10
    )
    assert adopted.request_id == "adopted:manual-lg-x"
    assert tracker.stream_up


async def _stream_connections(control: SimControl, count: int) -> bool:
    return int((await control.stats())["stream_connections"]) == count
