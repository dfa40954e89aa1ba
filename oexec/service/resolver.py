"""Resolve orders whose submit outcome is unknown, by client order id — never by resending.

A submit that timed out, got a server error, or lost its connection after sending may
or may not have reached the matching engine. The venue is asked for the client order id
until it answers: found → the order takes the venue's state; not found → it is proven
never placed only once the venue's not-found grace after the send has passed
(``VenuePolicy.not_found_grace_ms``: until then the request may still be accepted, or
the venue's reads may lag its writes). A cancel whose outcome is unknown is resolved by
querying too (``resolve_cancel``), never assumed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import attrs

from oexec.errors import (
    ErrorCode,
    OexecError,
    StoreError,
    ThrottleError,
    VenueError,
    VenueOrderNotFoundError,
)
from oexec.models import Order, OrderState, VenueOrder
from oexec.service.apply import apply_venue_order, with_state
from oexec.service.journal import Journal
from oexec.service.ports import Venue
from oexec.service.writer import OrderWriter

log = logging.getLogger("oexec.resolver")


@attrs.frozen
class ResolverPolicy:
    not_found_grace_ms: int = 10_000  # the venue's VenuePolicy.not_found_grace_ms
    first_delay_s: float = 0.05
    max_delay_s: float = 2.0
    give_up_after_s: float = 300.0  # then stays UNKNOWN and is left to reconciliation


#: The query that proves "never placed" is sent this long after the grace ends.
PROOF_MARGIN_S = 0.01


def proven_never_placed(sent_at_ms: int, now_ms: int, policy: ResolverPolicy) -> bool:
    """A not-found answer proves nothing until the request could no longer be accepted."""
    return now_ms >= sent_at_ms + policy.not_found_grace_ms


def _applying(venue_order: VenueOrder, now_ms: int) -> Callable[[Order], Order | None]:
    return lambda order: apply_venue_order(order, venue_order, now_ms)


class UnknownOutcomeResolver:
    def __init__(
        self,
        venue: Venue,
        writer: OrderWriter,
        policy: ResolverPolicy,
        *,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        on_resolved: Callable[[Order, float], None] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.venue = venue
        self.writer = writer
        self.policy = policy
        self.now_ms = now_ms
        self.on_resolved = on_resolved
        self.journal = journal
        self._tasks: dict[str, asyncio.Task[Order]] = {}

    def resolve_in_background(self, order: Order, sent_at_ms: int) -> asyncio.Task[Order]:
        task = self._tasks.get(order.id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self.resolve(order, sent_at_ms))
            self._tasks[order.id] = task
            task.add_done_callback(self._forget(order.id))
        return task

    def resolve_cancel_in_background(self, order: Order) -> asyncio.Task[Order]:
        key = f"cancel:{order.id}"
        task = self._tasks.get(key)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self.resolve_cancel(order))
            self._tasks[key] = task
            task.add_done_callback(self._forget(key))
        return task

    def resolving(self, order_id: str) -> bool:
        """Whether a resolution of this order (its submit) is running now."""
        return order_id in self._tasks

    def _forget(self, order_id: str) -> Callable[[asyncio.Task[Order]], None]:
        def forget(task: asyncio.Task[Order]) -> None:
            self._tasks.pop(order_id, None)
            if not task.cancelled() and (exc := task.exception()) is not None:
                # a bug: the order stays UNKNOWN until reconciliation hands it over again
                log.error("resolution of %s failed", order_id, exc_info=exc)

        return forget

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def resolve(self, order: Order, sent_at_ms: int) -> Order:
        """Query until the venue's truth is known and stored; returns the order as stored.

        Neither an unreachable venue, nor our own rate limits (the query waits for room
        like any request: a chaos run's resolver died on RATE_LIMITED and its client was
        told "refused" for an order that was at the venue), nor an unavailable store ends
        it early: each is retried with backoff (a Redis restart must not leave an order
        UNKNOWN).
        """
        started = time.monotonic()
        delay = self.policy.first_delay_s
        noted: list[bool] = []
        while True:
            pause = 0.0
            try:
                settled = await self._attempt(order, sent_at_ms, noted)
            except VenueError as exc:
                log.info("resolving %s: venue not answering yet (%s)", order.id, exc.code)
            except StoreError as exc:
                log.warning("resolving %s: store unavailable (%s); retrying", order.id, exc)
            except ThrottleError as exc:
                log.info("resolving %s: no rate budget yet (%s)", order.id, exc.code)
                pause = exc.retry_after_s or 0.0
            except OexecError as exc:  # breaker, anything else of ours: ask again later
                log.warning("resolving %s: %s; retrying", order.id, exc.code)
            else:
                if settled is not None:
                    self._done(settled, started)
                    return settled
            if time.monotonic() - started > self.policy.give_up_after_s:
                waited = time.monotonic() - started
                log.error("order %s still unknown after %.0fs", order.id, waited)
                return order
            wait = max(pause, delay * (0.5 + random.random()))
            if noted:  # not found yet: ask again the moment a not-found proves it
                to_proof_s = (sent_at_ms + self.policy.not_found_grace_ms - self.now_ms()) / 1000
                if 0 < to_proof_s < wait:
                    wait = max(pause, to_proof_s + PROOF_MARGIN_S)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.policy.max_delay_s)

    async def _attempt(self, order: Order, sent_at_ms: int, noted: list[bool]) -> Order | None:
        """One query and, if it decides, the stored outcome; None: ask again later."""
        try:
            venue_order = await self.venue.query_order(
                order.symbol, client_order_id=order.client_order_id
            )
        except VenueOrderNotFoundError:
            if not proven_never_placed(sent_at_ms, self.now_ms(), self.policy):
                if not noted:
                    noted.append(True)
                    self._decide(order, "not visible yet (within the venue's grace): asking")
                return None
            self._decide(order, "proven never placed: not found after the venue's grace")
            stored, _ = await self.writer.update(
                order,
                lambda o: (
                    with_state(
                        o,
                        OrderState.REJECTED,
                        self.now_ms(),
                        error_code=ErrorCode.VENUE_UNKNOWN_OUTCOME.value,
                        error_message="never reached the venue (resolved by client id)",
                    )
                    if o.state in (OrderState.UNKNOWN, OrderState.SUBMITTING)
                    else None
                ),
                reason="resolver: proven never placed",
            )
            return stored
        self._decide(order, f"found by client order id: {venue_order.status.value}")
        stored, _ = await self.writer.update(
            order,
            _applying(venue_order, self.now_ms()),
            reason="resolver: found by client order id",
        )
        return stored

    async def resolve_cancel(self, order: Order) -> Order:
        """A cancel whose outcome is unknown: ask (with backoff) until the venue answers.

        Whatever the venue then says (CANCELED, or FILLED first) is folded in; the cancel
        itself is not repeated here: the caller decides whether to cancel again.
        """
        started = time.monotonic()
        delay = self.policy.first_delay_s
        while True:
            try:
                venue_order = await self.venue.query_order(
                    order.symbol, client_order_id=order.client_order_id
                )
                self._decide(order, f"cancel resolved by query: {venue_order.status.value}")
                stored, _ = await self.writer.update(
                    order, _applying(venue_order, self.now_ms()), reason="resolver: cancel"
                )
                return stored
            except VenueError as exc:
                log.info("resolving cancel of %s: no answer yet (%s)", order.id, exc.code)
            except StoreError as exc:
                log.warning("resolving cancel of %s: store unavailable (%s)", order.id, exc)
            except OexecError as exc:  # rate budget, breaker: ask again later
                log.info("resolving cancel of %s: not yet (%s)", order.id, exc.code)
            if time.monotonic() - started > self.policy.give_up_after_s:
                log.error("cancel of %s still unknown; left to reconciliation", order.id)
                return order
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.policy.max_delay_s)

    def _decide(self, order: Order, decision: str) -> None:
        if self.journal is not None:
            self.journal.record(order.client_order_id, "decision", decision=decision)

    def _done(self, order: Order, started: float) -> None:
        if self.on_resolved is not None:
            self.on_resolved(order, time.monotonic() - started)

    async def stop(self, timeout_s: float = 5.0) -> None:
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
