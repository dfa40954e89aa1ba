"""Decimal formatting as the venue prints it: plain notation, never an exponent."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
#: Internal precision of derived money values (fees, entry prices, PnL).
MONEY_QUANTUM = Decimal("0.00000001")


def fmt(value: Decimal) -> str:
    """``Decimal`` → venue string: no exponent, no trailing zeros, no ``-0``."""
    if value.is_zero():
        return "0"
    text = format(value.normalize(), "f")
    return text


def plain(value: Decimal) -> str:
    """Configured values as written (``"0.10"`` stays): exchangeInfo echoes its config."""
    return format(value, "f")


def fmt_fixed(value: Decimal, places: int) -> str:
    """Fixed decimals, as the venue prints ``avgPrice`` (``"0.00000"`` when unfilled)."""
    quantum = Decimal(1).scaleb(-places)
    text = format(value.quantize(quantum, rounding=ROUND_HALF_UP), "f")
    return text[1:] if text.startswith("-") and Decimal(text).is_zero() else text


def money(value: Decimal) -> Decimal:
    """Round a derived amount to 8 decimals (the venue's balance precision)."""
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)


def fraction_digits(value: Decimal) -> int:
    """Significant decimal places: ``"1.2300"`` has 2."""
    if value.is_zero():
        return 0
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)
