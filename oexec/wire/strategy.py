"""Ops beyond one order (issue 16): amend, batches, positions, balances, account settings.

docs/wire.md, section "Ops", is the source of truth. Records here, builders from a
request map here too (``strategy_builders``; the codec registers them), so these ops
read as one list beside the single-order ones in messages.py.

A ``place_orders`` element that fails its field checks does not fail the request: it
stays in its place as the element's error (code BAD_REQUEST, ``details.index``), and
the other elements go on — each element is judged on its own, as if sent alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import attrs

from oexec.errors import ErrorCode, OexecError, WireError
from oexec.models import OrderIntent
from oexec.models.account import Balance, Position
from oexec.models.serde import converter
from oexec.wire import fields as f

T = TypeVar("T")
#: Most elements in one place_orders / cancel_orders request.
MAX_BATCH = 50
MAX_LEVERAGE = 125
MARGIN_TYPES = ("cross", "isolated")


@attrs.frozen(slots=True)
class ModifyOrder:
    """Exactly one of ``order_id`` and ``request_id``; at least one of price, quantity."""

    OP: ClassVar[str] = "modify_order"
    order_id: str | None = None
    request_id: str | None = None
    price: Decimal | None = None
    quantity: Decimal | None = None


@attrs.frozen(slots=True)
class PlaceOrders:
    """One intent per element, or that element's field error, in request order."""

    OP: ClassVar[str] = "place_orders"
    elements: tuple[OrderIntent | OexecError, ...]


@attrs.frozen(slots=True)
class CancelOrders:
    """Exactly one of the two lists, 1..MAX_BATCH ids."""

    OP: ClassVar[str] = "cancel_orders"
    order_ids: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()


@attrs.frozen(slots=True)
class Positions:
    OP: ClassVar[str] = "positions"
    symbol: str | None = None


@attrs.frozen(slots=True)
class Balances:
    OP: ClassVar[str] = "balances"


@attrs.frozen(slots=True)
class SetLeverage:
    OP: ClassVar[str] = "set_leverage"
    symbol: str
    leverage: int


@attrs.frozen(slots=True)
class SetMarginType:
    OP: ClassVar[str] = "set_margin_type"
    symbol: str
    margin_type: str  # "cross" | "isolated"


StrategyRequest = (
    ModifyOrder | PlaceOrders | CancelOrders | Positions | Balances | SetLeverage | SetMarginType
)
STRATEGY_TYPES: tuple[type[StrategyRequest], ...] = (
    ModifyOrder,
    PlaceOrders,
    CancelOrders,
    Positions,
    Balances,
    SetLeverage,
    SetMarginType,
)


# --- decoding -----------------------------------------------------------------------------
def _modify_order(data: Mapping[str, Any]) -> ModifyOrder:
    order_id = f.order_id(data, required=False)
    request_id = f.request_id(data, required=False)
    f.one_of(order_id, request_id, ("order_id", "request_id"))
    price = f.decimal(data, "price", required=False)
    quantity = f.decimal(data, "quantity", required=False)
    if price is None and quantity is None:
        raise f.bad("price", "give price, quantity or both")
    return ModifyOrder(order_id=order_id, request_id=request_id, price=price, quantity=quantity)


def _elements(data: Mapping[str, Any], field: str) -> list[Any]:
    items = data.get(field)
    if not isinstance(items, list):
        raise f.bad(field, "required: a list")
    if not 1 <= len(items) <= MAX_BATCH:
        raise f.bad(field, f"must hold 1..{MAX_BATCH} elements", count=len(items))
    return items


def _place_orders(place: Callable[[Mapping[str, Any]], OrderIntent]) -> Any:
    def build(data: Mapping[str, Any]) -> PlaceOrders:
        elements: list[OrderIntent | OexecError] = []
        seen: set[str] = set()
        for index, item in enumerate(_elements(data, "orders")):
            try:
                if not isinstance(item, dict):
                    raise f.bad("orders", "each element must be a map")
                intent = place(item)
                if intent.request_id in seen:
                    raise f.bad("request_id", "repeated within the batch")
                seen.add(intent.request_id)
                elements.append(intent)
            except WireError as exc:
                exc.details["index"] = index
                elements.append(exc)
        return PlaceOrders(tuple(elements))

    return build


def _ids(data: Mapping[str, Any], field: str, pattern: Any) -> tuple[str, ...]:
    if data.get(field) is None:
        return ()
    ids = _elements(data, field)
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise f.bad(field, f"element {index} must match {pattern.pattern}", index=index)
    return tuple(ids)


def _cancel_orders(data: Mapping[str, Any]) -> CancelOrders:
    order_ids = _ids(data, "order_ids", f.ORDER_ID_RE)
    request_ids = _ids(data, "request_ids", f.REQUEST_ID_RE)
    if bool(order_ids) == bool(request_ids):
        raise f.bad("order_ids", "give exactly one of order_ids and request_ids")
    return CancelOrders(order_ids=order_ids, request_ids=request_ids)


def _margin_type(data: Mapping[str, Any]) -> str:
    value = f.present(f.text(data, "margin_type")).lower()
    if value not in MARGIN_TYPES:
        raise f.bad("margin_type", "not one of the allowed values", allowed=list(MARGIN_TYPES))
    return value


def strategy_builders(
    place: Callable[[Mapping[str, Any]], OrderIntent],
) -> dict[str, Callable[[Mapping[str, Any]], StrategyRequest]]:
    """op -> builder; ``place`` reads one place_order map (the codec's own reader)."""
    return {
        ModifyOrder.OP: _modify_order,
        PlaceOrders.OP: _place_orders(place),
        CancelOrders.OP: _cancel_orders,
        Positions.OP: lambda data: Positions(symbol=f.symbol(data, required=False)),
        Balances.OP: lambda data: Balances(),
        SetLeverage.OP: lambda data: SetLeverage(
            symbol=f.present(f.symbol(data)),
            leverage=f.present(f.integer(data, "leverage", minimum=1, maximum=MAX_LEVERAGE)),
        ),
        SetMarginType.OP: lambda data: SetMarginType(
            symbol=f.present(f.symbol(data)), margin_type=_margin_type(data)
        ),
    }


# --- results ------------------------------------------------------------------------------
def error_to_wire(exc: OexecError) -> dict[str, Any]:
    """One element's error, shaped like an error reply's ``error`` map."""
    return {"code": exc.code.value, "message": exc.message, "details": dict(exc.details)}


def position_to_wire(position: Position) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(position)
    return result


def balance_to_wire(balance: Balance) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(balance)
    return result


def position_from_wire(data: Any) -> Position:
    """Raises WireError(BAD_FRAME) when ``data`` is not a position map."""
    return _structure(data, Position, "position")


def balance_from_wire(data: Any) -> Balance:
    """Raises WireError(BAD_FRAME) when ``data`` is not a balance map."""
    return _structure(data, Balance, "balance")


def _structure(data: Any, cls: type[T], what: str) -> T:
    if not isinstance(data, dict):
        raise WireError(f"{what}: not a map", code=ErrorCode.BAD_FRAME)
    known = {a.name for a in attrs.fields(cls)}  # type: ignore[arg-type]
    try:
        return converter.structure({k: v for k, v in data.items() if k in known}, cls)
    except Exception as exc:  # cattrs raises several families; all mean "not readable"
        raise WireError(f"{what}: cannot read: {exc}", code=ErrorCode.BAD_FRAME) from None
