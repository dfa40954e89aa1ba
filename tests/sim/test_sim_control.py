"""The /_sim/ control API: prices, price path, reset, ground truth, stats."""

from __future__ import annotations

from decimal import Decimal

from oexec.sim.app import SimServer

from .helpers import VenueClient, limit_order


async def price_of(client: VenueClient, symbol: str) -> Decimal:
    reply = await client.call("GET", "/fapi/v1/ticker/price", {"symbol": symbol})
    return Decimal(reply.body["price"])


async def test_set_price_fills_resting_order(client: VenueClient) -> None:
    placed = await client.call(
        "POST", "/fapi/v1/order", limit_order(newClientOrderId="gt-1"), signed=True
    )
    assert placed.status == 200
    moved = await client.control("POST", "/_sim/price", {"symbol": "BTCUSDT", "price": "48900"})
    assert Decimal(moved["price"]) == Decimal("48900")
    assert await price_of(client, "BTCUSDT") == Decimal("48900")
    truth = await client.control("GET", "/_sim/orders")
    assert len(truth) == 1
    order = truth[0]
    assert order["clientOrderId"] == "gt-1" and order["status"] == "FILLED"
    assert Decimal(order["executedQty"]) == Decimal("0.01") and order["fills"]
    assert await client.control("GET", "/_sim/orders?symbol=ETHUSDT") == []
    stats = await client.control("GET", "/_sim/stats")
    assert stats["orders_accepted"] == 1 and stats["orders_rejected"] == 0


async def test_rejections_counted(client: VenueClient) -> None:
    await client.call("POST", "/fapi/v1/order", limit_order(price="1"), signed=True)
    stats = await client.control("GET", "/_sim/stats")
    assert stats["orders_rejected"] == 1 and stats["responses_by_status"] == {"400": 1}


async def test_advance_moves_prices_deterministically(sim: SimServer, client: VenueClient) -> None:
    before = await price_of(client, "ETHUSDT")
    after = await client.control("POST", "/_sim/advance", {"steps": 50})
    walked = {t["symbol"]: Decimal(t["price"]) for t in after}
    assert walked["ETHUSDT"] != before
    await client.control("POST", "/_sim/reset")
    assert await price_of(client, "ETHUSDT") == before
    again = await client.control("POST", "/_sim/advance", {"steps": 50})
    assert {t["symbol"]: Decimal(t["price"]) for t in again} == walked


async def test_reset_clears_orders_faults_stats(client: VenueClient) -> None:
    await client.call("POST", "/fapi/v1/order", limit_order(), signed=True)
    await client.control("POST", "/_sim/faults", {"kind": "stream_drop", "probability": 1})
    await client.control("POST", "/_sim/reset")
    assert await client.control("GET", "/_sim/orders") == []
    assert (await client.control("GET", "/_sim/faults"))["faults"] == []
    stats = await client.control("GET", "/_sim/stats")
    assert stats["responses_by_status"] == {} and stats["orders_accepted"] == 0
    reply = await client.call("GET", "/fapi/v1/openOrders", signed=True)
    assert reply.body == []


async def test_control_input_errors(client: VenueClient) -> None:
    bad = [
        ("/_sim/price", {"symbol": "BTCUSDT", "price": 1.5}),  # float refused
        ("/_sim/price", {"symbol": "BTCUSDT", "price": "-1"}),
        ("/_sim/price", {"price": "1"}),
        ("/_sim/price", {"symbol": "NOPE", "price": "1"}),
        ("/_sim/advance", {"steps": 0}),
    ]
    for path, payload in bad:
        async with client.session.post(f"{client.base_url}{path}", json=payload) as resp:
            assert resp.status == 400, (path, payload)
            assert "error" in await resp.json()
    async with client.session.post(f"{client.base_url}/_sim/price", data=b"[1") as resp:
        assert resp.status == 400
    async with client.session.post(f"{client.base_url}/_sim/price", json=[1]) as resp:
        assert resp.status == 400


async def test_mark_price_separately(client: VenueClient) -> None:
    await client.control(
        "POST", "/_sim/price", {"symbol": "BTCUSDT", "price": "50010", "mark": "50020"}
    )
    index = await client.call("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"})
    assert Decimal(index.body["markPrice"]) == Decimal("50020")
