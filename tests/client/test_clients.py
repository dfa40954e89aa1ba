"""Sync and async clients against a real FrontEnd (in-memory service) over ZeroMQ."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgpack
import pytest

from oexec.client import (
    AsyncClient,
    Client,
    ClientError,
    ClientTimeoutError,
    DuplicateRequestError,
    InvalidRequestError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateError,
    ProtocolError,
    ServerError,
    StoreFailureError,
    ThrottledError,
    UnavailableError,
    UnknownOutcomeError,
    VenueFailureError,
    error_for,
)
from oexec.client.errors import family_of
from oexec.errors import ErrorCode
from oexec.front import FrontEnd
from oexec.front.testing import InMemoryOrderService
from oexec.models import Order, OrderState, OrderType, Side, TimeInForce
from oexec.wire import encode_error, encode_ok

from .helpers import Responder, release_after

LIMIT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "quantity": "0.010",
    "price": Decimal("50000.50"),
    "time_in_force": "GTC",
}


# --- sync -------------------------------------------------------------------------------
def sync_session(endpoint: str) -> dict[str, Any]:
    with Client(endpoint, timeout_s=5) as client:
        placed = client.place_order(**LIMIT, request_id="s-1")
        other = client.place_order(
            symbol="ETHUSDT",
            side=Side.SELL,
            type=OrderType.LIMIT,
            quantity=Decimal("1"),
            price="3000",
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            position_side="BOTH",
        )
        return {
            "placed": placed,
            "other": other,
            "by_id": client.get_order(order_id=placed.id),
            "by_request": client.get_order(request_id="s-1"),
            "open_btc": client.open_orders("BTCUSDT"),
            "open_all": client.open_orders(),
            "canceled": client.cancel_order(order_id=placed.id),
            "cancel_all": client.cancel_all("ETHUSDT"),
            "history": client.order_history(limit=10),
            "history_btc": client.order_history("BTCUSDT", start_ms=0, end_ms=2**62),
            "health": client.health(),
            "halt": client.halt(cancel_all=True),
            "resume": client.resume(),
        }


async def test_sync_client_all_ops(front: FrontEnd) -> None:
    out = await asyncio.to_thread(sync_session, front.endpoints[0])
    placed: Order = out["placed"]
    assert isinstance(placed, Order) and placed.quantity == Decimal("0.010")
    assert placed.price == Decimal("50000.50") and placed.request_id == "s-1"
    assert placed.state is OrderState.NEW and placed.side is Side.BUY
    assert out["other"].reduce_only is True and len(out["other"].request_id) == 32
    assert out["by_id"] == placed == out["by_request"]
    assert [o.id for o in out["open_btc"]] == [placed.id]
    assert len(out["open_all"]) == 2
    assert out["canceled"].state is OrderState.CANCELED
    assert out["canceled"].version == placed.version + 1
    assert [o.symbol for o in out["cancel_all"]] == ["ETHUSDT"]
    assert len(out["history"]) == 2 and [o.id for o in out["history_btc"]] == [placed.id]
    assert out["health"]["status"] == "ok"
    assert out["halt"] == {"halted": True, "canceled": 0}
    assert out["resume"] == {"halted": False}


def sync_errors(endpoint: str, service: InMemoryOrderService) -> None:
    with Client(endpoint) as client:
        with pytest.raises(OrderNotFoundError) as info:
            client.get_order(order_id="missing")
        assert info.value.code is ErrorCode.NOT_FOUND
        assert info.value.details == {"order_id": "missing"}
        client.place_order(**LIMIT, request_id="dup")
        with pytest.raises(DuplicateRequestError):
            client.place_order(**{**LIMIT, "quantity": "0.020"}, request_id="dup")
        with pytest.raises(InvalidRequestError) as bad:
            client.place_order(**{**LIMIT, "symbol": "btc/usdt"})
        assert bad.value.details["field"] == "symbol"
        calls = len(service.calls)
        with pytest.raises(TypeError):
            client.place_order(**{**LIMIT, "quantity": 0.01})
        with pytest.raises(TypeError):
            client.place_order(**{**LIMIT, "price": 50000.0})
        with pytest.raises(TypeError):
            client.place_order(**LIMIT, callback_rate=0.5)
        with pytest.raises(TypeError):
            client.place_order(**LIMIT, no_such_option=1)
        with pytest.raises(ValueError):
            client.get_order()
        with pytest.raises(ValueError):
            client.cancel_order(order_id="a", request_id="b")
        assert len(service.calls) == calls  # nothing was sent
        client.cancel_order(request_id="dup")
        with pytest.raises(OrderStateError):
            client.cancel_order(request_id="dup")


async def test_sync_client_errors(front: FrontEnd, service: InMemoryOrderService) -> None:
    await asyncio.to_thread(sync_errors, front.endpoints[0], service)


async def test_sync_retry_after_timeout_keeps_request_id(
    front: FrontEnd, service: InMemoryOrderService
) -> None:
    release_after(service, "place_order", 2)

    def place() -> Order:
        with Client(front.endpoints[0], timeout_s=0.3, retries=2) as client:
            return client.place_order(**LIMIT, request_id="slow-1")

    order = await asyncio.to_thread(place)
    assert order.request_id == "slow-1"
    assert service.calls.count("place_order") == 2
    assert len(service.orders) == 1  # the retry found the first order, no second one


def test_sync_timeout_without_daemon() -> None:
    with Client("tcp://127.0.0.1:1", timeout_s=0.05, retries=1) as client:
        with pytest.raises(ClientTimeoutError) as info:
            client.health()
    assert isinstance(info.value, TimeoutError) and info.value.code == "CLIENT_TIMEOUT"


def busy_then_ok() -> Responder:
    seen: list[Any] = []

    def respond(request: dict[str, Any]) -> bytes:
        seen.append(request["id"])
        if len(seen) == 1:
            return encode_error(request["id"], ErrorCode.BUSY, "busy")
        return encode_ok(request["id"], {"status": "ok", "attempts": len(seen)})

    return respond


def test_sync_retries_busy(scripted_router: Callable[[Responder], str]) -> None:
    endpoint = scripted_router(busy_then_ok())
    with Client(endpoint, timeout_s=5) as client:
        assert client.health()["attempts"] == 2


def test_sync_busy_exhausted(scripted_router: Callable[[Responder], str]) -> None:
    endpoint = scripted_router(lambda r: encode_error(r["id"], ErrorCode.BUSY, "busy"))
    with Client(endpoint, timeout_s=5, retries=1) as client, pytest.raises(UnavailableError):
        client.health()


def test_sync_skips_stale_and_rejects_garbage(
    scripted_router: Callable[[Responder], str],
) -> None:
    def respond(request: dict[str, Any]) -> bytes:
        if request["op"] == "health":
            return encode_ok("someone-else", {})  # never matches: times out
        return b"\xc1"

    endpoint = scripted_router(respond)
    with Client(endpoint, timeout_s=0.2, retries=0) as client:
        with pytest.raises(ClientTimeoutError):
            client.health()
        with pytest.raises(ProtocolError):
            client.resume()


def test_bad_result_shape_is_protocol_error(
    scripted_router: Callable[[Responder], str],
) -> None:
    endpoint = scripted_router(lambda r: encode_ok(r["id"], {"order": {"id": 1}, "orders": 3}))
    with Client(endpoint, timeout_s=5) as client:
        with pytest.raises(ProtocolError):
            client.get_order(order_id="x")
        with pytest.raises(ProtocolError):
            client.open_orders()


# --- async ------------------------------------------------------------------------------
async def test_async_many_in_flight(front: FrontEnd, service: InMemoryOrderService) -> None:
    async with AsyncClient(front.endpoints[0]) as client:
        orders = await asyncio.gather(
            *(client.place_order(**LIMIT, request_id=f"a-{i}") for i in range(60))
        )
        assert [o.request_id for o in orders] == [f"a-{i}" for i in range(60)]
        assert len({o.id for o in orders}) == 60
        got = await client.get_order(request_id="a-7")
        assert got == orders[7]
        canceled = await client.cancel_order(order_id=got.id)
        assert canceled.state is OrderState.CANCELED
        assert len(await client.open_orders("BTCUSDT")) == 59
        assert len(await client.cancel_all("BTCUSDT")) == 59
        assert len(await client.order_history(limit=5)) == 5
        assert (await client.health())["orders"] == 60
        assert (await client.halt())["halted"] is True
        assert (await client.resume())["halted"] is False
        with pytest.raises(OrderNotFoundError):
            await client.get_order(order_id="nope")


async def test_async_retry_after_timeout_keeps_request_id(
    front: FrontEnd, service: InMemoryOrderService
) -> None:
    release_after(service, "place_order", 2)
    async with AsyncClient(front.endpoints[0], timeout_s=0.3, retries=2) as client:
        order = await client.place_order(**LIMIT, request_id="slow-2")
    assert order.request_id == "slow-2"
    assert service.calls.count("place_order") == 2 and len(service.orders) == 1


async def test_async_retries_busy(scripted_router: Callable[[Responder], str]) -> None:
    endpoint = scripted_router(busy_then_ok())
    async with AsyncClient(endpoint, timeout_s=5) as client:
        assert (await client.health())["attempts"] == 2


async def test_async_timeout_and_close() -> None:
    client = AsyncClient("tcp://127.0.0.1:1", timeout_s=0.05, retries=1)
    with pytest.raises(ClientTimeoutError):
        await client.health()
    pending = asyncio.create_task(AsyncClient.call(client, "health", {}))
    await asyncio.sleep(0)
    await client.close()
    pending.cancel()
    await client.close()  # idempotent


async def test_async_ignores_garbage_replies(
    scripted_router: Callable[[Responder], str],
) -> None:
    answers = iter([b"\xc1", None])

    def respond(request: dict[str, Any]) -> bytes:
        first = next(answers, None)
        return first if first is not None else encode_ok(request["id"], {"ok": 1})

    endpoint = scripted_router(respond)
    async with AsyncClient(endpoint, timeout_s=0.3, retries=2) as client:
        assert await client.health() == {"ok": 1}


# --- error families ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("BAD_REQUEST", InvalidRequestError),
        ("TOO_LARGE", InvalidRequestError),
        ("BUSY", UnavailableError),
        ("SHUTTING_DOWN", UnavailableError),
        ("PRICE_TICK", OrderRejectedError),
        ("RISK_HALTED", OrderRejectedError),
        ("RISK_SOMETHING_NEW", OrderRejectedError),
        ("TIME_IN_FORCE_REQUIRED", OrderRejectedError),
        ("VENUE_AUTH", VenueFailureError),
        ("STORE_CONFLICT", StoreFailureError),
        ("RATE_LIMITED", ThrottledError),
        ("BREAKER_OPEN", ThrottledError),
        ("VENUE_UNKNOWN_OUTCOME", UnknownOutcomeError),
        ("ORDER_NOT_CANCELABLE", OrderStateError),
        ("INTERNAL", ServerError),
        ("SOMETHING_NEW", ServerError),
    ],
)
def test_error_families(code: str, cls: type[ClientError]) -> None:
    err = error_for(code, "m", {"k": 1})
    assert type(err) is cls and err.code == code and err.details == {"k": 1}


def test_every_code_has_a_family() -> None:
    """A new ErrorCode must be classified (explicitly or by prefix/suffix rule)."""
    unclassified = [
        c for c in ErrorCode if c is not ErrorCode.INTERNAL and family_of(c) is ServerError
    ]
    assert unclassified == []


def test_wire_requests_carry_strings() -> None:
    from oexec.client.requests import place_order_fields

    fields = place_order_fields(
        symbol="BTCUSDT",
        side=Side.BUY,
        type="LIMIT",
        quantity=Decimal("1E-3"),
        price=None,
        time_in_force=None,
        stop_price=None,
        reduce_only=False,
        request_id=None,
        options={"callback_rate": Decimal("0.5"), "deadline_ms": 100},
    )
    assert fields["quantity"] == "0.001" and fields["side"] == "BUY"
    assert fields["callback_rate"] == "0.5" and fields["deadline_ms"] == 100
    assert msgpack.unpackb(msgpack.packb(fields)) == fields
