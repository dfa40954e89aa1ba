"""The simulator's WebSocket API (/ws-fapi/v1): envelopes, signing, session logon, limits,
faults and the user stream, spoken by a hand-written client so every byte is visible."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from oexec.sim.app import SimServer
from oexec.sim.config import AccountConfig, SimConfig
from oexec.sim.wsapi import WSAPI
from oexec.sim.wsapi_methods import METHODS, signed_payloads

ED_SEED = bytes(range(32))
_ids = itertools.count(1)


def ed_account() -> tuple[Ed25519PrivateKey, AccountConfig]:
    private = Ed25519PrivateKey.from_private_bytes(ED_SEED)
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return private, AccountConfig(key="ed-key", ed25519_public_key=pem.decode(), name="ed")


class WsApiClient:
    """Signs like the docs: sorted params, raw join, HMAC hex or Ed25519 base64."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, key: str, secret: str = "") -> None:
        self.ws, self.key, self.secret = ws, key, secret
        self.private: Ed25519PrivateKey | None = None

    def sign(self, params: dict[str, Any]) -> dict[str, Any]:
        signed = dict(params, apiKey=self.key, timestamp=time.time_ns() // 1_000_000)
        payload = "&".join(f"{k}={v}" for k, v in sorted(signed.items())).encode()
        if self.private is not None:
            signed["signature"] = base64.b64encode(self.private.sign(payload)).decode()
        else:
            signed["signature"] = hmac.new(self.secret.encode(), payload, "sha256").hexdigest()
        return signed

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, signed: bool = True
    ) -> dict[str, Any]:
        request_id = f"r{next(_ids)}"
        body = self.sign(params or {}) if signed else (params or {})
        await self.ws.send_str(json.dumps({"id": request_id, "method": method, "params": body}))
        reply = await self.receive()
        assert reply["id"] == request_id
        return reply

    async def receive(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.receive(), 5)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data: dict[str, Any] = json.loads(message.data)
        return data


def limit_order(cid: str, price: str = "49000", qty: str = "0.01") -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": qty,
        "price": price,
        "newClientOrderId": cid,
    }


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    _, ed = ed_account()
    hmac_account = AccountConfig(key="hm-key", secret="hm-secret", name="hm")
    async with SimServer(SimConfig(seed=3, accounts=(hmac_account, ed))) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
async def api(sim: SimServer, session: aiohttp.ClientSession) -> AsyncIterator[WsApiClient]:
    async with session.ws_connect(sim.ws_api_url) as ws:
        yield WsApiClient(ws, "hm-key", "hm-secret")


def test_twenty_one_methods_and_the_addendum_hmac_vector() -> None:
    assert len(METHODS) == 21
    key = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
    secret = b"2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
    params = {"apiKey": key, "timestamp": 1649729878532, "signature": "x"}
    first = next(signed_payloads(params))
    expected = "0affad37a88a87b5da9684c7f7f09c4157403fe27b65e532f72b353a45f97cdb"
    assert hmac.new(secret, first, hashlib.sha256).hexdigest() == expected
    private = Ed25519PrivateKey.from_private_bytes(ED_SEED)
    assert base64.b64encode(private.sign(first)).decode().startswith("71nIjMY1+sXf2JQU")


async def test_place_status_modify_cancel_with_rate_limits(api: WsApiClient) -> None:
    placed = await api.call("order.place", limit_order("ws-1"))
    assert placed["status"] == 200 and placed["result"]["status"] == "NEW"
    assert (
        placed["result"]["clientOrderId"] == "ws-1" and Decimal(placed["result"]["price"]) == 49000
    )
    kinds = {(r["rateLimitType"], r["interval"]): r["count"] for r in placed["rateLimits"]}
    assert kinds[("ORDERS", "SECOND")] == 1 and kinds[("ORDERS", "MINUTE")] == 1
    assert kinds[("REQUEST_WEIGHT", "MINUTE")] == 5  # the handshake; a new order weighs 0
    order_id = placed["result"]["orderId"]

    status = await api.call("order.status", {"symbol": "BTCUSDT", "orderId": order_id})
    assert status["result"]["orderId"] == order_id and "time" in status["result"]
    assert [r["rateLimitType"] for r in status["rateLimits"]] == ["REQUEST_WEIGHT"]
    assert status["rateLimits"][0]["count"] == 6

    modify = {"symbol": "BTCUSDT", "origClientOrderId": "ws-1", "side": "BUY"}
    modified = await api.call("order.modify", modify | {"quantity": "0.02", "price": "49100"})
    assert Decimal(modified["result"]["price"]) == 49100
    assert Decimal(modified["result"]["origQty"]) == Decimal("0.02")
    cancelled = await api.call("order.cancel", {"symbol": "BTCUSDT", "orderId": order_id})
    assert cancelled["result"]["status"] == "CANCELED"


