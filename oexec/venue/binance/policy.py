"""What the core must know about Binance USDⓈ-M, as data (``VenuePolicy``), and the
mapping of its usage reports onto the rate windows the gate observes.

Sources (reference/binance-usdm-addendum.md): ``newClientOrderId`` must match
``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``; a request is accepted up to ``recvWindow`` after its
timestamp, and a just-accepted order may answer -2013 (not found) for a few seconds
(read after write), so not found proves "never placed" only after both; ``openOrders``
weighs 1 with a symbol and 40 without; the published limits are 2400 request weight per
minute, 300 orders per 10 s and 1200 per minute (until exchangeInfo says otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping

from oexec.config import VenueConfig
from oexec.models import RateLimitRule
from oexec.service.ports import RateWindow, RequestGate, VenuePolicy

NAME = "binance_usdm"
CLIENT_ORDER_ID_PATTERN = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
#: -2013 within this long after a submit means "not visible yet", not "never placed".
READ_AFTER_WRITE_MS = 5_000
OPEN_ORDERS_ALL_SYMBOLS_WEIGHT = 40  # vs 1 with a symbol
REQUEST_WEIGHT_1M: RateWindow = ("REQUEST_WEIGHT", 60)
ORDERS_10S: RateWindow = ("ORDERS", 10)
ORDERS_1M: RateWindow = ("ORDERS", 60)
RATE_WINDOWS: tuple[RateLimitRule, ...] = (
    RateLimitRule("REQUEST_WEIGHT", 60, 2400),
    RateLimitRule("ORDERS", 10, 300),
    RateLimitRule("ORDERS", 60, 1200),
)


def policy(config: VenueConfig) -> VenuePolicy:
    return VenuePolicy(
        name=NAME,
        client_order_id_pattern=CLIENT_ORDER_ID_PATTERN,
        not_found_grace_ms=config.recv_window_ms + READ_AFTER_WRITE_MS,
        all_symbols_open_orders_cost=OPEN_ORDERS_ALL_SYMBOLS_WEIGHT,
        rate_windows=RATE_WINDOWS,
    )


def window_ages(counts: Mapping[RateWindow, int], venue_now_ms: int) -> dict[RateWindow, float]:
    """How far into each of its windows the venue is: Binance's counters are fixed
    windows aligned to its clock ("the current used weight for the IP for the current
    minute"; the minute counter resets at the top of each minute), so a count read 20 s
    into the minute covers 20 s, not 60. ``venue_now_ms``: the venue-time estimate
    (local clock + the measured offset)."""
    return {window: (venue_now_ms % (window[1] * 1000)) / 1000 for window in counts}


def usage(
    weight_1m: int | None, orders_10s: int | None, orders_1m: int | None
) -> dict[RateWindow, int]:
    """The venue's counts (X-MBX-USED-WEIGHT-1M / X-MBX-ORDER-COUNT-10S / -1M headers, or
    a WebSocket reply's ``rateLimits``) as the ``{window: used}`` map the gate observes."""
    counts = {REQUEST_WEIGHT_1M: weight_1m, ORDERS_10S: orders_10s, ORDERS_1M: orders_1m}
    return {window: used for window, used in counts.items() if used is not None}


def report_usage(
    gate: RequestGate,
    weight_1m: int | None,
    orders_10s: int | None,
    orders_1m: int | None,
    venue_now_ms: int,
) -> None:
    """Tell ``gate`` the venue's counts of an answer (REST headers or a WebSocket reply's
    ``rateLimits``), each with its fixed window's age; nothing when none was reported."""
    counts = usage(weight_1m, orders_10s, orders_1m)
    if counts:
        gate.observe(counts, window_ages(counts, venue_now_ms))
