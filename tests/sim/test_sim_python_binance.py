"""Third-party client: unmodified python-binance AsyncClient, futures URL pointed at the sim."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

binance = pytest.importorskip("binance")

from binance.async_client import AsyncClient  # noqa: E402
from binance.exceptions import BinanceAPIException  # noqa: E402

from oexec.sim.app import SimServer  # noqa: E402


@pytest.fixture
async def futures(sim: SimServer) -> AsyncIterator[Any]:
    client = AsyncClient(sim.api_key, sim.api_secret)  # create() would ping the spot API
    client.FUTURES_URL = f"{sim.base_url}/fapi"
    try:
        yield client
    finally:
        await client.close_connection()


async def test_python_binance_order_cycle(futures: Any, sim: SimServer) -> None:
    info = await futures.futures_exchange_info()
    assert "BTCUSDT" in {s["symbol"] for s in info["symbols"]}
    order = await futures.futures_create_order(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.010",
        price="49000",
        newClientOrderId="pb-1",
    )
    assert order["status"] == "NEW"
    got = await futures.futures_get_order(symbol="BTCUSDT", origClientOrderId="pb-1")
    assert got["orderId"] == order["orderId"]
    modified = await futures.futures_modify_order(
        symbol="BTCUSDT", orderId=order["orderId"], side="BUY", quantity="0.010", price="49100"
    )
    assert Decimal(modified["price"]) == Decimal("49100")
    assert len(await futures.futures_get_open_orders(symbol="BTCUSDT")) == 1
    cancelled = await futures.futures_cancel_order(symbol="BTCUSDT", origClientOrderId="pb-1")
    assert cancelled["status"] == "CANCELED"
    await futures.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010"
    )
    assert len(await futures.futures_account_trades(symbol="BTCUSDT")) == 1
    assert "assets" in await futures.futures_account()
    assert await futures.futures_account_balance()
    positions = await futures.futures_position_information(symbol="BTCUSDT")
    assert Decimal(positions[0]["positionAmt"]) == Decimal("0.01")
    key = await futures.futures_stream_get_listen_key()
    await futures.futures_stream_keepalive(key)
    await futures.futures_stream_close(key)
    assert set(sim.state.stats.responses_by_status) == {"200"}


async def test_python_binance_error_codes(futures: Any) -> None:
    with pytest.raises(BinanceAPIException) as exc:
        await futures.futures_get_order(symbol="BTCUSDT", orderId=42)
    assert exc.value.code == -2013
