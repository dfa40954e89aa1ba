"""ccxt.pro binanceusdm, unmodified, on the simulator's routed streams: its linear WebSocket
base ``…/ws`` becomes ``/public/ws`` (depth, bookTicker), ``/market/ws`` (aggTrade, kline,
markPrice) and ``/private/ws?listenKey=`` (user data), as on the venue since 2026."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from oexec.sim.app import SimServer
from oexec.sim.config import SimConfig

pro = pytest.importorskip("ccxt.pro")
SYMBOL = "BTC/USDT:USDT"
WAIT_S = 5.0


@pytest.fixture
async def moving_sim() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig(seed=23, tick_interval_ms=50)) as server:
        yield server


@pytest.fixture
async def exchange(moving_sim: SimServer) -> AsyncIterator[Any]:
    client = pro.binanceusdm(
        {
            "apiKey": moving_sim.api_key,
            "secret": moving_sim.api_secret,
            "enableRateLimit": False,
            "options": {"fetchMarkets": ["linear"], "fetchCurrencies": False},
        }
    )
    for name, url in list(client.urls["api"].items()):
        if isinstance(url, str):
            client.urls["api"][name] = re.sub(r"^https://[^/]+", moving_sim.base_url, url)
    client.urls["api"]["ws"]["linear"] = f"{moving_sim.ws_url}/ws"
    try:
        yield client
    finally:
        await client.close()


async def test_ccxt_pro_watches_book_trades_candles_and_marks(exchange: Any) -> None:
    book = await asyncio.wait_for(exchange.watch_order_book(SYMBOL), WAIT_S)
    best_bid, best_ask = book["bids"][0][0], book["asks"][0][0]
    assert best_bid < best_ask and best_ask - best_bid < 1
    for _ in range(3):  # the local book stays consistent through several diffs
        book = await asyncio.wait_for(exchange.watch_order_book(SYMBOL), WAIT_S)
        assert book["bids"][0][0] < book["asks"][0][0]
    trades = await asyncio.wait_for(exchange.watch_trades(SYMBOL), WAIT_S)  # @trade, /public
    assert trades and trades[-1]["price"] > 0
    aggregated = await asyncio.wait_for(
        exchange.watch_trades(SYMBOL, params={"name": "aggTrade"}), WAIT_S
    )  # /market
    assert aggregated and aggregated[-1]["amount"] > 0
    candles = await asyncio.wait_for(exchange.watch_ohlcv(SYMBOL, "1m"), WAIT_S)
    assert candles and len(candles[-1]) == 6
    ticker = await asyncio.wait_for(exchange.watch_bids_asks([SYMBOL]), WAIT_S)
    assert ticker[SYMBOL]["bid"] < ticker[SYMBOL]["ask"]
    mark = await asyncio.wait_for(exchange.watch_mark_price(SYMBOL), WAIT_S)
    assert mark["markPrice"] > 0


async def test_ccxt_pro_user_stream_on_the_private_path(exchange: Any) -> None:
    await exchange.load_markets()
    watching = asyncio.create_task(exchange.watch_orders(SYMBOL))
    await asyncio.sleep(0.5)  # listenKey created, /private/ws?listenKey= connected
    placed = await exchange.create_order(SYMBOL, "market", "buy", 0.01)
    orders = await asyncio.wait_for(watching, WAIT_S)
    assert orders[-1]["id"] == placed["id"]
    assert Decimal(str(orders[-1]["amount"])) == Decimal("0.01")