async def test_rejections_use_the_venue_codes(api: WsApiClient, session: Any) -> None:
    no_qty = {k: v for k, v in limit_order("ws-2").items() if k != "quantity"}
    rejected = await api.call("order.place", no_qty)
    assert rejected["status"] == 400 and rejected["error"]["code"] == -1102
    assert {r["rateLimitType"] for r in rejected["rateLimits"]} == {"ORDERS", "REQUEST_WEIGHT"}
    unknown = await api.call("order.status", {"symbol": "BTCUSDT", "orderId": 999999})
    assert unknown["error"]["code"] == -2013

    api.secret = "wrong"
    bad = await api.call("order.place", limit_order("ws-3"))
    assert bad["status"] == 400 and bad["error"]["code"] == -1022
    unsigned = await api.call("order.place", limit_order("ws-4"), signed=False)
    assert unsigned["status"] == 401 and unsigned["error"]["code"] == -2015

    await api.ws.send_str("{not json")
    garbage = await api.receive()
    assert garbage["id"] is None and garbage["status"] == 400
    await api.ws.send_str(json.dumps({"id": 7, "method": "order.teleport"}))
    assert (await api.receive())["id"] == 7


async def test_ed25519_logon_authorises_unsigned_requests(
    sim: SimServer, session: aiohttp.ClientSession
) -> None:
    private, _ = ed_account()
    async with session.ws_connect(sim.ws_api_url) as ws:
        api = WsApiClient(ws, "ed-key")
        api.private = private
        logon = await api.call("session.logon")
        assert logon["status"] == 200 and logon["result"]["apiKey"] == "ed-key"
        assert logon["result"]["authorizedSince"] is not None
        now = time.time_ns() // 1_000_000
        placed = await api.call(
            "order.place", limit_order("ed-1") | {"timestamp": now}, signed=False
        )
        assert placed["status"] == 200, placed
        status = await api.call("session.status", signed=False)
        assert status["result"]["apiKey"] == "ed-key"
        out = await api.call("session.logout", signed=False)
        assert out["result"]["apiKey"] is None and out["result"]["authorizedSince"] is None
        again = await api.call(
            "order.place", limit_order("ed-2") | {"timestamp": now}, signed=False
        )
        assert again["error"]["code"] == -2015
    orders = {o["clientOrderId"] for o in sim.exchange.ground_truth()}
    assert "ed-1" in orders and "ed-2" not in orders


async def test_hmac_key_cannot_log_on(api: WsApiClient) -> None:
    reply = await api.call("session.logon")
    assert reply["status"] == 400 and reply["error"]["code"] == -4056


async def test_order_limit_429_and_return_rate_limits_off(
    sim: SimServer, session: aiohttp.ClientSession
) -> None:
    sim.state.limiter.reconfigure(attrs_evolve(sim.state.limiter.config, orders_per_10s=2))
    async with session.ws_connect(sim.ws_api_url + "?returnRateLimits=false") as ws:
        api = WsApiClient(ws, "hm-key", "hm-secret")
        for cid in ("l-1", "l-2"):
            ok = await api.call("order.place", limit_order(cid))
            assert ok["status"] == 200 and "rateLimits" not in ok
        limited = await api.call("order.place", limit_order("l-3") | {"returnRateLimits": True})
        assert limited["status"] == 429 and limited["error"]["code"] == -1015
        assert any(r["count"] == 3 for r in limited["rateLimits"] if r["interval"] == "SECOND")
        assert "retryAfter" in limited["error"]["data"]
    assert "l-3" not in {o["clientOrderId"] for o in sim.exchange.ground_truth()}


