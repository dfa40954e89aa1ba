"""The user data stream: listen keys, events on the WebSocket, expiry, stream faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from oexec.sim.app import SimServer

from .helpers import VenueClient, limit_order

TIMEOUT = 5.0


async def listen_key(client: VenueClient) -> str:
    reply = await client.call("POST", "/fapi/v1/listenKey")
    assert reply.status == 200, reply.body
    key: str = reply.body["listenKey"]
    return key


async def connect(
    client: VenueClient, sim: SimServer, key: str, combined: bool = False
) -> aiohttp.ClientWebSocketResponse:
    url = f"{sim.ws_url}/stream?streams={key}" if combined else f"{sim.ws_url}/ws/{key}"
    return await client.session.ws_connect(url)


async def receive(ws: aiohttp.ClientWebSocketResponse, wait_s: float = TIMEOUT) -> dict[str, Any]:
    message = await ws.receive(timeout=wait_s)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    data: dict[str, Any] = json.loads(message.data)
    return data


async def new_order_events(
    client: VenueClient, ws: aiohttp.ClientWebSocketResponse, ids: list[str]
) -> None:
    for cid in ids:
        reply = await client.call(
            "POST", "/fapi/v1/order", limit_order(newClientOrderId=cid), signed=True
        )
        assert reply.status == 200, reply.body


async def test_listen_key_lifecycle(client: VenueClient) -> None:
    key = await listen_key(client)
    assert await listen_key(client) == key  # same key while active
    kept = await client.call("PUT", "/fapi/v1/listenKey")
    assert kept.status == 200 and kept.body == {"listenKey": key}
    closed = await client.call("DELETE", "/fapi/v1/listenKey")
    assert (closed.status, closed.body) == (200, {})
    unknown = await client.call("PUT", "/fapi/v1/listenKey")
    assert (unknown.status, unknown.code) == (400, -1125)
    assert await listen_key(client) != key
    missing = await client.call("POST", "/fapi/v1/listenKey", key=None)
    assert missing.code == -2015


async def test_order_events_arrive_on_ws_and_combined(client: VenueClient, sim: SimServer) -> None:
    key = await listen_key(client)
    plain = await connect(client, sim, key)
    combined = await connect(client, sim, key, combined=True)
    await new_order_events(client, plain, ["ev-1"])
    event = await receive(plain)
    assert event["e"] == "ORDER_TRADE_UPDATE"
    assert event["o"]["c"] == "ev-1" and event["o"]["x"] == "NEW"
    wrapped = await receive(combined)
    assert wrapped["stream"] == key and wrapped["data"] == event
    await plain.close()
    await combined.close()


async def test_fill_events_order_then_account(client: VenueClient, sim: SimServer) -> None:
    key = await listen_key(client)
    ws = await connect(client, sim, key)
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    await client.call("POST", "/fapi/v1/order", market, signed=True)
    kinds = []
    while "ACCOUNT_UPDATE" not in kinds:
        kinds.append((await receive(ws))["e"])
    trade_updates = [k for k in kinds if k == "ORDER_TRADE_UPDATE"]
    assert trade_updates and kinds.index("ORDER_TRADE_UPDATE") < kinds.index("ACCOUNT_UPDATE")
    await ws.close()


async def test_unknown_key_websocket_refused(client: VenueClient, sim: SimServer) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await connect(client, sim, "nope")
    assert exc.value.status == 400


async def test_key_expires_without_keepalive(client: VenueClient, sim: SimServer) -> None:
    sim.state.streams.ttl_ms = 300  # config granularity is seconds; shorten for the test
    key = await listen_key(client)
    ws = await connect(client, sim, key)
    event = await receive(ws, wait_s=3.0)
    assert event == {"e": "listenKeyExpired", "E": event["E"], "listenKey": key}
    closing = await ws.receive(timeout=TIMEOUT)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert (await client.call("PUT", "/fapi/v1/listenKey")).code == -1125


@pytest.fixture
async def stream(
    client: VenueClient, sim: SimServer
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    await client.control("POST", "/_sim/rate_limits", {"enabled": False})
    ws = await connect(client, sim, await listen_key(client))
    yield ws
    await ws.close()


async def test_listen_key_expiry_fault(
    client: VenueClient, stream: aiohttp.ClientWebSocketResponse
) -> None:
    await client.control("POST", "/_sim/faults", {"kind": "listen_key_expiry", "count": 1})
    assert (await receive(stream))["e"] == "listenKeyExpired"
    assert (await client.call("PUT", "/fapi/v1/listenKey")).code == -1125


async def client_ids(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[str]:
    return [(await receive(ws))["o"]["c"] for _ in range(count)]


async def test_stream_drop(client: VenueClient, stream: aiohttp.ClientWebSocketResponse) -> None:
    await client.control("POST", "/_sim/faults", {"kind": "stream_drop", "count": 1})
    await new_order_events(client, stream, ["d1", "d2"])
    assert await client_ids(stream, 1) == ["d2"]


async def test_stream_reorder(client: VenueClient, stream: aiohttp.ClientWebSocketResponse) -> None:
    await client.control("POST", "/_sim/faults", {"kind": "stream_reorder", "count": 1})
    await new_order_events(client, stream, ["r1", "r2", "r3"])
    assert await client_ids(stream, 3) == ["r2", "r1", "r3"]


async def test_stream_delay(client: VenueClient, stream: aiohttp.ClientWebSocketResponse) -> None:
    await client.control(
        "POST", "/_sim/faults", {"kind": "stream_delay", "count": 1, "params": {"ms": 300}}
    )
    await new_order_events(client, stream, ["s1"])
    with pytest.raises(asyncio.TimeoutError):
        await stream.receive(timeout=0.1)
    assert await client_ids(stream, 1) == ["s1"]


async def test_stream_disconnect(
    client: VenueClient, sim: SimServer, stream: aiohttp.ClientWebSocketResponse
) -> None:
    await client.control("POST", "/_sim/faults", {"kind": "stream_disconnect", "count": 1})
    await new_order_events(client, stream, ["x1"])
    message = await stream.receive(timeout=TIMEOUT)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    key = (await client.call("POST", "/fapi/v1/listenKey")).body["listenKey"]
    again = await connect(client, sim, key)  # key still valid: reconnect works
    await new_order_events(client, again, ["x2"])
    assert await client_ids(again, 1) == ["x2"]
    await again.close()
