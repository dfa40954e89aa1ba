"""Which rate windows to enforce and how big each bucket is: pure arithmetic, no clocks.

The venue publishes its limiters (its exchange info's ``rateLimits``, and until that is
loaded the ``rate_windows`` of its VenuePolicy), e.g. request weight per minute and
orders per 10 s and per minute. We enforce ``safety_margin`` of each, capped by any
configured override.

Bucket shape. A leaky bucket of capacity C that drains at r per second lets through at
most C + r·T in any span of T seconds (a full burst, then the drain). With
C + r·T = limit, no window of the venue's length — fixed, or sliding — can see more
than the limit (in a half-open window strictly fewer). ``burst_fraction`` splits the
limit between the immediate burst C and the steady drain r·T.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_FLOOR, Decimal

import attrs

from oexec.config import LimitsConfig
from oexec.models import RateLimitRule

ORDERS = "ORDERS"
REQUEST_WEIGHT = "REQUEST_WEIGHT"
RAW_REQUESTS = "RAW_REQUESTS"
#: What each venue limiter counts, in our acquire() terms.
UNIT_OF_KIND = {ORDERS: "orders", REQUEST_WEIGHT: "weight", RAW_REQUESTS: "requests"}

WindowKey = tuple[str, int]  # (kind, interval_s)


@attrs.frozen(slots=True)
class WindowSpec:
    """One enforced window: ``limit`` units per ``interval_s``, ``burst`` of them at once."""

    kind: str
    interval_s: int
    limit: int
    burst: int
    venue_limit: int = 0  # what the venue publishes (0: configured only)

    @property
    def key(self) -> WindowKey:
        return (self.kind, self.interval_s)

    @property
    def name(self) -> str:
        return f"{UNIT_OF_KIND[self.kind]}_{interval_label(self.interval_s)}"

    @property
    def rate_per_s(self) -> float:
        """Steady drain so that burst + drain over one interval equals the limit."""
        return max(self.limit - self.burst, 1) / self.interval_s


#: The venue-time estimate may be off by this much: a window's age is taken this much
#: shorter (more of the venue's count is kept).
WINDOW_AGE_MARGIN_S = 1.0


def level_for_count(count: int, rate_per_s: float, window_age_s: float | None) -> float:
    """The bucket level that leaves exactly what the venue's window still allows, given
    the venue's ``count`` in it.

    A bucket at level ``l`` lets through ``(C - l) + r·t`` in the next ``t`` seconds.
    Of a window of unknown phase (a sliding one) the count may be only just spent:
    ``l = count`` lets through ``L - count`` over the next interval. Of a fixed window
    ``a`` seconds old, only the rest of the window matters (then the count starts again
    from zero): ``l = count - r·a`` lets through ``(C - count) + r·T = L - count`` by its
    end. Without this, a daemon started late in a busy minute took a count of 1,200 as
    "just spent" and had no weight for 30 s (a chaos run's restart: its reconciliation
    waited that long)."""
    if window_age_s is None:
        return float(count)
    age = max(0.0, window_age_s - WINDOW_AGE_MARGIN_S)
    return max(0.0, count - rate_per_s * age)


def interval_label(seconds: int) -> str:
    """10 -> "10s", 60 -> "1m", 3600 -> "1h", 86400 -> "1d" (the venue's header style)."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def effective_limit(venue_limit: int, margin: Decimal) -> int:
    """``floor(venue_limit × margin)``, at least 1 (a zero limit would block forever)."""
    scaled = (Decimal(venue_limit) * margin).to_integral_value(rounding=ROUND_FLOOR)
    return max(1, int(scaled))


def burst_size(limit: int, fraction: Decimal) -> int:
    """The bucket capacity: a share of the limit, at least 1, leaving at least 1 to drain."""
    share = int((Decimal(limit) * fraction).to_integral_value(rounding=ROUND_FLOOR))
    return min(max(1, share), max(1, limit - 1))


def configured_caps(config: LimitsConfig) -> dict[WindowKey, int]:
    """The static caps from config (0 = none)."""
    caps = {
        (ORDERS, 10): config.orders_per_10s,
        (ORDERS, 60): config.orders_per_minute,
        (REQUEST_WEIGHT, 60): config.weight_per_minute,
    }
    return {key: cap for key, cap in caps.items() if cap > 0}


def plan_windows(rules: Iterable[RateLimitRule], config: LimitsConfig) -> tuple[WindowSpec, ...]:
    """The windows to enforce: each known venue limiter × margin, capped by config.

    A configured cap for a window the venue does not publish is enforced as given.
    Unknown limiter kinds are ignored (nothing to count them with).
    """
    caps = configured_caps(config)
    limits: dict[WindowKey, tuple[int, int]] = {}  # key -> (limit, venue limit)
    for rule in rules:
        if rule.kind not in UNIT_OF_KIND or rule.interval_s <= 0 or rule.limit <= 0:
            continue
        key = (rule.kind, rule.interval_s)
        limit = effective_limit(rule.limit, config.safety_margin)
        previous = limits.get(key)
        if previous is None or limit < previous[0]:
            limits[key] = (limit, rule.limit)
    for key, cap in caps.items():
        limit, venue = limits.get(key, (cap, 0))
        limits[key] = (min(limit, cap), venue)
    return tuple(
        WindowSpec(
            kind=kind,
            interval_s=interval,
            limit=limit,
            burst=burst_size(limit, config.burst_fraction),
            venue_limit=venue,
        )
        for (kind, interval), (limit, venue) in sorted(limits.items())
    )


def amount_for(spec: WindowSpec, *, weight: int, orders: int) -> int:
    """How many units of ``spec``'s kind one request costs."""
    if spec.kind == ORDERS:
        return orders
    if spec.kind == REQUEST_WEIGHT:
        return weight
    return 1