async def test_one_weight_budget_with_rest(api: WsApiClient, sim: SimServer, session: Any) -> None:
    await api.call("account.balance")  # 5 weight + 5 for the handshake
    async with session.get(sim.base_url + "/fapi/v1/ping") as resp:
        assert resp.headers["X-MBX-USED-WEIGHT-1M"] == "11"


async def test_after_accept_faults(sim: SimServer, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect(sim.ws_api_url) as ws:
        api = WsApiClient(ws, "hm-key", "hm-secret")
        rule = {"kind": "timeout_after_accept", "count": 1, "path": "/fapi/v1/order"}
        await post(session, sim, "/_sim/faults", rule)
        unknown = await api.call("order.place", limit_order("f-1"))
        assert unknown["status"] == 503 and unknown["error"]["code"] == -1000
        await post(session, sim, "/_sim/faults", rule | {"kind": "reset_after_accept"})
        await ws.send_str(
            json.dumps({"id": 1, "method": "order.place", "params": api.sign(limit_order("f-2"))})
        )
        closed = await asyncio.wait_for(ws.receive(), 5)
        assert closed.type in (
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
            aiohttp.WSMsgType.CLOSE,
        )
    placed = {o["clientOrderId"] for o in sim.exchange.ground_truth()}
    assert {"f-1", "f-2"} <= placed


async def test_user_stream_sees_websocket_orders(
    api: WsApiClient, sim: SimServer, session: Any
) -> None:
    started = await api.call("userDataStream.start", {"apiKey": "hm-key"}, signed=False)
    key = started["result"]["listenKey"]
    pinged = await api.call("userDataStream.ping", {"apiKey": "hm-key"}, signed=False)
    assert pinged["result"]["listenKey"] == key
    async with session.ws_connect(f"{sim.ws_url}/ws/{key}") as stream:
        await api.call("order.place", limit_order("u-1"))
        event = json.loads((await asyncio.wait_for(stream.receive(), 5)).data)
        assert event["e"] == "ORDER_TRADE_UPDATE" and event["o"]["c"] == "u-1"
    stopped = await api.call("userDataStream.stop", {"apiKey": "hm-key"}, signed=False)
    assert stopped["result"] == {}


async def test_server_pings_and_ends_the_connection_at_its_lifetime(
    sim: SimServer, session: aiohttp.ClientSession
) -> None:
    sim.app[WSAPI].settings.ping_interval_s = 0.05
    sim.app[WSAPI].settings.lifetime_s = 0.3
    async with session.ws_connect(sim.ws_api_url, autoping=False) as ws:
        first = await asyncio.wait_for(ws.receive(), 5)
        assert first.type == aiohttp.WSMsgType.PING
        await ws.pong(first.data)
        kinds = set()
        while True:
            message = await asyncio.wait_for(ws.receive(), 5)
            kinds.add(message.type)
            if message.type == aiohttp.WSMsgType.PING:
                await ws.pong(message.data)
            else:
                break
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def attrs_evolve(config: Any, **changes: Any) -> Any:
    import attrs

    return attrs.evolve(config, **changes)


async def post(session: aiohttp.ClientSession, sim: SimServer, path: str, body: Any) -> Any:
    async with session.post(sim.base_url + path, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_ed25519_signature_per_request_without_logon(
    sim: SimServer, session: aiohttp.ClientSession
) -> None:
    private, _ = ed_account()
    async with session.ws_connect(sim.ws_api_url) as ws:
        api = WsApiClient(ws, "ed-key")
        api.private = private
        placed = await api.call("order.place", limit_order("ed-per-request"))
        assert placed["status"] == 200, placed
        tampered = api.sign(limit_order("ed-tampered"))
        tampered["quantity"] = "0.02"
        await ws.send_str(json.dumps({"id": 9, "method": "order.place", "params": tampered}))
        assert (await api.receive())["error"]["code"] == -1022
