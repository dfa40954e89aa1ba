"""Client-side exceptions: one class per error-code family, all under ClientError.

Every exception carries the daemon's ``code`` (an ErrorCode, or the raw string for a
code this build does not know), its ``message`` and ``details``. Catch a family
(``OrderRejectedError``) or the root; branch on ``code`` for the precise rule.
"""

from __future__ import annotations

from typing import Any

from oexec.errors import ErrorCode as C


class ClientError(Exception):
    def __init__(self, code: C | str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidRequestError(ClientError):
    """The daemon could not read the request; nothing changed. Fix the request."""


class UnavailableError(ClientError):
    """BUSY / SHUTTING_DOWN / DEADLINE_EXCEEDED: not processed; retry (same request_id)."""


class OrderNotFoundError(ClientError):
    pass


class UnauthorizedError(ClientError):
    pass


class DuplicateRequestError(ClientError):
    """The request_id was already used for a different order."""


class OrderRejectedError(ClientError):
    """A pre-trade validation or risk rule refused the order; the venue was not asked."""


class ThrottledError(ClientError):
    """Rate limit, venue ban or open breaker: not sent; try later."""


class VenueFailureError(ClientError):
    """The venue refused or could not be reached (definite outcome)."""


class UnknownOutcomeError(ClientError):
    """Sent to the venue, outcome not yet known. Do not place again: query by request_id."""


class StoreFailureError(ClientError):
    pass


class OrderStateError(ClientError):
    """The order's state does not allow this (e.g. cancelling a filled order)."""


class ReplayError(ClientError):
    """REPLAY_EXPIRED (the range is older than the daemon's retention; ``details``:
    ``from_seq``, ``oldest_seq``) or REPLAY_UNAVAILABLE (the daemon keeps no event log)."""


class ServerError(ClientError):
    """INTERNAL, or a code this client does not know."""


class ClientTimeoutError(ClientError, TimeoutError):
    """No reply within the timeout after every retry; the outcome is unknown."""


class ProtocolError(ClientError):
    """The daemon's reply could not be read."""


_FAMILIES: dict[type[ClientError], tuple[C, ...]] = {
    InvalidRequestError: (
        C.BAD_FRAME,
        C.BAD_REQUEST,
        C.UNSUPPORTED_VERSION,
        C.UNKNOWN_OP,
        C.TOO_LARGE,
    ),
    UnavailableError: (C.BUSY, C.SHUTTING_DOWN, C.DEADLINE_EXCEEDED),
    OrderNotFoundError: (C.NOT_FOUND, C.VENUE_ORDER_NOT_FOUND),
    UnauthorizedError: (C.UNAUTHORIZED,),
    DuplicateRequestError: (C.DUPLICATE_REQUEST_MISMATCH,),
    OrderRejectedError: (
        C.SYMBOL_UNKNOWN,
        C.SYMBOL_NOT_TRADING,
        C.ORDER_TYPE_NOT_ALLOWED,
        C.TIME_IN_FORCE_NOT_ALLOWED,
        C.QTY_BELOW_MIN,
        C.QTY_ABOVE_MAX,
        C.QTY_STEP,
        C.PRICE_REQUIRED,
        C.PRICE_NOT_ALLOWED,
        C.PRICE_BELOW_MIN,
        C.PRICE_ABOVE_MAX,
        C.PRICE_TICK,
        C.MIN_NOTIONAL,
        C.PERCENT_PRICE_ABOVE,
        C.PERCENT_PRICE_BELOW,
        C.MAX_NUM_ORDERS,
        C.MAX_NUM_ALGO_ORDERS,
        C.REDUCE_ONLY_CONFLICT,
        C.POSITION_SIDE_MISMATCH,
        C.STOP_PRICE_REQUIRED,
        C.GOOD_TILL_DATE_INVALID,
        C.CLIENT_ORDER_ID_INVALID,
    ),
    ThrottledError: (C.RATE_LIMITED, C.VENUE_BANNED, C.BREAKER_OPEN),
    VenueFailureError: (C.VENUE_REJECTED, C.VENUE_UNAVAILABLE, C.VENUE_AUTH),
    UnknownOutcomeError: (C.VENUE_UNKNOWN_OUTCOME,),
    StoreFailureError: (C.STORE_UNAVAILABLE, C.STORE_CONFLICT),
    OrderStateError: (C.ILLEGAL_TRANSITION, C.ORDER_NOT_CANCELABLE, C.ORDER_NOT_AMENDABLE),
    ServerError: (C.INTERNAL,),
    ReplayError: (C.REPLAY_EXPIRED, C.REPLAY_UNAVAILABLE),
}
#: Families by the shape of a code, for codes not listed above (new rules keep these).
_PREFIXES: tuple[tuple[str, type[ClientError]], ...] = (
    ("RISK_", OrderRejectedError),
    ("VENUE_", VenueFailureError),
    ("STORE_", StoreFailureError),
)
_SUFFIXES: tuple[tuple[str, type[ClientError]], ...] = (
    ("_REQUIRED", OrderRejectedError),
    ("_NOT_ALLOWED", OrderRejectedError),
    ("_INVALID", OrderRejectedError),
)
#: error code -> exception class, from the explicit families.
ERROR_CLASSES: dict[str, type[ClientError]] = {
    code.value: cls for cls, codes in _FAMILIES.items() for code in codes
}


def family_of(code: C | str) -> type[ClientError]:
    """The exception class for ``code``: listed, else by prefix/suffix, else ServerError."""
    text = str(code)
    listed = ERROR_CLASSES.get(text)
    if listed is not None:
        return listed
    for prefix, cls in _PREFIXES:
        if text.startswith(prefix):
            return cls
    for suffix, cls in _SUFFIXES:
        if text.endswith(suffix):
            return cls
    return ServerError


def error_for(code: C | str, message: str, details: dict[str, Any] | None = None) -> ClientError:
    return family_of(code)(code, message, details)
