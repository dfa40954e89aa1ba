"""Decoding the ops beyond one order (docs/wire.md §3): amend, batches, account, settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oexec.errors import ErrorCode, OexecError
from oexec.models import OrderIntent
from oexec.models.account import Balance, Position
from oexec.models.enums import PositionSide
from oexec.wire import RequestError, decode_request, encode_request
from oexec.wire.strategy import (
    Balances,
    CancelOrders,
    ModifyOrder,
    PlaceOrders,
    Positions,
    SetLeverage,
    SetMarginType,
    balance_from_wire,
    balance_to_wire,
    position_from_wire,
    position_to_wire,
)


def decode(op: str, **fields: Any) -> Any:
    return decode_request(encode_request("c-1", op, fields)).request


def refused(op: str, **fields: Any) -> RequestError:
    with pytest.raises(RequestError) as caught:
        decode(op, **fields)
    assert caught.value.code is ErrorCode.BAD_REQUEST
    return caught.value


def element(request_id: str, **changes: Any) -> dict[str, Any]:
    base = {
        "request_id": request_id,
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.010",
        "price": "49000",
        "time_in_force": "GTC",
    }
    return {**base, **changes}


def test_modify_order() -> None:
    assert decode("modify_order", order_id="o-1", price="1.5") == ModifyOrder(
        order_id="o-1", price=Decimal("1.5")
    )
    assert decode("modify_order", request_id="r1", quantity="2") == ModifyOrder(
        request_id="r1", quantity=Decimal("2")
    )
    assert refused("modify_order", order_id="o-1").details["field"] == "price"
    assert refused("modify_order", price="1").details["field"] == "order_id"
    assert refused("modify_order", order_id="o", request_id="r", price="1")
    assert refused("modify_order", order_id="o", price="-1").details["field"] == "price"
    assert refused("modify_order", order_id="o", price=1.5).details["field"] == "price"


def test_place_orders_keeps_each_elements_own_error_in_place() -> None:
    request = decode(
        "place_orders",
        orders=[element("a"), element("b", quantity="-1"), "not a map", element("a")],
    )
    assert isinstance(request, PlaceOrders)
    first, bad_qty, not_map, repeated = request.elements
    assert isinstance(first, OrderIntent) and first.request_id == "a"
    assert isinstance(bad_qty, OexecError) and bad_qty.details == {
        "field": "quantity",
        "index": 1,
    }
    assert isinstance(not_map, OexecError) and not_map.details["index"] == 2
    assert isinstance(repeated, OexecError) and repeated.details["field"] == "request_id"


@pytest.mark.parametrize("orders", [None, [], "x", [element(f"r{i}") for i in range(51)]])
def test_place_orders_needs_a_list_of_one_to_fifty(orders: Any) -> None:
    assert refused("place_orders", orders=orders).details["field"] == "orders"


def test_cancel_orders() -> None:
    assert decode("cancel_orders", order_ids=["o-1", "o-2"]) == CancelOrders(
        order_ids=("o-1", "o-2")
    )
    assert decode("cancel_orders", request_ids=["r1"]) == CancelOrders(request_ids=("r1",))
    assert refused("cancel_orders").details["field"] == "order_ids"
    assert refused("cancel_orders", order_ids=["a"], request_ids=["b"])
    assert refused("cancel_orders", order_ids=["ok", "bad id"]).details["index"] == 1
    assert refused("cancel_orders", order_ids=[f"o{i}" for i in range(51)])


def test_account_ops_and_settings() -> None:
    assert decode("positions") == Positions()
    assert decode("positions", symbol="ETHUSDT") == Positions("ETHUSDT")
    assert decode("balances") == Balances()
    assert decode("set_leverage", symbol="BTCUSDT", leverage=20) == SetLeverage("BTCUSDT", 20)
    assert refused("set_leverage", symbol="BTCUSDT", leverage=0).details["field"] == "leverage"
    assert refused("set_leverage", symbol="BTCUSDT", leverage=126)
    assert refused("set_leverage", symbol="btc", leverage=2).details["field"] == "symbol"
    assert decode("set_margin_type", symbol="BTCUSDT", margin_type="ISOLATED") == (
        SetMarginType("BTCUSDT", "isolated")
    )
    assert refused("set_margin_type", symbol="BTCUSDT", margin_type="both").details["allowed"] == [
        "cross",
        "isolated",
    ]


def test_positions_and_balances_round_trip_and_ignore_new_fields() -> None:
    position = Position(
        "BTCUSDT",
        PositionSide.BOTH,
        Decimal("-0.020"),
        entry_price=Decimal("50000.10"),
        leverage=20,
        margin_type="cross",
        update_time=7,
    )
    wire = position_to_wire(position)
    assert wire["amount"] == "-0.020" and wire["position_side"] == "BOTH"
    assert position_from_wire({**wire, "later_field": 1}) == position
    balance = Balance("USDT", Decimal("10000.5"), available_balance=Decimal("9000"))
    assert balance_from_wire(balance_to_wire(balance)) == balance
    with pytest.raises(OexecError) as bad:
        position_from_wire({"symbol": "BTCUSDT"})
    assert bad.value.code is ErrorCode.BAD_FRAME
    with pytest.raises(OexecError):
        balance_from_wire([1])
