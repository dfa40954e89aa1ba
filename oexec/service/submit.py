"""The submit: one venue call through the breaker, within the request's deadline.

Only sends; what the answer means for the stored order is ``settle.py``'s. Failures keep
their meaning: a ``NOT_SENT_ERRORS`` exception proves the order never left (the caller
releases the claim), a VenueRejectedError is final, anything else may have reached the
venue and is resolved by client order id, never resent.
"""

from __future__ import annotations

import time

from oexec.errors import ErrorCode, ThrottleError
from oexec.models import Order, VenueOrder
from oexec.service.ports import Venue, VenueOrderRequest
from oexec.service.stages import Breaker, Deadline, PipelineObserver, deadline_exceeded


class Submitter:
    def __init__(self, *, venue: Venue, breaker: Breaker, observer: PipelineObserver) -> None:
        self.venue = venue
        self.breaker = breaker
        self.observer = observer

    async def send(self, order: Order, *, bypass_breaker: bool, deadline: Deadline) -> VenueOrder:
        """The venue's answer to ``order``. Raises DEADLINE_EXCEEDED (unsent) when the
        request's own deadline has passed, or the rate-limit gate has no token before it."""
        deadline.check("the venue call")
        request = VenueOrderRequest(client_order_id=order.client_order_id, terms=order.terms)
        left_s = deadline.left_s()
        inside: list[float] = []  # when the breaker let the call in and when it returned

        async def send() -> VenueOrder:
            inside.append(time.perf_counter())
            try:
                return await self.venue.place_order(request, deadline_s=left_s)
            finally:
                inside.append(time.perf_counter())

        t0 = time.perf_counter()
        try:
            try:
                return await self.breaker.call(send, bypass=bypass_breaker)
            finally:
                # the breaker's own share: around the venue call, not in it
                inside.append(time.perf_counter())
                venue_s = inside[1] - inside[0] if len(inside) == 3 else 0.0
                self.observer.stage("breaker", max(0.0, inside[-1] - t0 - venue_s))
        except ThrottleError as exc:
            if left_s is not None and exc.code is ErrorCode.RATE_LIMITED:
                # the gate waited as long as the request allowed: its deadline decided
                raise deadline_exceeded("a rate-limit token", exc.retry_after_s) from exc
            raise
        finally:
            elapsed = time.perf_counter() - t0
            self.observer.stage("venue", elapsed)
            self.observer.submission_latency(order.symbol, elapsed)
