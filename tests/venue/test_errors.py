"""Error mapping: status + venue code → one typed error (reference §F)."""

from __future__ import annotations

from typing import Any

import pytest

from oexec.errors import (
    ErrorCode,
    VenueAuthError,
    VenueClockSkewError,
    VenueError,
    VenueOrderNotFoundError,
    VenueRateLimitError,
    VenueRejectedError,
    VenueUnavailableError,
    VenueUnknownOutcomeError,
)
from oexec.venue.binance.errors import (
    ListenKeyExpiredError,
    ban_until_ms,
    batch_element_error,
    is_definite_503,
    map_error,
    retry_after_s,
    venue_code_of,
)

NOW = 1_700_000_000_000


def body(code: int, msg: str = "m") -> dict[str, Any]:
    return {"code": code, "msg": msg}


@pytest.mark.parametrize(
    ("status", "payload", "cls"),
    [
        (400, body(-1007), VenueUnknownOutcomeError),
        (500, body(-1006), VenueUnknownOutcomeError),
        (408, "", VenueUnknownOutcomeError),
        (
            503,
            {"code": -1000, "msg": "Unknown error, please check your request"},
            VenueUnknownOutcomeError,
        ),
        (
            503,
            "Unknown error, please check your request or try again later.",
            VenueUnknownOutcomeError,
        ),
        (503, "Service Unavailable.", VenueUnavailableError),
        (
            503,
            body(0, "Internal error; unable to process your request. Please try again."),
            VenueUnavailableError,
        ),
        (502, "<html>bad gateway</html>", VenueUnknownOutcomeError),
        (500, body(-1001), VenueUnavailableError),
        (400, body(-1008), VenueUnavailableError),
        (401, "", VenueAuthError),
        (401, body(-2015), VenueAuthError),
        (400, body(-2014), VenueAuthError),
        (400, body(-1022), VenueAuthError),
        (400, body(-2013), VenueOrderNotFoundError),
        (400, body(-2011), VenueOrderNotFoundError),
        (400, body(-1021), VenueClockSkewError),
        (400, body(-1125), ListenKeyExpiredError),
        (400, body(-4164, "Order's notional must be no smaller than 100"), VenueRejectedError),
        (400, body(-4116), VenueRejectedError),
        (403, "waf", VenueRejectedError),
        (404, None, VenueRejectedError),
    ],
)
def test_mapping_table(status: int, payload: Any, cls: type[VenueError]) -> None:
    error = map_error(status, payload, {}, now_ms=NOW, path="/fapi/v1/order")
    assert type(error) is cls
    assert error.http_status == status
    assert error.details["path"] == "/fapi/v1/order"


def test_rejected_carries_code_and_message() -> None:
    error = map_error(400, body(-4164, "too small"), {}, now_ms=NOW)
    assert error.venue_code == -4164
    assert error.details["venue_msg"] == "too small"
    assert error.code is ErrorCode.VENUE_REJECTED


def test_not_found_is_a_rejection_for_the_breaker() -> None:
    assert isinstance(map_error(400, body(-2013), {}, now_ms=NOW), VenueRejectedError)


def test_429_uses_retry_after_header() -> None:
    error = map_error(429, body(-1003), {"Retry-After": "7"}, now_ms=NOW)
    assert isinstance(error, VenueRateLimitError)
    assert error.retry_after_s == 7.0
    assert error.code is ErrorCode.VENUE_BANNED


def test_418_uses_ban_until_from_message() -> None:
    msg = f"Way too many requests; IP banned until {NOW + 90_000}. Please use websocket."
    error = map_error(418, body(-1003, msg), {}, now_ms=NOW)
    assert isinstance(error, VenueRateLimitError)
    assert error.retry_after_s == 90.0


@pytest.mark.parametrize(
    ("status", "headers", "msg", "expected"),
    [
        (429, {}, "", 10.0),
        (418, {}, "", 120.0),
        (429, {"Retry-After": "junk"}, "", 10.0),
        (418, {}, f"banned until {NOW - 5}", 120.0),  # already past: default
        (429, {"Retry-After": "0"}, "", 0.0),
    ],
)
def test_retry_after_fallbacks(
    status: int, headers: dict[str, str], msg: str, expected: float
) -> None:
    assert retry_after_s(status, headers, msg, NOW) == expected


def test_helpers() -> None:
    assert ban_until_ms("no number") is None
    assert is_definite_503("  Service Unavailable.")
    assert not is_definite_503("Unknown error, please check your request or try again later.")
    assert venue_code_of({"code": True, "msg": 3}) == (None, "")
    assert venue_code_of([1]) == (None, "")
    assert venue_code_of("x" * 1000)[1] == "x" * 300


def test_batch_element_error() -> None:
    error = batch_element_error({"code": -2022, "msg": "ReduceOnly Order is rejected."}, now_ms=NOW)
    assert type(error) is VenueRejectedError and error.venue_code == -2022
