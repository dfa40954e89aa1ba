"""Settling a submit: the venue's answer (accepted, rejected, unknown) stored and replied.

By default the client's reply goes out first and the accepted answer is stored right
after it: the claim made the order durable (SUBMITTING, with its client order id) before
it was sent, so a crash or a store failure before the answer lands loses nothing — the
resolver (at once, or at the next start) learns the venue's answer again by client order
id. Lookups, cancels and duplicates of the order wait for its pending store step
(``persisted``), so a client never reads an older state than its reply.
``persist_before_reply`` restores the strict order (the reply then also means "the
answer is stored").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from oexec.errors import StoreError, VenueRejectedError, VenueUnknownOutcomeError
from oexec.models import Order, OrderState, VenueOrder
from oexec.models.serde import order_to_dict
from oexec.service.apply import PRE_VENUE_STATES, apply_venue_order, with_state
from oexec.service.ports import OrderStore
from oexec.service.resolver import UnknownOutcomeResolver
from oexec.service.stages import PipelineObserver, PipelineSettings, error_from_order
from oexec.service.writer import OrderWriter, encode_reply

log = logging.getLogger("oexec.pipeline")


class Settlement:
    def __init__(
        self,
        *,
        store: OrderStore,
        writer: OrderWriter,
        resolver: UnknownOutcomeResolver,
        settings: PipelineSettings,
        observer: PipelineObserver,
        now_ms: Callable[[], int],
    ) -> None:
        self.store = store
        self.writer = writer
        self.resolver = resolver
        self.settings = settings
        self.observer = observer
        self.now_ms = now_ms
        #: the venue's answers being stored after their reply, by order id and by
        #: request id: what reads of those orders wait for
        self._persisting: dict[str, asyncio.Task[None]] = {}
        self._persisting_requests: dict[str, asyncio.Task[None]] = {}

    # -- the three outcomes ------------------------------------------------------------------
    async def accepted(self, order: Order, venue_order: VenueOrder, sent_at: int) -> Order:
        """The order as the reply shows it; stored now or right after the reply."""
        now = self.now_ms()

        def accept(current: Order) -> Order | None:
            return apply_venue_order(current, venue_order, now)

        if self.settings.persist_before_reply:
            return await self._persist_answer(order, accept, sent_at)
        # The reply shows the venue's answer on the newest version this process has (the
        # user stream may have got there first); storing it runs after the reply.
        base = self.writer.latest(order)
        answered = accept(base) or base
        self._persist_after_reply(order, accept, sent_at)
        return answered

    async def rejected(self, order: Order, exc: VenueRejectedError, sent_at: int) -> None:
        """Store the venue's refusal (final) and cache it as the request's reply."""
        now, code, message = self.now_ms(), exc.code.value, exc.message

        def reject(current: Order) -> Order | None:
            if current.state not in PRE_VENUE_STATES:
                return None  # the venue's own view got there first
            return with_state(
                current, OrderState.REJECTED, now, error_code=code, error_message=message
            )

        async with self._recording(order, sent_at):
            stored, _ = await self.writer.update(order, reject, reason="venue reject")
            await self.save_reply(stored)

    async def unknown(self, order: Order, sent_at: int) -> Order:
        """The submit may have landed: UNKNOWN, resolved by client order id (never resent);
        the reply waits ``inline_resolve_s`` for the resolver, then says so."""
        async with self._recording(order, sent_at):
            unknown, _ = await self.writer.update(
                order,
                lambda o: (
                    with_state(o, OrderState.UNKNOWN, self.now_ms())
                    if o.state is OrderState.SUBMITTING
                    else None
                ),
                reason="submit outcome unknown",
            )
            task = self.resolver.resolve_in_background(unknown, sent_at)
            try:
                resolved = await asyncio.wait_for(
                    asyncio.shield(task), self.settings.inline_resolve_s
                )
            except Exception as exc:
                # Not resolved in time, or the resolution failed: the order may be at the
                # venue, so the answer is "unknown" - never the resolution's own error
                # (a RATE_LIMITED here read as "refused, never sent": a phantom order).
                if not isinstance(exc, TimeoutError):
                    log.warning("inline resolution of %s failed: %r", order.id, exc)
                raise VenueUnknownOutcomeError(
                    "submit outcome unknown; resolving by client order id (query the order later)",
                    details={"order_id": order.id, "client_order_id": order.client_order_id},
                ) from None
            await self.save_reply(resolved)
        if resolved.state is OrderState.REJECTED:
            raise error_from_order(resolved)
        return resolved

    async def save_reply(self, order: Order) -> None:
        await self.store.save_reply(
            order.request_id, encode_reply(order_to_dict(order)), self.settings.idempotency_ttl_s
        )

    # -- storing after the reply -------------------------------------------------------------
    async def _persist_answer(
        self, order: Order, accept: Callable[[Order], Order | None], sent_at: int
    ) -> Order:
        t1 = time.perf_counter()
        try:
            async with self._recording(order, sent_at):
                stored, changed = await self.writer.update(
                    order,
                    accept,
                    reason="venue accepted",
                    reply_ttl_s=self.settings.idempotency_ttl_s,
                )
                if not changed:  # the user stream got there first: no reply cached yet
                    await self.save_reply(stored)
            return stored
        finally:
            self.observer.stage("persist", time.perf_counter() - t1)

    def _persist_after_reply(
        self, order: Order, accept: Callable[[Order], Order | None], sent_at: int
    ) -> None:
        async def persist() -> None:
            try:
                await self._persist_answer(order, accept, sent_at)
            except StoreError as exc:  # the resolver has it (see _recording)
                log.warning("venue answer for %s not stored yet: %s; resolving", order.id, exc)
            except Exception:
                log.exception("storing the venue answer for %s failed; resolving", order.id)
                self.resolver.resolve_in_background(order, sent_at)

        task = asyncio.get_running_loop().create_task(persist())
        self._persisting[order.id] = task
        self._persisting_requests[order.request_id] = task

        def done(_: asyncio.Task[None]) -> None:
            if self._persisting.get(order.id) is task:
                del self._persisting[order.id]
            if self._persisting_requests.get(order.request_id) is task:
                del self._persisting_requests[order.request_id]

        task.add_done_callback(done)

    def being_stored(self, order_id: str) -> bool:
        return order_id in self._persisting

    async def persisted(self, order_id: str | None = None, request_id: str | None = None) -> None:
        """Wait until the venue answer of this order (if one is being stored) is stored."""
        task = None
        if order_id is not None:
            task = self._persisting.get(order_id)
        if task is None and request_id is not None:
            task = self._persisting_requests.get(request_id)
        if task is not None:
            await asyncio.wait({task})  # its failure is the resolver's, not the reader's

    async def drain(self) -> None:
        """Store the venue answers already replied (at stop, and before list reads)."""
        pending = set(self._persisting.values())
        if pending:
            await asyncio.wait(pending)

    @contextlib.asynccontextmanager
    async def _recording(self, order: Order, sent_at: int) -> AsyncIterator[None]:
        """The venue has answered (or may have); if the store cannot take it now, the
        resolver learns it again by client order id and stores it once the store is back
        (else the order would stay SUBMITTING until the next start). The caller still
        gets the store's error: the outcome is not recorded yet."""
        try:
            yield
        except StoreError:
            self.resolver.resolve_in_background(order, sent_at)
            raise
