"""One error root for the whole daemon, with a branch per layer and a stable code each.

Every failure a client can see carries an :class:`ErrorCode`. Codes are part of the
wire protocol (docs/wire.md): they never change meaning, and nothing matches on message
text. Layers raise the most specific subclass; the front end turns any ``OexecError``
into a typed error reply. This module imports nothing from oexec.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Stable error codes on the wire. Append only; never rename."""

    # wire / request layer: nothing was changed
    BAD_FRAME = "BAD_FRAME"  # not msgpack, not a map, wrong frame count
    BAD_REQUEST = "BAD_REQUEST"  # missing/ill-typed field, bad decimal
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    UNKNOWN_OP = "UNKNOWN_OP"
    TOO_LARGE = "TOO_LARGE"
    BUSY = "BUSY"  # worker pool saturated; retry later with the same request_id
    SHUTTING_DOWN = "SHUTTING_DOWN"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHORIZED = "UNAUTHORIZED"

    # idempotency
    DUPLICATE_REQUEST_MISMATCH = "DUPLICATE_REQUEST_MISMATCH"  # same request_id, other order

    # pre-trade validation: one code per rule (the rule's name)
    SYMBOL_UNKNOWN = "SYMBOL_UNKNOWN"
    SYMBOL_NOT_TRADING = "SYMBOL_NOT_TRADING"
    ORDER_TYPE_NOT_ALLOWED = "ORDER_TYPE_NOT_ALLOWED"
    TIME_IN_FORCE_NOT_ALLOWED = "TIME_IN_FORCE_NOT_ALLOWED"
    QTY_BELOW_MIN = "QTY_BELOW_MIN"
    QTY_ABOVE_MAX = "QTY_ABOVE_MAX"
    QTY_STEP = "QTY_STEP"
    PRICE_REQUIRED = "PRICE_REQUIRED"
    PRICE_NOT_ALLOWED = "PRICE_NOT_ALLOWED"
    PRICE_BELOW_MIN = "PRICE_BELOW_MIN"
    PRICE_ABOVE_MAX = "PRICE_ABOVE_MAX"
    PRICE_TICK = "PRICE_TICK"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    PERCENT_PRICE_ABOVE = "PERCENT_PRICE_ABOVE"
    PERCENT_PRICE_BELOW = "PERCENT_PRICE_BELOW"
    MAX_NUM_ORDERS = "MAX_NUM_ORDERS"
    MAX_NUM_ALGO_ORDERS = "MAX_NUM_ALGO_ORDERS"
    REDUCE_ONLY_CONFLICT = "REDUCE_ONLY_CONFLICT"
    POSITION_SIDE_MISMATCH = "POSITION_SIDE_MISMATCH"
    STOP_PRICE_REQUIRED = "STOP_PRICE_REQUIRED"
    GOOD_TILL_DATE_INVALID = "GOOD_TILL_DATE_INVALID"
    CLIENT_ORDER_ID_INVALID = "CLIENT_ORDER_ID_INVALID"
    TIME_IN_FORCE_REQUIRED = "TIME_IN_FORCE_REQUIRED"  # LIMIT without a time in force
    STOP_PRICE_NOT_ALLOWED = "STOP_PRICE_NOT_ALLOWED"  # stop price on a non-conditional type
    CALLBACK_RATE_REQUIRED = "CALLBACK_RATE_REQUIRED"  # TRAILING_STOP_MARKET without one

    # risk rules
    RISK_MAX_NOTIONAL = "RISK_MAX_NOTIONAL"
    RISK_MAX_POSITION = "RISK_MAX_POSITION"
    RISK_MAX_OPEN_ORDERS = "RISK_MAX_OPEN_ORDERS"
    RISK_PRICE_BAND = "RISK_PRICE_BAND"
    RISK_HALTED = "RISK_HALTED"
    RISK_EXTERNAL_REJECT = "RISK_EXTERNAL_REJECT"
    RISK_EXTERNAL_TIMEOUT = "RISK_EXTERNAL_TIMEOUT"

    # throttling and breaker
    RATE_LIMITED = "RATE_LIMITED"  # would wait past its deadline for a token
    VENUE_BANNED = "VENUE_BANNED"  # venue answered 429/418: all traffic paused
    BREAKER_OPEN = "BREAKER_OPEN"

    # venue
    VENUE_REJECTED = "VENUE_REJECTED"  # the venue said no (4xx business reject)
    VENUE_UNAVAILABLE = "VENUE_UNAVAILABLE"  # definitely not executed, venue down
    VENUE_AUTH = "VENUE_AUTH"  # key/signature/permission problem
    VENUE_UNKNOWN_OUTCOME = "VENUE_UNKNOWN_OUTCOME"  # sent; resolving by client id
    VENUE_ORDER_NOT_FOUND = "VENUE_ORDER_NOT_FOUND"

    # store
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    STORE_CONFLICT = "STORE_CONFLICT"  # optimistic version check failed

    # order state
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"
    ORDER_NOT_CANCELABLE = "ORDER_NOT_CANCELABLE"

    # events (issue 17)
    REPLAY_EXPIRED = "REPLAY_EXPIRED"  # the range asked for is older than the retention
    REPLAY_UNAVAILABLE = "REPLAY_UNAVAILABLE"  # this daemon keeps no event log

    # strategy ops beyond one order (issue 16)
    SYMBOL_NOT_ALLOWED = "SYMBOL_NOT_ALLOWED"  # not in [validation] symbols
    ORDER_NOT_AMENDABLE = "ORDER_NOT_AMENDABLE"  # not a resting LIMIT order, or closed

    INTERNAL = "INTERNAL"


