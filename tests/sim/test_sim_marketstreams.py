"""Public market streams on /public and /market (2026 routing), and the /private query forms."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp

from oexec.sim.app import SimServer
from oexec.sim.marketstreams import route

from .helpers import VenueClient
from .test_sim_userstream import listen_key

WAIT_S = 3.0


async def connect(
    client: VenueClient, sim: SimServer, tail: str
) -> aiohttp.ClientWebSocketResponse:
    return await client.session.ws_connect(f"{sim.ws_url}{tail}")


async def receive(ws: aiohttp.ClientWebSocketResponse, wait_s: float = WAIT_S) -> Any:
    message = await ws.receive(timeout=wait_s)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def nothing(ws: aiohttp.ClientWebSocketResponse, wait_s: float) -> None:
    try:
        message = await ws.receive(timeout=wait_s)
    except TimeoutError:
        return
    raise AssertionError(f"delivered on the wrong path: {message.data!r}")


async def move(client: VenueClient, price: str) -> None:
    await client.control("POST", "/_sim/price", {"symbol": "BTCUSDT", "price": price})


def test_routes_follow_the_2026_split() -> None:
    public = ["btcusdt@bookTicker", "btcusdt@depth5", "btcusdt@depth20@100ms", "!bookTicker"]
    public += ["btcusdt@depth@100ms", "btcusdt@trade"]
    market = ["btcusdt@aggTrade", "btcusdt@markPrice@1s", "!markPrice@arr", "btcusdt@kline_1m"]
    assert {route(s) for s in public} == {"public"}
    assert {route(s) for s in market} == {"market"}


async def test_book_ticker_on_public_ws_mode(client: VenueClient, sim: SimServer) -> None:
    ws = await connect(client, sim, "/public/ws/btcusdt@bookTicker")
    await move(client, "50010")
    event = await receive(ws)
    assert event["e"] == "bookTicker" and event["s"] == "BTCUSDT"
    assert Decimal(event["b"]) < Decimal("50010") < Decimal(event["a"])
    assert isinstance(event["u"], int) and isinstance(event["B"], str)
    await ws.close()


async def test_stream_mode_wraps_and_market_path_carries_trades_and_marks(
    client: VenueClient, sim: SimServer
) -> None:
    ws = await connect(client, sim, "/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s")
    await move(client, "50020")
    seen: dict[str, Any] = {}
    while len(seen) < 2:
        message = await receive(ws)
        seen[message["stream"]] = message["data"]
    trade = seen["btcusdt@aggTrade"]
    assert trade["e"] == "aggTrade" and trade["p"] == "50020" and trade["f"] == trade["a"]
    mark = seen["btcusdt@markPrice@1s"]
    assert mark["e"] == "markPriceUpdate" and mark["p"] == "50020" and mark["r"] == "0.00010000"
    await ws.close()


async def test_a_stream_on_the_wrong_path_is_acknowledged_and_never_delivered(
    client: VenueClient, sim: SimServer
) -> None:
    book_on_market = await connect(client, sim, "/market/ws/btcusdt@bookTicker")
    trades_on_public = await connect(client, sim, "/public/ws")
    await trades_on_public.send_json(
        {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}
    )
    assert await receive(trades_on_public) == {"result": None, "id": 1}
    await move(client, "50030")
    await move(client, "50040")
    await asyncio.gather(nothing(book_on_market, 0.6), nothing(trades_on_public, 0.6))
    await book_on_market.close()
    await trades_on_public.close()


async def test_live_subscription_control(client: VenueClient, sim: SimServer) -> None:
    ws = await connect(client, sim, "/market/ws")
    send = ws.send_json
    await send({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "ethusdt@aggTrade"], "id": 1})
    assert await receive(ws) == {"result": None, "id": 1}
    await send({"method": "UNSUBSCRIBE", "params": ["ethusdt@aggTrade"], "id": 2})
    assert await receive(ws) == {"result": None, "id": 2}
    await send({"method": "LIST_SUBSCRIPTIONS", "id": 3})
    assert await receive(ws) == {"result": ["btcusdt@aggTrade"], "id": 3}
    await send({"method": "GET_PROPERTY", "params": ["combined"], "id": 4})
    assert await receive(ws) == {"result": False, "id": 4}
    await send({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 5})
    assert (await receive(ws))["code"] == 1
    await send({"method": "SET_PROPERTY", "params": ["combined", True], "id": 6})
    assert await receive(ws) == {"result": None, "id": 6}
    await send({"method": "SUBSCRIBE", "params": [], "id": -1})
    assert (await receive(ws))["code"] == 2
    await send({"method": "LIST_SUBSCRIPTIONS", "id": "9ca10e58"})  # the official SDK's ids
    assert await receive(ws) == {"result": ["btcusdt@aggTrade"], "id": "9ca10e58"}
    await ws.send_str("{not json")
    assert (await receive(ws))["code"] == 3
    await move(client, "50050")
    combined = await receive(ws)
    assert combined["stream"] == "btcusdt@aggTrade" and combined["data"]["p"] == "50050"
    await ws.close()


async def test_partial_depth_and_kline_and_all_marks(client: VenueClient, sim: SimServer) -> None:
    public = await connect(client, sim, "/public/ws/btcusdt@depth5@100ms")
    first, second = await receive(public), await receive(public)
    assert first["e"] == "depthUpdate" and len(first["b"]) == len(first["a"]) == 5
    assert second["pu"] == first["u"]
    market = await connect(client, sim, "/market/stream?streams=btcusdt@kline_1m/!markPrice@arr@1s")
    await move(client, "50060")
    seen: dict[str, Any] = {}
    while len(seen) < 2:
        message = await receive(market)
        seen[message["stream"]] = message["data"]
    kline = seen["btcusdt@kline_1m"]["k"]
    assert kline["i"] == "1m" and kline["x"] is False and kline["T"] == kline["t"] + 59_999
    assert kline["c"] == "50060" and kline["n"] >= 1 and kline["L"] >= kline["f"] > 0
    assert {row["s"] for row in seen["!markPrice@arr@1s"]} == {
        "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"
    }  # fmt: skip
    await public.close()
    await market.close()


async def test_private_query_form_with_an_events_filter(
    client: VenueClient, sim: SimServer
) -> None:
    key = await listen_key(client)
    ws = await connect(client, sim, f"/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE")
    every = await connect(client, sim, f"/private/ws?listenKey={key}")
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    assert (await client.call("POST", "/fapi/v1/order", order, signed=True)).status == 200
    filtered = [(await receive(ws))["e"] for _ in range(2)]
    assert filtered == ["ORDER_TRADE_UPDATE", "ORDER_TRADE_UPDATE"]  # NEW, TRADE
    unfiltered = {(await receive(every))["e"] for _ in range(4)}
    assert unfiltered == {"ORDER_TRADE_UPDATE", "TRADE_LITE", "ACCOUNT_UPDATE"}
    await ws.close()
    await every.close()


async def test_more_than_ten_messages_a_second_close_the_socket(
    client: VenueClient, sim: SimServer
) -> None:
    ws = await connect(client, sim, "/market/ws")
    for ident in range(12):
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": ident})
    closed = False
    for _ in range(13):
        message = await ws.receive(timeout=WAIT_S)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            closed = True
            break
    assert closed


async def test_diff_depth_keeps_a_local_book_right_by_the_venue_procedure(
    client: VenueClient, sim: SimServer
) -> None:
    """Buffer the stream, take the REST snapshot, apply events (first: U <= lastUpdateId
    <= u; then pu = previous u): the local book's top equals the venue's after each event."""
    ws = await connect(client, sim, "/public/ws/btcusdt@depth@100ms")
    for step, price in enumerate(("50040", "49990", "50120", "49870", "50010")):
        if step == 1:
            snapshot = await client.call(
                "GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 1000}
            )
            book = {
                "b": {Decimal(p): q for p, q in snapshot.body["bids"]},
                "a": {Decimal(p): q for p, q in snapshot.body["asks"]},
            }
            last_id, previous = snapshot.body["lastUpdateId"], None
        await move(client, price)
        if step == 0:
            continue
        while True:
            event = await receive(ws)
            if event["u"] < last_id:
                continue
            if previous is None:
                assert event["U"] <= last_id <= event["u"]
            else:
                assert event["pu"] == previous
            previous = event["u"]
            for side in ("b", "a"):
                for p, q in event[side]:
                    if q == "0":
                        book[side].pop(Decimal(p), None)
                    else:
                        book[side][Decimal(p)] = q
            top = await client.call("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 5})
            if event["u"] == top.body["lastUpdateId"]:
                break
        assert max(book["b"]) == Decimal(top.body["bids"][0][0])
        assert min(book["a"]) == Decimal(top.body["asks"][0][0])
    await ws.close()
