"""Issue 16 end to end, on both stores: amend in place, a batch of 12 (and again), batch
cancel, positions and balances from the daemon's own view against the venue's answers,
leverage/margin type, and the [validation] symbols allow-list."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import attrs
import pytest

from oexec.app import Daemon
from oexec.client import AsyncClient, ClientError
from oexec.config import TrackingConfig, ValidationConfig
from oexec.models import Order, OrderState
from oexec.sim.app import SimServer

from .conftest import DaemonFactory, SimControl, endpoint

D = Decimal


def limit(request_id: str, price: str = "49000.0", qty: str = "0.010") -> dict[str, Any]:
    return dict(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity=qty,
        price=price,
        time_in_force="GTC",
        request_id=request_id,
    )


async def venue_get(sim: SimServer, path: str, **params: str) -> Any:
    """A signed GET straight to the venue, as any Binance client would send it."""
    query = urlencode({**params, "timestamp": str(int(time.time() * 1000))})
    signature = hmac.new(sim.api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{sim.base_url}{path}?{query}&signature={signature}",
            headers={"X-MBX-APIKEY": sim.api_key},
        ) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def eventually(check: Any, within_s: float = 8.0) -> Any:
    """Poll ``check`` (async: a truthy value, or AssertionError / ValueError - a row not
    there yet - until ``within_s``)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            value = await check()
            if value:
                return value
        except (AssertionError, ValueError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_amend_in_place(daemon: Daemon, control: SimControl) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(**limit("amend-1"))
        amended = await client.modify_order(order_id=order.id, price="48500.0")
        assert (amended.id, amended.exchange_order_id) == (order.id, order.exchange_order_id)
        assert amended.price == D("48500.0") and amended.state is OrderState.NEW
        cut = await client.modify_order(request_id="amend-1", quantity="0.008")
        assert (cut.price, cut.quantity) == (D("48500.0"), D("0.008"))
        assert (await client.get_order(order_id=order.id)).price == D("48500.0")
        journal = (await client.trace(order_id=order.id))["journal"]
        amends = [e for e in journal if e.get("op") == "modify_order"]
        assert [e["kind"] for e in amends] == ["request", "response"] * 2
        assert amends[0]["price"] == "48500.0" and D(amends[1]["raw"]["price"]) == D("48500")
        venue = await control.orders()
        assert len(venue) == 1 and venue[0]["clientOrderId"] == order.client_order_id
        assert (D(venue[0]["price"]), D(venue[0]["origQty"])) == (D("48500"), D("0.008"))

        with pytest.raises(ClientError) as tick:  # the same filters as a new order
            await client.modify_order(order_id=order.id, price="48500.05")
        assert tick.value.code == "PRICE_TICK"
        await client.cancel_order(order_id=order.id)
        with pytest.raises(ClientError) as closed:
            await client.modify_order(order_id=order.id, price="48000.0")
        assert closed.value.code == "ORDER_NOT_AMENDABLE"
        with pytest.raises(ClientError) as missing:
            await client.modify_order(order_id="nope", price="48000.0")
        assert missing.value.code == "NOT_FOUND"
    venue = await control.orders()
    assert len(venue) == 1 and D(venue[0]["price"]) == D("48500")


async def test_batch_of_twelve_with_one_invalid_then_again_then_cancel(
    daemon: Daemon, control: SimControl
) -> None:
    batch = [limit(f"b12-{i}", price=f"{48000 + 10 * i}.0") for i in range(12)]
    batch[5]["price"] = "48050.05"  # off the tick: refused before the venue
    async with AsyncClient(endpoint(daemon)) as client:
        first = await client.place_orders(batch)
        again = await client.place_orders(batch)
        paths = (await control.stats())["requests_by_path"]
        placed = [r for r in first if isinstance(r, Order)]
        assert len(placed) == 11 and all(o.state is OrderState.NEW for o in placed)
        assert isinstance(first[5], ClientError) and first[5].code == "PRICE_TICK"
        assert [o.request_id for o in placed] == [f"b12-{i}" for i in range(12) if i != 5]
        venue = await control.orders()
        assert sorted(o["clientOrderId"] for o in venue) == sorted(
            o.client_order_id for o in placed
        )
        assert paths.get("/fapi/v1/batchOrders") == 3  # 5 + 5 + 1 elements
        assert paths.get("/fapi/v1/order", 0) == 0
        # the same batch again creates nothing: the same orders, the same error
        assert [r.id if isinstance(r, Order) else r.code for r in again] == [
            r.id if isinstance(r, Order) else r.code for r in first
        ]
        assert len(await control.orders()) == 11

        ids = [o.id for o in placed]
        canceled = await client.cancel_orders(order_ids=[*ids, "no-such-order"])
        assert [o.state for o in canceled[:11] if isinstance(o, Order)] == [
            OrderState.CANCELED
        ] * 11
        assert isinstance(canceled[11], ClientError) and canceled[11].code == "NOT_FOUND"
        paths = (await control.stats())["requests_by_path"]
        assert paths.get("/fapi/v1/batchOrders") == 3 + 2  # cancels: 10 + 1 ids
        assert paths.get("/fapi/v1/order", 0) == 0
        assert all(o["status"] == "CANCELED" for o in await control.orders())
        assert await client.open_orders() == []


async def test_positions_and_balances_match_the_venue(
    make_daemon: DaemonFactory, sim: SimServer, control: SimControl
) -> None:
    tracking = TrackingConfig(poll_interval_s=0.5, account_refresh_s=0.5)
    daemon = await make_daemon(tracking=tracking)
    async with AsyncClient(endpoint(daemon)) as client:
        assert await client.positions() == []
        assert (await client.set_leverage("BTCUSDT", 10))["leverage"] == 10
        changed = await client.set_margin_type("BTCUSDT", "isolated")
        assert changed["margin_type"] == "isolated"
        with pytest.raises(ClientError) as bad:
            await client.set_leverage("BTCUSDT", 500)
        assert bad.value.code == "BAD_REQUEST"

        filled = await client.place_order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.020", request_id="pos-1"
        )
        assert filled.state is OrderState.FILLED

        async def position_matches() -> bool:
            (mine,) = await client.positions()
            (venue,) = [
                row
                for row in await venue_get(sim, "/fapi/v2/positionRisk", symbol="BTCUSDT")
                if D(row["positionAmt"]) != 0
            ]
            assert mine.amount == D(venue["positionAmt"]) == D("0.020")
            assert mine.entry_price == D(venue["entryPrice"])
            assert mine.break_even_price == D(venue["breakEvenPrice"])
            assert mine.unrealized_pnl == D(venue["unRealizedProfit"])
            assert mine.liquidation_price == D(venue["liquidationPrice"])
            assert (mine.leverage, str(mine.leverage)) == (10, venue["leverage"])
            assert mine.margin_type == venue["marginType"] == "isolated"
            return True

        await eventually(position_matches)

        async def balances_match() -> bool:
            (usdt,) = await client.balances()
            (venue,) = await venue_get(sim, "/fapi/v2/balance")
            assert usdt.asset == venue["asset"] == "USDT"
            assert usdt.wallet_balance == D(venue["balance"])
            assert usdt.available_balance == D(venue["availableBalance"])
            assert usdt.cross_wallet_balance == D(venue["crossWalletBalance"])
            return True

        await eventually(balances_match)
        assert daemon.account_view.refreshes >= 2  # at start, then after the fill's update


