"""A daemon that stored a change and died before publishing it: the next run publishes
the stored events, flagged ``redelivered``, and acknowledges them (the outbox)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from oexec.client import AsyncClient, Subscriber
from oexec.config import EventsConfig
from oexec.models import Fill, Side
from oexec.service.outbox import fill_events, pack_events
from oexec.store import open_store

from ..ports import free_port
from .conftest import DaemonFactory, endpoint, stop_or_explain
from .test_orders_e2e import wait_for

LATER_MS = 2**50


async def test_events_stored_but_never_published_are_redelivered_at_the_next_start(
    make_daemon: DaemonFactory,
) -> None:
    pub = f"tcp://127.0.0.1:{free_port()}"
    events = EventsConfig(publish=(pub,))
    first = await make_daemon(events=events)
    async with AsyncClient(endpoint(first)) as client:
        order = await client.place_order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002", request_id="ob-1"
        )
    config, prefix = first.config, first.store_prefix
    await stop_or_explain(first)

    # What a crash between the store's write and the publish leaves behind: a recorded
    # fill whose event is still in the outbox.
    fill = Fill(
        order_id=order.id, exchange_order_id=order.exchange_order_id or "0",
        client_order_id=order.client_order_id, symbol="BTCUSDT", side=Side.BUY,
        trade_id=987_654_321, price=Decimal("50000.0"), quantity=Decimal("0.001"),
        commission=Decimal("0.02"), commission_asset="USDT", is_maker=False,
        realized_pnl=Decimal("0"), time=1,
    )  # fmt: skip
    store = open_store(config.store, prefix=prefix)
    await store.start()
    try:
        assert await store.add_fill(fill, events=pack_events(fill_events(fill)))
    finally:
        await store.close()

    with Subscriber(pub, ["fill"]) as sub:  # connected before the daemon binds
        second = await make_daemon(events=events)
        async with asyncio.timeout(15):  # a shared Redis waits out the 5 s grace first
            while True:
                event = await sub.receive()
                if event.data["fill"]["trade_id"] == fill.trade_id:
                    break
    assert event.data["redelivered"] is True
    assert event.fill == fill

    async def acknowledged() -> bool:
        return not await second.store.outbox_take(LATER_MS)

    await wait_for(acknowledged, within_s=5)
    assert second.writer.relay.redelivered >= 1
