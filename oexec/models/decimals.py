"""Strict Decimal parsing and formatting for prices, quantities and money.

Decimals travel as strings on the wire and to the venue. Parsing refuses NaN, Infinity,
exponents outside a sane range and absurd precision, so nothing downstream has to ask.
Formatting never emits exponents (``1E+1`` would be rejected by the venue).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from oexec.errors import ErrorCode, WireError

#: More fractional digits than this cannot be a real price or quantity on any venue.
MAX_FRACTION_DIGITS = 18
#: Nor can more integer digits than this.
MAX_INTEGER_DIGITS = 18
ZERO = Decimal(0)


def parse_decimal(value: object, field: str, *, allow_zero: bool = False) -> Decimal:
    """Parse a wire decimal (a string; ints tolerated) into a finite, positive Decimal.

    Raises WireError(BAD_REQUEST) naming ``field``. Floats are refused: they cannot carry
    an exact decimal, and accepting them would invite the plan's float defect back in.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise WireError(
            f"{field}: expected a decimal string, got {type(value).__name__}",
            code=ErrorCode.BAD_REQUEST,
            details={"field": field},
        )
    text = value.strip() if isinstance(value, str) else str(value)
    if not text or len(text) > 64:
        raise WireError(f"{field}: empty or overlong decimal", details={"field": field})
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise WireError(
            f"{field}: not a decimal: {text[:32]!r}", details={"field": field}
        ) from None
    if not number.is_finite():
        raise WireError(f"{field}: must be finite", details={"field": field})
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > MAX_FRACTION_DIGITS:
        raise WireError(
            f"{field}: more than {MAX_FRACTION_DIGITS} decimal places", details={"field": field}
        )
    if number.adjusted() >= MAX_INTEGER_DIGITS:
        raise WireError(f"{field}: too large", details={"field": field})
    if number < 0 or (number == 0 and not allow_zero):
        raise WireError(f"{field}: must be positive", details={"field": field})
    if number.is_zero():
        number = ZERO  # normalise -0
    return number


def format_decimal(value: Decimal) -> str:
    """Plain notation, no exponent, trailing zeros kept as given (``0.010`` stays)."""
    text = format(value, "f")
    return text[1:] if value.is_zero() and text.startswith("-") else text


def is_multiple(value: Decimal, step: Decimal, base: Decimal = ZERO) -> bool:
    """True when ``value - base`` is an exact multiple of ``step`` (step 0 disables)."""
    if step == 0:
        return True
    return (value - base) % step == 0
