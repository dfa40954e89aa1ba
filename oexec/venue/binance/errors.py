"""Turn a Binance HTTP error answer into one typed ``VenueError``, once, at the boundary.

Decisions are made on the HTTP status and the venue's numeric ``code`` (sets in
``codes.py``), never on message text — with two isolated, documented exceptions: a 503
has no code, so its three documented messages are told apart in ``is_definite_503``; and
the ban-until time of a 418/-1003 lives only in its message (``ban_until_ms``). The
venue's ``msg`` travels in ``details["venue_msg"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from oexec.errors import (
    VenueAuthError,
    VenueClockSkewError,
    VenueError,
    VenueOrderNotFoundError,
    VenueRateLimitError,
    VenueRejectedError,
    VenueUnavailableError,
    VenueUnknownOutcomeError,
)
from oexec.venue.binance.codes import (
    AUTH_CODES,
    CLOCK_SKEW_CODES,
    DEFINITE_FAILURE_503_MESSAGES,
    NOT_FOUND_CODES,
    RATE_LIMIT_STATUSES,
    UNAVAILABLE_CODES,
    UNKNOWN_OUTCOME_CODES,
    UNKNOWN_OUTCOME_STATUSES,
    BinanceErrorCode,
)

#: Pause when a 429/418 carries neither Retry-After nor a ban-until time. Bans start at
#: 2 minutes (§E.3), so a 418 waits at least that long.
DEFAULT_RETRY_AFTER_S = {429: 10.0, 418: 120.0}
MAX_MSG_CHARS = 300
_BAN_UNTIL = re.compile(r"(\d{13})")


class ListenKeyExpiredError(VenueRejectedError):
    """-1125: the listenKey does not exist (expired or closed); create a new one."""


def venue_code_of(payload: Any) -> tuple[int | None, str]:
    """``(code, msg)`` of an error body; ``(None, text)`` for a non-JSON or odd body."""
    if isinstance(payload, Mapping):
        code = payload.get("code")
        msg = payload.get("msg")
        text = msg if isinstance(msg, str) else ""
        if isinstance(code, int) and not isinstance(code, bool):
            return code, text[:MAX_MSG_CHARS]
        return None, text[:MAX_MSG_CHARS]
    if isinstance(payload, str):
        return None, payload[:MAX_MSG_CHARS]
    return None, ""


def is_definite_503(msg: str) -> bool:
    """True for the 503 texts that mean "failed, not executed" (§F.1)."""
    lowered = msg.strip().lower()
    return any(lowered.startswith(text) for text in DEFINITE_FAILURE_503_MESSAGES)


def ban_until_ms(msg: str) -> int | None:
    """The ms timestamp in "-1003 Way too many requests; IP banned until <ms>."."""
    match = _BAN_UNTIL.search(msg)
    return int(match.group(1)) if match else None


def retry_after_s(status: int, headers: Mapping[str, str], msg: str, now_ms: int) -> float:
    """How long to pause after a 429/418: Retry-After (seconds), ban-until, or a default."""
    header = headers.get("Retry-After")
    if header is not None:
        try:
            seconds = float(header)
        except ValueError:
            seconds = -1.0
        if seconds >= 0:
            return seconds
    until = ban_until_ms(msg)
    if until is not None and until > now_ms:
        return (until - now_ms) / 1000.0
    return DEFAULT_RETRY_AFTER_S.get(status, DEFAULT_RETRY_AFTER_S[429])


def map_error(
    status: int,
    payload: Any,
    headers: Mapping[str, str],
    *,
    now_ms: int,
    path: str = "",
) -> VenueError:
    """The typed error for an HTTP error answer (status >= 400) of the venue."""
    code, msg = venue_code_of(payload)
    details: dict[str, Any] = {"venue_msg": msg}
    if path:
        details["path"] = path
    kw: dict[str, Any] = {"venue_code": code, "http_status": status, "details": details}
    if status in RATE_LIMIT_STATUSES:
        wait = retry_after_s(status, headers, msg, now_ms)
        return VenueRateLimitError(
            f"venue rate limit (HTTP {status}); pausing {wait:.1f}s", retry_after_s=wait, **kw
        )
    return map_code(code, status, msg, kw)


def map_code(code: int | None, status: int, msg: str, kw: dict[str, Any]) -> VenueError:
    """Classify by venue code first, then by HTTP status class."""
    if code is not None:
        by_code = _by_code(code, status, kw)
        if by_code is not None:
            return by_code
    if status == 401:
        return VenueAuthError("venue refused the credentials", **kw)
    if status in UNKNOWN_OUTCOME_STATUSES:
        return VenueUnknownOutcomeError(f"venue timeout (HTTP {status})", **kw)
    if status == 503 and is_definite_503(msg):
        return VenueUnavailableError("venue unavailable (HTTP 503)", **kw)
    if status >= 500:
        return VenueUnknownOutcomeError(f"venue error HTTP {status}; outcome unknown", **kw)
    return VenueRejectedError(f"venue rejected the request ({code}): {msg}", **kw)


def _by_code(code: int, status: int, kw: dict[str, Any]) -> VenueError | None:
    if code in UNKNOWN_OUTCOME_CODES:
        return VenueUnknownOutcomeError(f"venue {code}: execution status unknown", **kw)
    if code in UNAVAILABLE_CODES:
        return VenueUnavailableError(f"venue {code}: not processed, try later", **kw)
    if code in AUTH_CODES:
        return VenueAuthError(f"venue {code}: key, signature or permission refused", **kw)
    if code in NOT_FOUND_CODES:
        return VenueOrderNotFoundError(f"venue {code}: order does not exist", **kw)
    if code in CLOCK_SKEW_CODES:
        return VenueClockSkewError(f"venue {code}: timestamp outside recvWindow", **kw)
    if code == BinanceErrorCode.INVALID_LISTEN_KEY:
        return ListenKeyExpiredError("venue -1125: listenKey does not exist", **kw)
    return None  # an unlisted code: decided by the HTTP status


def batch_element_error(payload: Mapping[str, Any], *, now_ms: int) -> VenueError:
    """One ``{code,msg}`` element of a batch answer (the HTTP status was 200)."""
    return map_error(400, payload, {}, now_ms=now_ms)
