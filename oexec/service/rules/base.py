"""What every validation rule shares: the Rule protocol, the failure helper, Decimal maths.

A rule is a small object with a ``name`` and a synchronous ``check`` that returns None or
raises ValidationError. The failure carries the rule's stable code and the details
``{rule, field, value, limit}`` (strings for decimals, so they travel as they are).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from enum import Enum
from typing import ClassVar, NoReturn, Protocol

from oexec.errors import ErrorCode, ValidationError
from oexec.models import OrderTerms, SymbolRules, format_decimal, is_multiple
from oexec.service.rules.context import MarketContext

ZERO = Decimal(0)
#: Enough digits for any ratio of two wire decimals (18 integer + 18 fraction digits
#: each side): step checks never hit DivisionImpossible under the default 28 digits.
_WIDE_PRECISION = 120


class Rule(Protocol):
    """One pre-trade check. Raises ValidationError; returns None when the order passes."""

    name: ClassVar[str]

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None: ...


def as_detail(value: object) -> object:
    """A msgpack/JSON-safe rendering of a value for error details."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, Enum):
        return value.value
    return value


def fail(
    rule: str, code: ErrorCode, field: str, value: object, limit: object, message: str
) -> NoReturn:
    """Raise the ValidationError for ``rule`` with the standard details."""
    raise ValidationError(
        message,
        code=code,
        details={
            "rule": rule,
            "field": field,
            "value": as_detail(value),
            "limit": as_detail(limit),
        },
    )


def on_grid(value: Decimal, step: Decimal, base: Decimal = ZERO) -> bool:
    """True when ``value - base`` is a whole multiple of ``step`` (0 disables), exactly."""
    with localcontext() as ctx:
        ctx.prec = _WIDE_PRECISION
        return is_multiple(value, step, base)


def exceeds(value: Decimal, limit: Decimal) -> bool:
    """``value > limit`` where a zero limit means "no limit" (venue convention)."""
    return limit > 0 and value > limit


def below(value: Decimal, limit: Decimal) -> bool:
    """``value < limit`` where a zero limit means "no limit"."""
    return limit > 0 and value < limit


def reference_price(terms: OrderTerms, mark_price: Decimal | None) -> Decimal | None:
    """The price an order's notional is judged at.

    The limit price if the order has one; else the trigger (stop) price of a conditional
    market order; else the mark price (MARKET and trailing stops, as the venue does).
    None when nothing is known.
    """
    if terms.price is not None:
        return terms.price
    if terms.stop_price is not None:
        return terms.stop_price
    return mark_price


def multiply(a: Decimal, b: Decimal) -> Decimal:
    """Exact product (no rounding to 28 digits) for notional and band limits."""
    with localcontext() as ctx:
        ctx.prec = _WIDE_PRECISION
        return a * b