class OexecError(Exception):
    """Root of every error the daemon raises on purpose.

    ``details`` is a small JSON/msgpack-safe mapping (field paths, limits, venue code)
    that travels to the client verbatim; never put secrets in it.
    """

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value}: {self.message})"


# --- wire -------------------------------------------------------------------------------
class WireError(OexecError):
    """The request could not be understood; nothing was changed."""

    code = ErrorCode.BAD_REQUEST


class BusyError(OexecError):
    code = ErrorCode.BUSY


class ShuttingDownError(OexecError):
    code = ErrorCode.SHUTTING_DOWN


class NotFoundError(OexecError):
    code = ErrorCode.NOT_FOUND


class ReplayExpiredError(OexecError):
    """A replay asked for events the log no longer keeps (older than its retention);
    ``details``: ``from_seq`` and ``oldest_seq`` (the oldest event still kept)."""

    code = ErrorCode.REPLAY_EXPIRED


# --- pre-trade rejections (business: never count against the breaker) -------------------
class RejectError(OexecError):
    """A pre-trade rule refused the order; the venue was not contacted."""


class ValidationError(RejectError):
    """An exchange filter (from exchangeInfo or config) refused the order."""


class RiskError(RejectError):
    """A risk rule or the kill switch refused the order."""


class ThrottleError(OexecError):
    """Sending now would break the venue's rate limits."""

    code = ErrorCode.RATE_LIMITED

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        retry_after_s: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after_s = retry_after_s


class BreakerOpenError(OexecError):
    code = ErrorCode.BREAKER_OPEN


# --- venue ------------------------------------------------------------------------------
class VenueError(OexecError):
    """Anything the venue adapter reports. ``venue_code`` is the venue's own code."""

    code = ErrorCode.VENUE_UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        venue_code: int | None = None,
        http_status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if venue_code is not None:
            merged.setdefault("venue_code", venue_code)
        if http_status is not None:
            merged.setdefault("http_status", http_status)
        super().__init__(message, code=code, details=merged)
        self.venue_code = venue_code
        self.http_status = http_status


class VenueRejectedError(VenueError):
    """The venue refused the request (4xx business error). Counts as success for the breaker."""

    code = ErrorCode.VENUE_REJECTED


class VenueOrderNotFoundError(VenueRejectedError):
    """-2013 / -2011 unknown order. May only mean "not visible yet" right after a submit."""

    code = ErrorCode.VENUE_ORDER_NOT_FOUND


class VenueAuthError(VenueError):
    code = ErrorCode.VENUE_AUTH


class VenueUnavailableError(VenueError):
    """Definitely not executed (connection refused, 503 Service Unavailable, -1001)."""

    code = ErrorCode.VENUE_UNAVAILABLE


class VenueUnknownOutcomeError(VenueError):
    """Sent, but the outcome is unknown (timeout, 5xx, -1007, reset after send)."""

    code = ErrorCode.VENUE_UNKNOWN_OUTCOME


class VenueRateLimitError(VenueError):
    """The venue answered 429 or 418; ``retry_after_s`` is how long all traffic must pause."""

    code = ErrorCode.VENUE_BANNED

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float,
        venue_code: int | None = None,
        http_status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, venue_code=venue_code, http_status=http_status, details=details)
        self.retry_after_s = retry_after_s


class VenueClockSkewError(VenueError):
    """-1021: our timestamp is outside the venue's recvWindow. Re-sync time, then retry."""

    code = ErrorCode.VENUE_REJECTED


# --- store ------------------------------------------------------------------------------
class StoreError(OexecError):
    code = ErrorCode.STORE_UNAVAILABLE


class StoreConflictError(StoreError):
    code = ErrorCode.STORE_CONFLICT


# --- order state ------------------------------------------------------------------------
class IllegalTransitionError(OexecError):
    code = ErrorCode.ILLEGAL_TRANSITION
