from decimal import Decimal

import pytest

from oexec.errors import ErrorCode, WireError
from oexec.models.decimals import format_decimal, is_multiple, parse_decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.010", Decimal("0.010")),
        ("50000", Decimal(50000)),
        (" 1.5 ", Decimal("1.5")),
        ("1E-8", Decimal("1E-8")),
        (7, Decimal(7)),
    ],
)
def test_parse_accepts_finite_positive_strings(text: object, expected: Decimal) -> None:
    assert parse_decimal(text, "quantity") == expected


@pytest.mark.parametrize(
    "bad",
    [
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "sNaN",
        "-1",
        "0",
        "-0",
        "abc",
        "",
        "1e40",
        "0." + "0" * 30 + "1",
        1.5,
        True,
        None,
        b"1",
        "1" * 70,
        [],
        {},
    ],
)
def test_parse_refuses_bad_values_with_a_typed_error(bad: object) -> None:
    with pytest.raises(WireError) as info:
        parse_decimal(bad, "price")
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert info.value.details["field"] == "price"


def test_zero_allowed_when_asked_and_negative_zero_normalised() -> None:
    assert parse_decimal("-0", "x", allow_zero=True) == 0
    assert format_decimal(parse_decimal("-0.00", "x", allow_zero=True)) == "0"


def test_format_never_uses_exponents() -> None:
    assert format_decimal(Decimal("1E+1")) == "10"
    assert format_decimal(Decimal("1E-8")) == "0.00000001"
    assert format_decimal(Decimal("0.010")) == "0.010"
    assert format_decimal(Decimal("-0")) == "0"


def test_is_multiple_is_exact_for_binary_unfriendly_values() -> None:
    assert is_multiple(Decimal("0.3"), Decimal("0.1"))
    assert is_multiple(Decimal("0.1") + Decimal("0.2"), Decimal("0.1"))
    assert not is_multiple(Decimal("0.35"), Decimal("0.1"))
    assert is_multiple(Decimal("556.90"), Decimal("0.10"), Decimal("556.80"))
    assert is_multiple(Decimal("123.456"), Decimal(0))