async def test_symbols_allow_list_refuses_before_any_io(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemon = await make_daemon(validation=ValidationConfig(symbols=("BTCUSDT",)))
    async with AsyncClient(endpoint(daemon)) as client:
        eth = {**limit("eth-1"), "symbol": "ETHUSDT", "price": "3000.00"}
        with pytest.raises(ClientError) as refused:
            await client.place_order(**eth)
        assert refused.value.code == "SYMBOL_NOT_ALLOWED"
        assert refused.value.details["limit"] == ["BTCUSDT"]
        with pytest.raises(ClientError) as unknown:  # nothing was recorded
            await client.get_order(request_id="eth-1")
        assert unknown.value.code == "NOT_FOUND"
        mixed = await client.place_orders([limit("btc-1"), {**eth, "request_id": "eth-2"}])
        assert isinstance(mixed[0], Order) and isinstance(mixed[1], ClientError)
        assert mixed[1].code == "SYMBOL_NOT_ALLOWED"
        with pytest.raises(ClientError):
            await client.set_leverage("ETHUSDT", 5)
        assert [o["symbol"] for o in await control.orders()] == ["BTCUSDT"]
        # SIGHUP reload widens the list: the same request now reaches the venue
        daemon.reload(
            attrs.evolve(daemon.config, validation=ValidationConfig(symbols=("BTCUSDT", "ETHUSDT")))
        )
        placed = await client.place_order(**{**eth, "request_id": "eth-3"})
        assert placed.symbol == "ETHUSDT" and placed.exchange_order_id


async def test_unknown_outcomes_are_resolved_by_reading_back_never_resent(
    daemon: Daemon, control: SimControl
) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(**limit("lost-amend"))
        await control.fault(
            "timeout_after_accept",
            probability=1.0,
            count=1,
            path="/fapi/v1/order",
            params={"reply": "-1007"},
        )
        amended = await client.modify_order(order_id=order.id, price="48700.0")
        assert amended.id == order.id and amended.price == D("48700.0")

        await control.fault(
            "timeout_after_accept",
            probability=1.0,
            count=1,
            path="/fapi/v1/batchOrders",
            params={"reply": "-1007"},
        )
        batch = [limit(f"lost-b-{i}", price=f"{47000 + i}.0") for i in range(3)]
        results = await client.place_orders(batch)
        assert all(isinstance(r, Order) and r.exchange_order_id for r in results), results
        again = await client.place_orders(batch)
        assert [r.id for r in again if isinstance(r, Order)] == [
            r.id for r in results if isinstance(r, Order)
        ]
    venue = await control.orders()
    assert len(venue) == 4  # the amended order and three batch orders, each once
    assert [D(o["price"]) for o in venue if o["clientOrderId"] == order.client_order_id] == [
        D("48700")
    ]
    stats = await control.stats()
    assert stats["faults_fired"].get("timeout_after_accept") == 2
    assert stats["requests_by_path"]["/fapi/v1/batchOrders"] == 1  # not resent
