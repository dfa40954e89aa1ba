"""An order end to end: client → ZeroMQ → daemon → simulator → store → events."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from oexec.app import Daemon
from oexec.client import AsyncClient, Client, ClientError, Subscriber
from oexec.models import OrderState
from oexec.wire import WIRE_VERSION

from .conftest import SimControl, endpoint, events_endpoint


def limit(
    request_id: str, price: str = "49000.0", side: str = "BUY", qty: str = "0.010", tif: str = "GTC"
) -> dict[str, Any]:
    return dict(
        symbol="BTCUSDT",
        side=side,
        type="LIMIT",
        quantity=qty,
        price=price,
        time_in_force=tif,
        request_id=request_id,
    )


async def wait_for(predicate: Any, within_s: float = 10.0) -> Any:
    async with asyncio.timeout(within_s):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(0.05)


async def test_lifecycle_over_dealer(daemon: Daemon, control: SimControl) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(**limit("life-1"))
        assert order.state is OrderState.NEW and order.exchange_order_id
        assert (await client.get_order(order_id=order.id)).request_id == "life-1"
        assert (await client.get_order(request_id="life-1")).id == order.id
        assert [o.id for o in await client.open_orders(symbol="BTCUSDT")] == [order.id]
        canceled = await client.cancel_order(order_id=order.id)
        assert canceled.state is OrderState.CANCELED
        assert await client.open_orders() == []
        second = await client.place_order(**limit("life-2"))
        third = await client.place_order(**limit("life-3", price="48000.0"))
        swept = await client.cancel_all("BTCUSDT")
        assert {o.id for o in swept} == {second.id, third.id}
        assert all(o.state is OrderState.CANCELED for o in swept)
        history = await client.order_history(symbol="BTCUSDT", limit=10)
        assert [o.request_id for o in history] == ["life-3", "life-2", "life-1"]
        health = await client.health()
        assert health["status"] == "healthy"
    truth = {o["clientOrderId"]: o for o in await control.orders()}
    assert {truth[o.client_order_id]["status"] for o in (order, second, third)} == {"CANCELED"}


async def test_sync_client_and_raw_req_socket(daemon: Daemon, control: SimControl) -> None:
    def sync_place() -> Any:
        with Client(endpoint(daemon), timeout_s=5) as client:
            placed = client.place_order(**limit("sync-1"))
            return placed, client.get_order(order_id=placed.id)

    placed, fetched = await asyncio.to_thread(sync_place)
    assert placed.id == fetched.id and fetched.state is OrderState.NEW

    ctx = zmq.asyncio.Context.instance()
    req = ctx.socket(zmq.REQ)
    req.connect(endpoint(daemon))
    try:
        await req.send(
            msgpack.packb({"v": WIRE_VERSION, "op": "get_order", "id": 7, "request_id": "sync-1"})
        )
        reply = msgpack.unpackb(await asyncio.wait_for(req.recv(), 5))
    finally:
        req.close(linger=0)
    assert reply["ok"] is True and reply["id"] == 7
    assert reply["result"]["order"]["id"] == placed.id
    assert reply["result"]["order"]["quantity"] == "0.010"
    assert len(await control.orders()) == 1


async def test_fill_by_price_move_reaches_store_and_subscribers(
    daemon: Daemon, control: SimControl
) -> None:
    async with (
        Subscriber(events_endpoint(daemon), topics=[""]) as events,
        AsyncClient(endpoint(daemon)) as client,
    ):
        await asyncio.sleep(0.2)  # ZeroMQ slow joiner
        order = await client.place_order(**limit("fill-1", price="49500.0"))
        await control.price("BTCUSDT", "49400.0")
        seen: list[Any] = []

        async def collect() -> None:
            async for event in events:
                seen.append(event)
                if event.topic == "order.filled":
                    return

        await asyncio.wait_for(collect(), 10)
        filled = await wait_for(lambda: _state_is(client, order.id, OrderState.FILLED))
    assert filled.filled_quantity == Decimal("0.010")
    assert filled.average_price == Decimal("49500.0")
    fills = [e.fill for e in seen if e.topic == "fill"]
    truth = next(o for o in await control.orders() if o["clientOrderId"] == order.client_order_id)
    assert sorted(f.trade_id for f in fills if f) == sorted(t["tradeId"] for t in truth["fills"])
    assert [e.topic for e in seen].count("order.filled") == 1
    assert [e.seq for e in seen] == list(range(seen[0].seq, seen[0].seq + len(seen)))


async def _state_is(client: AsyncClient, order_id: str, state: OrderState) -> Any:
    order = await client.get_order(order_id=order_id)
    return order if order.state is state else None


async def test_concurrent_duplicates_give_one_venue_order(
    daemon: Daemon, control: SimControl
) -> None:
    async with AsyncClient(endpoint(daemon)) as one, AsyncClient(endpoint(daemon)) as two:
        replies = await asyncio.gather(
            *(c.place_order(**limit("dup-1")) for c in (one, two) for _ in range(10))
        )
    assert len({r.id for r in replies}) == 1
    truth = [o for o in await control.orders() if o["clientOrderId"] == replies[0].client_order_id]
    assert len(truth) == 1


async def test_rejections_are_typed_and_change_nothing_at_the_venue(
    daemon: Daemon, control: SimControl
) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        cases = {
            "PRICE_TICK": limit("bad-tick", price="49000.05"),
            "QTY_STEP": limit("bad-step", qty="0.0105"),
            "MIN_NOTIONAL": limit("bad-notional", qty="0.001"),
            "PERCENT_PRICE_ABOVE": limit("bad-band", price="60000.0"),
            "SYMBOL_UNKNOWN": {**limit("bad-symbol"), "symbol": "NOPEUSDT"},
        }
        for code, fields in cases.items():
            with pytest.raises(ClientError) as info:
                await client.place_order(**fields)
            assert info.value.code == code, (code, info.value)
    assert await control.orders() == []
    assert (await control.stats())["requests_by_path"].get("/fapi/v1/order", 0) == 0


async def test_venue_rejections_map_to_typed_errors(daemon: Daemon, control: SimControl) -> None:
    async with AsyncClient(endpoint(daemon)) as client:
        expectations = [
            (limit("gtx", price="50100.0", tif="GTX"), -5022),
            ({**limit("fok", price="50000.2", tif="FOK"), "quantity": "5.000"}, -5021),
            ({**limit("margin", price="50000.0"), "quantity": "500.000"}, -2019),
            ({**limit("ro", side="SELL", price="50000.0"), "reduce_only": True}, -2022),
        ]
        for fields, venue_code in expectations:
            with pytest.raises(ClientError) as info:
                await client.place_order(**fields)
            assert info.value.code == "VENUE_REJECTED", info.value
            assert info.value.details.get("venue_code") == venue_code, info.value.details
            stored = await client.get_order(request_id=fields["request_id"])
            assert stored.state is OrderState.REJECTED


async def test_unknown_outcome_is_resolved_by_client_id_not_resent(
    daemon: Daemon, control: SimControl
) -> None:
    await control.fault(
        "timeout_after_accept",
        probability=1.0,
        count=1,
        path="/fapi/v1/order",
        params={"reply": "-1007"},
    )
    async with AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(**limit("unknown-1"))
    assert order.state is OrderState.NEW and order.exchange_order_id
    truth = [o for o in await control.orders() if o["clientOrderId"] == order.client_order_id]
    assert len(truth) == 1 and str(truth[0]["orderId"]) == order.exchange_order_id
    stats = await control.stats()
    assert stats["faults_fired"].get("timeout_after_accept") == 1


async def test_malformed_frames_get_typed_errors_and_change_nothing(
    daemon: Daemon, control: SimControl
) -> None:
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(endpoint(daemon))
    frames: list[bytes] = [
        b"\xc1not msgpack",
        msgpack.packb([1, 2, 3]),
        msgpack.packb({"v": WIRE_VERSION, "op": "launch_rockets", "id": 1}),
        msgpack.packb({"v": 99, "op": "health", "id": 2}),
        msgpack.packb(
            {"v": WIRE_VERSION, "op": "place_order", "id": 3, **limit("m1"), "quantity": 0.01}
        ),
        msgpack.packb(
            {"v": WIRE_VERSION, "op": "place_order", "id": 4, **limit("m2"), "price": "NaN"}
        ),
        msgpack.packb(
            {"v": WIRE_VERSION, "op": "place_order", "id": 5, **limit("m3"), "quantity": "-1"}
        ),
        msgpack.packb({"v": WIRE_VERSION, "op": "place_order", "id": 6, "symbol": "BTCUSDT"}),
        b"x" * (daemon.config.front.max_frame_bytes + 10),
    ]
    codes = []
    try:
        for frame in frames:
            await sock.send(frame)
            reply = msgpack.unpackb(await asyncio.wait_for(sock.recv(), 5))
            assert reply["ok"] is False
            codes.append(reply["error"]["code"])
    finally:
        sock.close(linger=0)
    assert codes[:4] == ["BAD_FRAME", "BAD_FRAME", "UNKNOWN_OP", "UNSUPPORTED_VERSION"]
    assert set(codes[4:8]) == {"BAD_REQUEST"}
    assert codes[8] in ("TOO_LARGE", "BAD_FRAME")
    assert await control.orders() == []
    assert await daemon.store.open_orders(None) == []
    async with AsyncClient(endpoint(daemon)) as client:
        assert (await client.health())["status"] == "healthy"
