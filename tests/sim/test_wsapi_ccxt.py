"""Third-party client over the WebSocket API: unmodified ccxt.pro binanceusdm
(create_order_ws, fetch_order_ws, edit_order_ws, cancel_order_ws), only its URLs pointed
at the simulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import attrs
import ccxt.pro as ccxtpro
import pytest

from oexec.sim.app import SimServer
from oexec.sim.config import SimConfig

from .test_sim_ccxt import SYMBOL


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig(seed=12)) as server:
        yield server


@pytest.fixture
async def exchange(sim: SimServer) -> AsyncIterator[Any]:
    client = ccxtpro.binanceusdm(
        {
            "apiKey": sim.api_key,
            "secret": sim.api_secret,
            "enableRateLimit": False,
            "options": {
                "fetchMarkets": ["linear"],
                "fetchCurrencies": False,
                "warnOnFetchOpenOrdersWithoutSymbol": False,
            },
        }
    )
    for name, url in list(client.urls["api"].items()):  # REST (load_markets) -> the sim
        if isinstance(url, str):
            client.urls["api"][name] = re.sub(r"^https://[^/]+", sim.base_url, url)
    client.urls["api"]["ws"]["ws-api"]["linear"] = sim.ws_api_url
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


async def test_ccxt_pro_order_cycle_over_the_websocket_api(exchange: Any, sim: SimServer) -> None:
    params = {"newClientOrderId": "ccws-1"}
    order = await exchange.create_order_ws(SYMBOL, "limit", "buy", 0.01, 49000, params)
    assert order["status"] == "open" and order["clientOrderId"] == "ccws-1"
    fetched = await exchange.fetch_order_ws(order["id"], SYMBOL)
    assert fetched["id"] == order["id"] and fetched["price"] == 49000

    edited = await exchange.edit_order_ws(order["id"], SYMBOL, "limit", "buy", 0.02, 49100)
    assert edited["price"] == 49100 and edited["amount"] == 0.02
    cancelled = await exchange.cancel_order_ws(order["id"], SYMBOL)
    assert cancelled["status"] == "canceled"

    truth = {o["clientOrderId"]: o for o in sim.exchange.ground_truth()}
    assert truth["ccws-1"]["status"] == "CANCELED"
    ws_requests = {p: n for p, n in sim.state.stats.requests_by_path.items() if "ws-fapi" in p}
    assert ws_requests["/ws-fapi/v1 order.place"] == 1
    assert ws_requests["/ws-fapi/v1 order.modify"] == 1
    assert "/fapi/v1/order" not in sim.state.stats.requests_by_path  # nothing went over REST


async def test_ccxt_pro_rejected_order_carries_the_venue_code(exchange: Any) -> None:
    # 0.001 BTC at 49000 is below BTCUSDT's 100 USDT minimum notional: the venue's -4164.
    with pytest.raises(ccxtpro.ExchangeError) as info:
        await exchange.create_order_ws(SYMBOL, "limit", "buy", 0.001, 49000)
    assert "-4164" in str(info.value)


async def test_ccxt_pro_rate_limited_order(exchange: Any, sim: SimServer) -> None:
    config = sim.state.limiter.config
    sim.state.limiter.reconfigure(attrs.evolve(config, orders_per_10s=1))
    await exchange.create_order_ws(SYMBOL, "limit", "buy", 0.01, 49000)
    with pytest.raises(Exception) as info:
        await exchange.create_order_ws(SYMBOL, "limit", "buy", 0.01, 49000)
    assert "-1015" in str(info.value)
    assert sim.state.stats.responses_by_status["429"] == 1


async def test_ccxt_pro_balance_positions_and_book_over_the_websocket_api(exchange: Any) -> None:
    assert await exchange.fetch_positions_ws([SYMBOL]) == []
    await exchange.create_order_ws(SYMBOL, "market", "buy", 0.01)
    positions = await exchange.fetch_positions_ws([SYMBOL])
    assert [(p["symbol"], p["contracts"], p["side"]) for p in positions] == [(SYMBOL, 0.01, "long")]
    # ccxt reads futures balances from account.balance (its default, account.status, with
    # the spot shape) and skips assets whose updateTime is 0: the fill above set it
    balance = await exchange.fetch_balance_ws({"method": "account.balance"})
    assert 0 < balance["USDT"]["total"] < 100000  # the taker fee was paid
    book = await exchange.fetch_order_book_ws(SYMBOL, 5)
    assert len(book["bids"]) == 5 and book["bids"][0][0] < book["asks"][0][0]
