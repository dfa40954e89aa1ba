"""The official SDK (binance-sdk-derivatives-trading-usds-futures), unmodified, on the
simulator's routed streams: it opens /market/stream, /public/stream and /private/stream
and subscribes with SUBSCRIBE (UUID string ids); user data by SUBSCRIBE of the listenKey on
/private/stream. Its pydantic models validate every payload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from oexec.sim.app import SimServer
from oexec.sim.config import SimConfig

from .helpers import VenueClient, limit_order

configuration = pytest.importorskip("binance_common.configuration")
sdk = pytest.importorskip(
    "binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures"
)
WAIT_S = 5.0


@pytest.fixture
async def moving() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig(seed=29, tick_interval_ms=50)) as server:
        yield server


async def first(handle: Any) -> Any:
    """The first message a stream handle delivers."""
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    handle.on("message", lambda data: got.done() or got.set_result(data))
    return await asyncio.wait_for(got, WAIT_S)


async def test_official_sdk_streams_public_market_and_user_data(moving: SimServer) -> None:
    config = configuration.ConfigurationWebSocketStreams(stream_url=moving.ws_url)
    client = sdk.DerivativesTradingUsdsFutures(config_ws_streams=config)
    connection = await client.websocket_streams.create_connection()
    try:
        trade = await first(await connection.aggregate_trade_streams(symbol="btcusdt"))
        assert trade.s == "BTCUSDT" and float(trade.p) > 0
        mark = await first(await connection.mark_price_stream(symbol="btcusdt", update_speed="1s"))
        assert mark.s == "BTCUSDT" and mark.r == "0.00010000"
        kline = await first(
            await connection.kline_candlestick_streams(symbol="btcusdt", interval="1m")
        )
        assert kline.k.i == "1m"
        book = await first(await connection.individual_symbol_book_ticker_streams(symbol="btcusdt"))
        assert float(book.b) < float(book.a)
        depth = await first(
            await connection.diff_book_depth_streams(symbol="btcusdt", update_speed="100ms")
        )
        assert depth.u >= depth.U and depth.b

        async with aiohttp.ClientSession() as session:
            venue = VenueClient(session, moving.base_url, moving.api_key, moving.api_secret)
            key = (await venue.call("POST", "/fapi/v1/listenKey")).body["listenKey"]
            user = await connection.user_data(key)
            events: list[Any] = []
            user.on("message", events.append)
            await asyncio.sleep(0.3)
            placed = await venue.call(
                "POST", "/fapi/v1/order", limit_order(price="20000.0"), signed=True
            )
            assert placed.status == 200
            for _ in range(50):
                if events:
                    break
                await asyncio.sleep(0.1)
        assert events, "no user-data event on /private/stream"
        update = events[0].actual_instance  # the SDK picked its OrderTradeUpdate model
        assert type(update).__name__ == "OrderTradeUpdate"
        assert update.o.i == placed.body["orderId"] and update.o.x == "NEW"
    finally:
        await connection.close_connection(close_session=True)
