"""Third-party client: unmodified ccxt binanceusdm, only its URLs pointed at the simulator."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from oexec.sim.app import SimServer
from oexec.sim.config import SimConfig

SYMBOL = "BTC/USDT:USDT"


def point_at(exchange: Any, base_url: str) -> None:
    """Replace the host of every API URL (unknown calls then show up as sim 404s)."""
    for name, url in list(exchange.urls["api"].items()):
        exchange.urls["api"][name] = re.sub(r"^https://[^/]+", base_url, url)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig(seed=11)) as server:
        yield server


@pytest.fixture
async def exchange(sim: SimServer) -> AsyncIterator[Any]:
    client = ccxt.binanceusdm(
        {
            "apiKey": sim.api_key,
            "secret": sim.api_secret,
            "enableRateLimit": False,  # ccxt's own client-side throttle only slows the test
            "options": {
                "fetchMarkets": ["linear"],
                "fetchCurrencies": False,
                "warnOnFetchOpenOrdersWithoutSymbol": False,
            },
        }
    )
    point_at(client, sim.base_url)
    try:
        yield client
    finally:
        await client.close()


async def test_ccxt_full_order_cycle(exchange: Any, sim: SimServer) -> None:
    markets = await exchange.load_markets()
    assert SYMBOL in markets and markets[SYMBOL]["limits"]["amount"]["min"] == 0.001

    order = await exchange.create_order(
        SYMBOL, "limit", "buy", 0.01, 49000, {"newClientOrderId": "cc-1"}
    )
    assert order["status"] == "open" and order["clientOrderId"] == "cc-1"
    fetched = await exchange.fetch_order(order["id"], SYMBOL)
    assert fetched["id"] == order["id"] and fetched["price"] == 49000

    edited = await exchange.edit_order(order["id"], SYMBOL, "limit", "buy", 0.02, 49100)
    assert edited["price"] == 49100 and edited["amount"] == 0.02
    open_orders = await exchange.fetch_open_orders(SYMBOL)
    assert [o["id"] for o in open_orders] == [order["id"]]
    assert len(await exchange.fetch_open_orders()) == 1

    cancelled = await exchange.cancel_order(order["id"], SYMBOL)
    assert cancelled["status"] == "canceled"
    assert await exchange.fetch_open_orders(SYMBOL) == []

    market = await exchange.create_order(SYMBOL, "market", "buy", 0.01)
    trades = await exchange.fetch_my_trades(SYMBOL)
    assert [t["order"] for t in trades] == [market["id"]]
    assert trades[0]["amount"] == 0.01

    balance = await exchange.fetch_balance()
    assert balance["USDT"]["total"] > 0
    positions = await exchange.fetch_positions([SYMBOL])
    assert positions[0]["contracts"] == 0.01

    stop = await exchange.create_order(
        SYMBOL, "market", "sell", 0.01, None, {"stopPrice": 40000, "reduceOnly": True}
    )
    assert stop["id"]
    await exchange.set_leverage(10, SYMBOL)

    stats = sim.state.stats
    assert set(stats.responses_by_status) == {"200"}, stats.responses_by_status
    assert all(path.startswith("/fapi/") for path in stats.requests_by_path)


async def test_ccxt_errors_map_to_ccxt_exceptions(exchange: Any) -> None:
    await exchange.load_markets()
    with pytest.raises(ccxt.ExchangeError, match="-4164"):
        await exchange.create_order(SYMBOL, "limit", "buy", 0.01, 1000)  # min notional: -4164
    with pytest.raises(ccxt.ExchangeError, match="-2019"):
        await exchange.create_order(SYMBOL, "limit", "buy", 100, 49000)  # -2019 margin
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.fetch_order("123456", SYMBOL)
    exchange.secret = "wrong"
    with pytest.raises(ccxt.AuthenticationError):
        await exchange.fetch_balance()


async def test_ccxt_listen_key_and_user_stream(exchange: Any, sim: SimServer) -> None:
    await exchange.load_markets()
    reply = await exchange.fapiPrivatePostListenKey()
    key = reply["listenKey"]
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{sim.ws_url}/ws/{key}") as ws:
            await exchange.create_order(
                SYMBOL, "limit", "sell", 0.01, 51000, {"newClientOrderId": "ws-1"}
            )
            message = await ws.receive(timeout=5)
            event = json.loads(message.data)
            assert event["e"] == "ORDER_TRADE_UPDATE" and event["o"]["c"] == "ws-1"
    await exchange.fapiPrivatePutListenKey()
    await exchange.fapiPrivateDeleteListenKey()
