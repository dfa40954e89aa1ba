"""Binance JSON → oexec.models records, parsed once at the adapter boundary.

Decimals arrive as strings and are converted exactly; a JSON number is accepted through
its shortest text form (``str(float)``), which is the literal the venue printed. Any
shape problem raises ``VenueParseError`` naming the field, never a bare KeyError.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from oexec.errors import VenueError
from oexec.models import OrderType, PositionSide, Side, TimeInForce, VenueOrderStatus
from oexec.models.venue import (
    AccountConfigUpdate,
    AccountUpdate,
    BalanceUpdate,
    MarginCall,
    MarginCallLeg,
    OrderUpdate,
    PositionUpdate,
    VenueOrder,
    VenueTrade,
)

ZERO = Decimal(0)
_E = TypeVar("_E", Side, VenueOrderStatus, PositionSide)
#: Venue order types with no oexec counterpart, and what they behave like.
ORDER_TYPE_ALIASES = {"LIQUIDATION": OrderType.MARKET}
#: value -> member per enum: a dict lookup instead of ``Enum(value)`` (≈ 1 µs each,
#: ≈ 8 per parsed order).
_SIDES = {m.value: m for m in Side}
_STATUSES = {m.value: m for m in VenueOrderStatus}
_POSITION_SIDES = {m.value: m for m in PositionSide}
_ORDER_TYPES = {m.value: m for m in OrderType} | ORDER_TYPE_ALIASES
_TIME_IN_FORCE = {m.value: m for m in TimeInForce}
_MEMBERS: dict[type[Any], dict[str, Any]] = {
    Side: _SIDES,
    VenueOrderStatus: _STATUSES,
    PositionSide: _POSITION_SIDES,
}


class VenueParseError(VenueError):
    """The venue answered with JSON we cannot read."""


def dec(data: Mapping[str, Any], key: str, default: Decimal | None = None) -> Decimal:
    """Exact Decimal of ``data[key]`` (string, int or JSON number)."""
    value = data.get(key)
    if type(value) is str and value:  # the venue's usual form: skip the generic checks
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise VenueParseError(f"venue field {key!r} is not a decimal") from None
        if not number.is_finite():
            raise VenueParseError(f"venue field {key!r} is not finite")
        return number
    if value is None or value == "":
        if default is not None:
            return default
        raise VenueParseError(f"venue field {key!r} missing")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise VenueParseError(f"venue field {key!r} is not a decimal")
    try:
        number = Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise VenueParseError(f"venue field {key!r} is not a decimal") from None
    if not number.is_finite():
        raise VenueParseError(f"venue field {key!r} is not finite")
    return number


def integer(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise VenueParseError(f"venue field {key!r} is not an integer")
    try:
        return int(value)
    except ValueError:
        raise VenueParseError(f"venue field {key!r} is not an integer") from None


def text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise VenueParseError(f"venue field {key!r} missing or not a string")
    return value


def order_type(value: str) -> OrderType:
    member = _ORDER_TYPES.get(value)
    if member is None:
        raise VenueParseError(f"unknown venue order type {value!r}")
    return member


def time_in_force(value: object) -> TimeInForce | None:
    """Unknown values (e.g. ``GTE_GTC`` on close-position orders) become None."""
    return _TIME_IN_FORCE.get(value) if isinstance(value, str) else None


def _enum_field(cls: type[_E], data: Mapping[str, Any], key: str) -> _E:
    member: _E | None = _MEMBERS[cls].get(text(data, key))
    if member is None:
        raise VenueParseError(f"venue field {key!r} has unknown value")
    return member


def _own(data: Mapping[str, Any]) -> dict[str, Any]:
    """The payload itself as ``raw``: decoded JSON is ours alone and never mutated, so a
    copy per parsed record (the stream's events were held twice) buys nothing."""
    return data if isinstance(data, dict) else dict(data)


def optional_price(data: Mapping[str, Any], key: str) -> Decimal | None:
    """A price the venue sends as ``"0"`` when absent."""
    value = dec(data, key, ZERO)
    return None if value.is_zero() else value


def parse_order(data: Any) -> VenueOrder:
    """A REST order object (§C.1): POST/GET/DELETE/PUT order, openOrders, batch items."""
    if not isinstance(data, Mapping):
        raise VenueParseError("venue order is not an object")
    raw_type = data.get("origType") or data.get("type")
    if not isinstance(raw_type, str):
        raise VenueParseError("venue order has no type")
    executed_key = "executedQty" if "executedQty" in data else "cumQty"
    return VenueOrder(
        symbol=text(data, "symbol"),
        exchange_order_id=str(integer(data, "orderId")),
        client_order_id=text(data, "clientOrderId"),
        status=_enum_field(VenueOrderStatus, data, "status"),
        side=_enum_field(Side, data, "side"),
        type=order_type(raw_type),
        quantity=dec(data, "origQty"),
        executed_quantity=dec(data, executed_key, ZERO),
        price=dec(data, "price", ZERO),
        average_price=dec(data, "avgPrice", ZERO),
        cumulative_quote=dec(data, "cumQuote", ZERO),
        update_time=integer(data, "updateTime", integer(data, "time", 0)),
        time_in_force=time_in_force(data.get("timeInForce")),
        stop_price=optional_price(data, "stopPrice"),
        reduce_only=data.get("reduceOnly") is True,
        position_side=_position_side(data.get("positionSide")),
        raw=_own(data),
    )


def _position_side(value: object) -> PositionSide:
    if not isinstance(value, str):
        return PositionSide.BOTH
    member = _POSITION_SIDES.get(value)
    if member is None:
        raise VenueParseError(f"unknown position side {value!r}")
    return member


def parse_orders(data: Any) -> list[VenueOrder]:
    if not isinstance(data, list):
        raise VenueParseError("venue answer is not a list of orders")
    return [parse_order(item) for item in data]


def parse_user_trade(data: Any) -> VenueTrade:
    """One ``userTrades`` row (§B.3); it carries no client order id."""
    if not isinstance(data, Mapping):
        raise VenueParseError("venue trade is not an object")
    return VenueTrade(
        symbol=text(data, "symbol"),
        trade_id=integer(data, "id"),
        exchange_order_id=str(integer(data, "orderId")),
        client_order_id=None,
        side=_enum_field(Side, data, "side"),
        price=dec(data, "price"),
        quantity=dec(data, "qty"),
        commission=dec(data, "commission", ZERO),
        commission_asset=str(data.get("commissionAsset") or ""),
        is_maker=data.get("maker") is True,
        realized_pnl=dec(data, "realizedPnl", ZERO),
        time=integer(data, "time"),
        raw=_own(data),
    )


def parse_user_trades(data: Any) -> list[VenueTrade]:
    if not isinstance(data, list):
        raise VenueParseError("venue answer is not a list of trades")
    return [parse_user_trade(item) for item in data]


def _stream_order(o: Mapping[str, Any], transaction_time: int) -> VenueOrder:
    raw_type = o.get("ot") or o.get("o")
    if not isinstance(raw_type, str):
        raise VenueParseError("stream order has no type")
    average = dec(o, "ap", ZERO)
    filled = dec(o, "z", ZERO)
    return VenueOrder(
        symbol=text(o, "s"),
        exchange_order_id=str(integer(o, "i")),
        client_order_id=text(o, "c"),
        status=_enum_field(VenueOrderStatus, o, "X"),
        side=_enum_field(Side, o, "S"),
        type=order_type(raw_type),
        quantity=dec(o, "q"),
        executed_quantity=filled,
        price=dec(o, "p", ZERO),
        average_price=average,
        # The stream carries no cumulative quote; derived from the (rounded) average.
        cumulative_quote=average * filled,
        update_time=integer(o, "T", transaction_time),
        time_in_force=time_in_force(o.get("f")),
        stop_price=optional_price(o, "sp"),
        reduce_only=o.get("R") is True,
        position_side=_position_side(o.get("ps")),
        raw=_own(o),
    )


def _stream_trade(o: Mapping[str, Any], order: VenueOrder) -> VenueTrade:
    return VenueTrade(
        symbol=order.symbol,
        trade_id=integer(o, "t"),
        exchange_order_id=order.exchange_order_id,
        client_order_id=order.client_order_id,
        side=order.side,
        price=dec(o, "L"),
        quantity=dec(o, "l"),
        commission=dec(o, "n", ZERO),
        commission_asset=str(o.get("N") or ""),
        is_maker=o.get("m") is True,
        realized_pnl=dec(o, "rp", ZERO),
        time=integer(o, "T", order.update_time),
        raw=_own(o),
    )


def parse_order_trade_update(event: Mapping[str, Any]) -> OrderUpdate:
    """``ORDER_TRADE_UPDATE`` (§G.3); a TRADE execution carries its ``VenueTrade``."""
    o = event.get("o")
    if not isinstance(o, Mapping):
        raise VenueParseError("ORDER_TRADE_UPDATE without 'o'")
    transaction_time = integer(event, "T", integer(event, "E", 0))
    order = _stream_order(o, transaction_time)
    execution = text(o, "x")
    trade = _stream_trade(o, order) if execution == "TRADE" else None
    return OrderUpdate(
        order=order,
        execution_type=execution,
        event_time=integer(event, "E", transaction_time),
        transaction_time=transaction_time,
        trade=trade,
    )


def parse_account_update(event: Mapping[str, Any]) -> AccountUpdate:
    """``ACCOUNT_UPDATE`` (§G.6): balances and the positions that changed."""
    a = event.get("a")
    if not isinstance(a, Mapping):
        raise VenueParseError("ACCOUNT_UPDATE without 'a'")
    balances = tuple(
        BalanceUpdate(
            asset=text(b, "a"), wallet_balance=dec(b, "wb"), cross_wallet_balance=dec(b, "cw", ZERO)
        )
        for b in _objects(a.get("B"))
    )
    positions = tuple(
        PositionUpdate(
            symbol=text(p, "s"),
            position_side=_position_side(p.get("ps")),
            amount=dec(p, "pa"),
            entry_price=dec(p, "ep", ZERO),
            unrealized_pnl=dec(p, "up", ZERO),
            break_even_price=dec(p, "bep") if p.get("bep") not in (None, "") else None,
            margin_type=str(p["mt"]).lower() if isinstance(p.get("mt"), str) else None,
        )
        for p in _objects(a.get("P"))
    )
    return AccountUpdate(
        event_time=integer(event, "E", 0),
        reason=str(a.get("m") or ""),
        balances=balances,
        positions=positions,
    )


def parse_account_config_update(event: Mapping[str, Any]) -> AccountConfigUpdate:
    """``ACCOUNT_CONFIG_UPDATE``: ``ac`` {s, l} (a symbol's leverage) or ``ai`` {j}
    (multi-assets mode)."""
    ac, ai = event.get("ac"), event.get("ai")
    at = integer(event, "E", 0)
    if isinstance(ac, Mapping):
        return AccountConfigUpdate(at, symbol=text(ac, "s"), leverage=integer(ac, "l"))
    if isinstance(ai, Mapping) and isinstance(ai.get("j"), bool):
        return AccountConfigUpdate(at, multi_assets=bool(ai["j"]))
    raise VenueParseError("ACCOUNT_CONFIG_UPDATE without 'ac' or 'ai'")


def parse_margin_call(event: Mapping[str, Any]) -> MarginCall:
    """``MARGIN_CALL``: ``cw`` (cross wallet balance) and the legs at risk in ``p``."""
    legs = tuple(
        MarginCallLeg(
            symbol=text(p, "s"),
            position_side=_position_side(p.get("ps")),
            amount=dec(p, "pa"),
            margin_type=_margin_type(p.get("mt")),
            mark_price=dec(p, "mp", ZERO),
            unrealized_pnl=dec(p, "up", ZERO),
            maintenance_margin=dec(p, "mm", ZERO),
        )
        for p in _objects(event.get("p"))
    )
    cross = dec(event, "cw") if event.get("cw") not in (None, "") else None
    return MarginCall(integer(event, "E", 0), cross, legs)


def _margin_type(value: object) -> str | None:
    """The venue writes CROSSED/ISOLATED in MARGIN_CALL, cross/isolated elsewhere."""
    if not isinstance(value, str):
        return None
    return "cross" if value.lower().startswith("cross") else value.lower()


def _objects(value: object) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise VenueParseError("expected a list of objects")
    return value


def parse_listen_key(data: Any) -> str:
    if not isinstance(data, Mapping):
        raise VenueParseError("listenKey answer is not an object")
    return text(data, "listenKey")
