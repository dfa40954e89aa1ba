"""BinanceUsdmVenue + BinanceUserStream against the bundled simulator (oexec.sim SimServer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from oexec.config import VenueConfig
from oexec.errors import VenueOrderNotFoundError
from oexec.models import OrderTerms, OrderType, Side, TimeInForce, VenueOrderStatus
from oexec.models.venue import OrderUpdate
from oexec.service.ports import VenueOrderRequest
from oexec.venue.binance import BinanceUsdmVenue, BinanceUserStream, StreamGap

sim_app = pytest.importorskip("oexec.sim.app")


@pytest.fixture
async def sim_venue() -> AsyncIterator[BinanceUsdmVenue]:
    async with sim_app.SimServer() as sim:
        config = VenueConfig(
            base_url=sim.base_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            time_sync_interval_s=0,
        )
        venue = BinanceUsdmVenue(config)
        await venue.start()
        yield venue
        await venue.close()


async def test_place_query_cancel_open_orders_and_stream(sim_venue: BinanceUsdmVenue) -> None:
    venue = sim_venue
    info = await venue.exchange_info()
    rules = info.symbols["BTCUSDT"]
    mark = await venue.mark_price("BTCUSDT")
    price = (mark * Decimal("0.97")).quantize(rules.tick_size)
    qty = max(rules.min_qty, (rules.min_notional * 2 / price).quantize(rules.step_size))
    stream = BinanceUserStream(venue)
    events = stream.events()
    first = await asyncio.wait_for(anext(events), 5)
    assert isinstance(first, StreamGap)
    request = VenueOrderRequest(
        client_order_id="oexec-int-1",
        terms=OrderTerms(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            quantity=qty,
            price=price,
            time_in_force=TimeInForce.GTC,
        ),
    )
    placed = await venue.place_order(request)
    assert placed.status is VenueOrderStatus.NEW and placed.client_order_id == "oexec-int-1"
    queried = await venue.query_order("BTCUSDT", client_order_id="oexec-int-1")
    assert queried.exchange_order_id == placed.exchange_order_id
    assert queried.quantity == qty and queried.price == price
    assert [o.client_order_id for o in await venue.open_orders("BTCUSDT")] == ["oexec-int-1"]
    canceled = await venue.cancel_order("BTCUSDT", client_order_id="oexec-int-1")
    assert canceled.status is VenueOrderStatus.CANCELED
    with pytest.raises(VenueOrderNotFoundError):
        await venue.cancel_order("BTCUSDT", client_order_id="oexec-int-1")
    assert await venue.open_orders("BTCUSDT") == []
    seen: list[str] = []
    while len(seen) < 2:
        item = await asyncio.wait_for(anext(events), 5)
        if isinstance(item, OrderUpdate) and item.order.client_order_id == "oexec-int-1":
            seen.append(item.execution_type)
    assert seen == ["NEW", "CANCELED"]
    await stream.close()
