"""Strict readers for one field of a request map. Each failure names its field.

Small pure functions, one rule each, so the codec reads as a list of fields. ``None``
(msgpack nil) counts as absent: a client may send every optional field as nil.
Every error is a WireError with code BAD_REQUEST and ``details["field"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from oexec.errors import ErrorCode, WireError
from oexec.models import parse_decimal

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")

SYMBOL_RE = re.compile(r"[A-Z0-9]{2,20}")
#: request_id: what a client chooses; it also seeds the venue's client order id.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: order ids are the daemon's own; same alphabet.
ORDER_ID_RE = REQUEST_ID_RE
#: Plain notation only: no sign, exponent, whitespace or bare dot. parse_decimal then
#: refuses zero, too many digits and too many decimals.
DECIMAL_RE = re.compile(r"[0-9]{1,40}(\.[0-9]{1,40})?")
MAX_CORRELATION_ID_CHARS = 128
INT64_MAX = 2**63 - 1


def bad(field: str, message: str, **extra: Any) -> WireError:
    return WireError(
        f"{field}: {message}", code=ErrorCode.BAD_REQUEST, details={"field": field, **extra}
    )


def _get(data: Mapping[str, Any], field: str, required: bool) -> Any:
    value = data.get(field)
    if value is None and required:
        raise bad(field, "required")
    return value


def text(data: Mapping[str, Any], field: str, *, required: bool = True) -> str | None:
    value = _get(data, field, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(field, f"expected a string, got {type(value).__name__}")
    return value


def matching(
    data: Mapping[str, Any], field: str, pattern: re.Pattern[str], *, required: bool = True
) -> str | None:
    value = text(data, field, required=required)
    if value is not None and not pattern.fullmatch(value):
        raise bad(field, f"must match {pattern.pattern}")
    return value


def symbol(data: Mapping[str, Any], field: str = "symbol", *, required: bool = True) -> str | None:
    return matching(data, field, SYMBOL_RE, required=required)


def request_id(data: Mapping[str, Any], *, required: bool = True) -> str | None:
    return matching(data, "request_id", REQUEST_ID_RE, required=required)


def order_id(data: Mapping[str, Any], *, required: bool = True) -> str | None:
    return matching(data, "order_id", ORDER_ID_RE, required=required)


def enum(data: Mapping[str, Any], field: str, cls: type[E], *, required: bool = True) -> E | None:
    value = text(data, field, required=required)
    if value is None:
        return None
    members = _MEMBERS.get(cls)
    if members is None:
        members = _MEMBERS[cls] = {m.value: m for m in cls}
    member = members.get(value)
    if member is None:
        raise bad(field, "not one of the allowed values", allowed=[m.value for m in cls])
    return member  # type: ignore[return-value]


#: value -> member per enum class: a dict lookup instead of ``Enum(value)`` (≈ 1 µs).
_MEMBERS: dict[type[StrEnum], dict[str, StrEnum]] = {}


def decimal(data: Mapping[str, Any], field: str, *, required: bool = True) -> Decimal | None:
    """A positive decimal sent as a string (see oexec.models.parse_decimal)."""
    value = _get(data, field, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(field, f"decimals travel as strings, got {type(value).__name__}")
    if not DECIMAL_RE.fullmatch(value):
        raise bad(field, 'expected a plain decimal string such as "0.010"')
    return parse_decimal(value, field)


def integer(
    data: Mapping[str, Any],
    field: str,
    *,
    required: bool = True,
    minimum: int = 0,
    maximum: int = INT64_MAX,
) -> int | None:
    value = _get(data, field, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(field, f"expected an integer, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise bad(field, f"must be between {minimum} and {maximum}")
    return value


def boolean(data: Mapping[str, Any], field: str, *, default: bool = False) -> bool:
    value = data.get(field)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad(field, f"expected a boolean, got {type(value).__name__}")
    return value


def correlation_id(data: Mapping[str, Any]) -> str | int:
    """The client's ``id``: a string (1-128 chars) or a 64-bit integer."""
    value = data.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise bad("id", "required: a string or an integer")
    if isinstance(value, str) and not 0 < len(value) <= MAX_CORRELATION_ID_CHARS:
        raise bad("id", f"must be 1-{MAX_CORRELATION_ID_CHARS} characters")
    if isinstance(value, int) and not -(2**63) <= value <= 2**64 - 1:
        raise bad("id", "out of 64-bit range")
    return value


def one_of(first: str | None, second: str | None, names: tuple[str, str]) -> None:
    """Exactly one of two lookup keys must be given."""
    if (first is None) == (second is None):
        raise bad(names[0], f"give exactly one of {names[0]} and {names[1]}")


def present(value: T | None) -> T:
    """Narrow a required field's value (its reader already raised when it was absent)."""
    if value is None:
        raise AssertionError("required field reader returned None")
    return value
