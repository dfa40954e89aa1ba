"""A SIGTERM during a burst loses nothing: store and venue agree after a clean exit.

``oexec run`` takes a steady stream of orders against a slow venue that sometimes
answers "unknown" after placing the order. Mid-stream it gets SIGTERM. It must answer
later requests with SHUTTING_DOWN (never sent), finish or resolve every submit already
in flight, flush, and exit 0 within systemd's stop timeout. Then the SQLite store it
leaves behind must hold every order the venue has, in the venue's state, and nothing
half-done (SUBMITTING/UNKNOWN).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from oexec.client import AsyncClient, ClientError
from oexec.config import StoreConfig
from oexec.models import Order, OrderState
from oexec.service.client_ids import client_order_id_for
from oexec.sim.app import SimServer
from oexec.store import open_store

from ..e2e.conftest import SimControl
from .proc import STOP_TIMEOUT_S, OexecRun

ORDERS = 60
SIGTERM_AFTER = 25  # orders sent before the signal
GAP_S = 0.01


async def place(client: AsyncClient, rid: str) -> Order | str:
    try:
        return await client.place_order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            quantity="0.010",
            price="48000.0",
            time_in_force="GTC",
            request_id=rid,
        )
    except ClientError as exc:
        return str(getattr(exc.code, "value", exc.code))


async def stored_orders(path: Path) -> dict[str, Order]:
    store = open_store(StoreConfig(sqlite_path=str(path)))
    await store.start()
    try:
        orders = await store.history(None, limit=1000)
    finally:
        await store.close()
    return {o.client_order_id: o for o in orders}


async def test_sigterm_during_a_burst_loses_nothing(
    sim: SimServer, control: SimControl, tmp_path: Path
) -> None:
    daemon = OexecRun(sim, tmp_path)
    daemon.spawn()
    try:
        await daemon.wait_ready()
        await control.fault("latency", path="/fapi/v1/order", params={"min_ms": 100, "max_ms": 500})
        await control.fault("timeout_after_accept", probability=0.2, path="/fapi/v1/order")
        replies: dict[str, Order | str] = {}
        async with AsyncClient(daemon.endpoint, timeout_s=8.0, retries=0) as client:
            tasks: dict[str, asyncio.Task[Order | str]] = {}
            for i in range(ORDERS):
                if i == SIGTERM_AFTER:
                    stop = asyncio.create_task(daemon.terminate())
                rid = f"term-{i}"
                tasks[rid] = asyncio.create_task(place(client, rid))
                await asyncio.sleep(GAP_S)
            for rid, task in tasks.items():
                replies[rid] = await task
            code, seconds = await stop
    finally:
        daemon.kill()
    fired = (await control._call("GET", "faults"))["fired"]
    await control.clear_faults()
    assert fired.get("timeout_after_accept", 0) >= 1  # some submits had unknown outcomes
    log = daemon.log_text()
    assert code == 0 and seconds < STOP_TIMEOUT_S, log
    assert "Traceback" not in log, log

    outcomes = [r if isinstance(r, str) else "ok" for r in replies.values()]
    assert outcomes.count("ok") >= 5, outcomes  # the burst did reach the venue
    assert "SHUTTING_DOWN" in outcomes or "TIMEOUT" in outcomes, outcomes  # and was cut

    truth = {o["clientOrderId"]: o for o in await control.orders()}
    stored = await stored_orders(daemon.store_path)
    for cid, venue in truth.items():  # every venue order is in the store, as it is there
        assert cid in stored, f"venue order {cid} missing from the store"
        assert stored[cid].exchange_order_id == str(venue["orderId"])
        assert stored[cid].state.value == venue["status"]
        assert stored[cid].quantity == Decimal(str(venue["origQty"]))
    half_done = [
        o for o in stored.values() if o.state in (OrderState.SUBMITTING, OrderState.UNKNOWN)
    ]
    assert half_done == []
    for rid, reply in replies.items():
        cid = client_order_id_for(rid)
        if isinstance(reply, Order):
            assert cid in truth and stored[cid].state is OrderState.NEW
        elif reply == "SHUTTING_DOWN":
            assert cid not in truth, f"{rid} was refused but reached the venue"
    check_unsent_are_not_stored(stored, truth)


def check_unsent_are_not_stored(stored: dict[str, Order], truth: dict[str, Any]) -> None:
    """Store orders the venue never saw ended as typed rejections, not as live orders."""
    for cid, order in stored.items():
        if cid not in truth:
            assert order.state is OrderState.REJECTED, order
