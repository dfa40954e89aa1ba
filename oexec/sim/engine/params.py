"""Reading raw venue parameters (all strings) into typed values, with the venue's codes.

Each reader takes the merged parameter mapping and a name; absent or empty values of a
mandatory parameter are -1102, malformed ones -1100, unacceptable values their own code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

from oexec.sim.engine.errors import SimError, illegal_chars, invalid_value, missing

Params = Mapping[str, str]
E = TypeVar("E", bound=StrEnum)

_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_LEGAL = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_INT_RE = re.compile(r"^-?[0-9]{1,20}$")
_INT_LEGAL = r"^[0-9]{1,20}$"
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP = "STOP"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"
    GTD = "GTD"


class PositionSide(StrEnum):
    BOTH = "BOTH"
    LONG = "LONG"
    SHORT = "SHORT"


class WorkingType(StrEnum):
    CONTRACT_PRICE = "CONTRACT_PRICE"
    MARK_PRICE = "MARK_PRICE"


class RespType(StrEnum):
    ACK = "ACK"
    RESULT = "RESULT"


class StpMode(StrEnum):
    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"


#: Error raised for an unknown enum value, per enum (default -1130).
_ENUM_ERRORS: dict[type[StrEnum], tuple[int, str]] = {
    Side: (-1117, "Invalid side."),
    OrderType: (-1116, "Invalid orderType."),
    TimeInForce: (-1115, "Invalid timeInForce."),
    PositionSide: (-4060, "Invalid position side."),
    WorkingType: (-4031, "Invalid workingType."),
    RespType: (-1136, "Invalid newOrderRespType."),
    StpMode: (-5039, "Invalid self trade prevention mode."),
}


def text(params: Params, name: str) -> str | None:
    """The raw value, or None when absent or empty (the venue treats both alike)."""
    value = params.get(name)
    return value if value else None


def required(params: Params, name: str) -> str:
    """The raw value of a mandatory parameter (-1102 when absent)."""
    value = text(params, name)
    if value is None:
        raise missing(name)
    return value


def decimal(params: Params, name: str) -> Decimal | None:
    """A non-negative decimal in plain notation (-1100 when malformed)."""
    value = text(params, name)
    if value is None:
        return None
    if not _DECIMAL_RE.match(value):
        raise illegal_chars(name, _DECIMAL_LEGAL)
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise illegal_chars(name, _DECIMAL_LEGAL) from None


def required_decimal(params: Params, name: str) -> Decimal:
    value = decimal(params, name)
    if value is None:
        raise missing(name)
    return value


def integer(params: Params, name: str) -> int | None:
    """A 64-bit integer (-1100 when malformed)."""
    value = text(params, name)
    if value is None:
        return None
    if not _INT_RE.match(value):
        raise illegal_chars(name, _INT_LEGAL)
    return int(value)


def required_int(params: Params, name: str) -> int:
    value = integer(params, name)
    if value is None:
        raise missing(name)
    return value


def boolean(params: Params, name: str) -> bool | None:
    """``"true"``/``"false"`` in any case (-1130 otherwise)."""
    value = text(params, name)
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise invalid_value(name)
    return lowered == "true"


def enum(params: Params, name: str, kind: type[E]) -> E | None:
    """A member of ``kind`` by its venue spelling, or the enum's own error code."""
    value = text(params, name)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        code, msg = _ENUM_ERRORS.get(kind, (-1130, f"Invalid {name}."))
        raise SimError(code, msg) from None


def required_enum(params: Params, name: str, kind: type[E]) -> E:
    value = enum(params, name, kind)
    if value is None:
        raise missing(name)
    return value


def client_id(params: Params, name: str) -> str | None:
    """A client order/algo id matching the venue's regex (-4015 otherwise)."""
    value = text(params, name)
    if value is None:
        return None
    if not CLIENT_ID_RE.match(value):
        raise SimError(-4015, "Client order id is not valid.")
    return value


def json_list(params: Params, name: str) -> list[object]:
    """A JSON array parameter (batchOrders, orderIdList); numbers kept as strings."""
    raw = required(params, name)
    try:
        value = json.loads(raw, parse_float=str, parse_int=str)
    except ValueError:
        raise invalid_value(name) from None
    if not isinstance(value, list):
        raise invalid_value(name)
    return value


def string_map(item: object, name: str) -> dict[str, str]:
    """One batch element as the string mapping a single-order call takes."""
    if not isinstance(item, dict):
        raise invalid_value(name)
    result: dict[str, str] = {}
    for key, value in item.items():
        if isinstance(value, bool):
            result[str(key)] = "true" if value else "false"
        elif value is not None:
            result[str(key)] = str(value)
    return result
