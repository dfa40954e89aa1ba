"""The venue circuit breaker (breaker.py) and what counts as a venue failure (policy.py)."""

from oexec.breaker.breaker import CLOSED, HALF_OPEN, OPEN, TRANSITIONS, VenueBreaker
from oexec.breaker.policy import Outcome, classify

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "TRANSITIONS", "Outcome", "VenueBreaker", "classify"]
