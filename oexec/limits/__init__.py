"""Client-side venue rate limits: one aiolimiter bucket per venue window. See limiter.py."""

from oexec.limits.limiter import VenueRateLimiter
from oexec.limits.windows import DEFAULT_VENUE_RULES, WindowSpec, plan_windows

__all__ = ["DEFAULT_VENUE_RULES", "VenueRateLimiter", "WindowSpec", "plan_windows"]
