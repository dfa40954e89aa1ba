"""ROUTER frame splitting and the order/fill wire shape."""

from __future__ import annotations

from decimal import Decimal

import msgpack
import pytest

from oexec.errors import ErrorCode, OexecError
from oexec.models import Fill, Order, OrderState, OrderType, Side, TimeInForce
from oexec.wire import (
    Route,
    fill_from_wire,
    fill_to_wire,
    order_from_wire,
    order_to_wire,
    pack,
    split_frames,
)
from oexec.wire.framing import FramingError

PLAN_FIELDS = {
    "id",
    "request_id",
    "exchange_order_id",
    "client_order_id",
    "symbol",
    "side",
    "type",
    "time_in_force",
    "quantity",
    "price",
    "state",
    "filled_quantity",
    "average_price",
    "created_at",
    "updated_at",
    "error_code",
    "error_message",
}


def make_order(**kw: object) -> Order:
    base: dict[str, object] = {
        "id": "o1",
        "request_id": "r1",
        "client_order_id": "x-r1",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "quantity": Decimal("0.010"),
        "state": OrderState.NEW,
        "created_at": 1,
        "updated_at": 2,
        "price": Decimal("50000.10"),
        "time_in_force": TimeInForce.GTC,
        "version": 3,
    }
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frames", "prefix", "body"),
    [
        ([b"id", b"", b"B"], (b"id", b""), b"B"),  # REQ
        ([b"id", b"B"], (b"id",), b"B"),  # DEALER without delimiter
        ([b"proxy", b"id", b"", b"B"], (b"proxy", b"id", b""), b"B"),  # via a proxy
    ],
)
def test_split(frames: list[bytes], prefix: tuple[bytes, ...], body: bytes) -> None:
    assert split_frames(frames) == (Route(prefix), body)


@pytest.mark.parametrize(
    ("frames", "routable"),
    [
        ([], False),
        ([b"", b"B"], False),
        ([b"id"], True),
        ([b"id", b""], True),
        ([b"id", b"", b"B", b"C"], True),
        ([b"id", b"B", b"C"], True),
    ],
)
def test_split_bad(frames: list[bytes], routable: bool) -> None:
    with pytest.raises(FramingError) as info:
        split_frames(frames)
    assert info.value.code is ErrorCode.BAD_FRAME
    assert (info.value.route is not None) is routable


def test_order_wire_shape_has_plan_fields_and_strings() -> None:
    wire = order_to_wire(make_order())
    assert set(wire) >= PLAN_FIELDS
    assert wire["quantity"] == "0.010" and wire["price"] == "50000.10"
    assert wire["side"] == "BUY" and wire["state"] == "NEW" and wire["version"] == 3
    assert wire["average_price"] is None and wire["stop_price"] is None
    assert wire["filled_quantity"] == "0"


def test_order_round_trip_through_msgpack() -> None:
    order = make_order(average_price=Decimal("50000.1"), filled_quantity=Decimal("0.005"))
    back = order_from_wire(msgpack.unpackb(pack(order_to_wire(order))))
    assert back == order
    assert back.quantity.as_tuple() == Decimal("0.010").as_tuple()


def test_order_from_wire_ignores_unknown_fields() -> None:
    wire = {**order_to_wire(make_order()), "new_field_from_future": 1}
    assert order_from_wire(wire) == make_order()


@pytest.mark.parametrize(
    "bad", [None, [], {"id": "x"}, {**order_to_wire(make_order()), "side": "UP"}]
)
def test_order_from_wire_bad(bad: object) -> None:
    with pytest.raises(OexecError) as info:
        order_from_wire(bad)
    assert info.value.code is ErrorCode.BAD_FRAME


def test_fill_round_trip() -> None:
    fill = Fill(
        order_id="o1",
        exchange_order_id="9",
        client_order_id="x-r1",
        symbol="BTCUSDT",
        side=Side.SELL,
        trade_id=5,
        price=Decimal("1.10"),
        quantity=Decimal("2"),
        commission=Decimal("0.001"),
        commission_asset="USDT",
        is_maker=True,
        realized_pnl=Decimal("-0.5"),
        time=123,
    )
    wire = fill_to_wire(fill)
    assert wire["price"] == "1.10" and wire["realized_pnl"] == "-0.5"
    assert fill_from_wire(msgpack.unpackb(pack(wire))) == fill
    with pytest.raises(OexecError):
        fill_from_wire("nope")
    with pytest.raises(OexecError):
        fill_from_wire({"order_id": "x"})
