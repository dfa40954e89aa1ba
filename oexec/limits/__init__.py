"""Client-side venue rate limits: one aiolimiter bucket per venue window. See limiter.py."""

from oexec.limits.limiter import VenueRateLimiter
from oexec.limits.windows import WindowSpec, plan_windows

__all__ = ["VenueRateLimiter", "WindowSpec", "plan_windows"]
