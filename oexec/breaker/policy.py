"""What counts against the venue breaker: a table of exception kinds, not scattered ifs.

Only evidence that the venue (or the path to it) is failing trips the breaker: refused
connections, 503/-1001, timeouts, unknown outcomes. A venue that answers "no" is
healthy (rejects, auth errors, unknown orders count as successes). A 429/418 is neither:
the rate limiter pauses traffic for it, and tripping the breaker as well would only
stop cancels. Anything else (our own throttling, cancellation, bugs) is not evidence
about the venue and is ignored.
"""

from __future__ import annotations

from enum import StrEnum

from oexec.errors import (
    ErrorCode,
    RejectError,
    VenueAuthError,
    VenueError,
    VenueRateLimitError,
    VenueRejectedError,
    VenueUnavailableError,
    VenueUnknownOutcomeError,
)


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


#: Checked in this order; the first matching row decides.
OUTCOME_BY_TYPE: tuple[tuple[tuple[type[BaseException], ...], Outcome], ...] = (
    ((VenueRateLimitError,), Outcome.NEUTRAL),
    ((VenueRejectedError, VenueAuthError, RejectError), Outcome.SUCCESS),
    ((VenueUnavailableError, VenueUnknownOutcomeError), Outcome.FAILURE),
    ((TimeoutError, ConnectionError), Outcome.FAILURE),
)
#: A plain VenueError is judged by its code.
FAILURE_CODES = frozenset({ErrorCode.VENUE_UNAVAILABLE, ErrorCode.VENUE_UNKNOWN_OUTCOME})


def classify(exc: BaseException | None) -> Outcome:
    """The breaker's reading of a call's outcome (None: it returned normally)."""
    if exc is None:
        return Outcome.SUCCESS
    for types, outcome in OUTCOME_BY_TYPE:
        if isinstance(exc, types):
            return outcome
    if isinstance(exc, VenueError) and exc.code in FAILURE_CODES:
        return Outcome.FAILURE
    return Outcome.NEUTRAL
