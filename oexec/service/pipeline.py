"""The order pipeline: idempotency → validation → risk → rate limits → breaker → venue.

Implements the OrderService port. The chain for a new order:

1. validation and risk, in memory (no I/O but a cached mark price);
2. transient admission (breaker open, venue ban): fail fast, record nothing, so a retry
   with the same request_id is a fresh attempt;
3. the idempotency claim: ONE atomic store step that also makes the order durable
   (state SUBMITTING, or REJECTED when step 1 refused it). Losing the claim means another
   request (here or in another daemon) owns the request_id: wait for its outcome;
4. the venue submit through the breaker (the adapter takes rate-limit tokens). A submit
   that provably never left (throttled, breaker, refused connection, 429) releases the
   claim; a venue rejection is final; an unknown outcome is resolved by client order id,
   never resent;
5. the venue's answer is folded in (OrderWriter: CAS + events) and the reply cached.
   By default the client's reply goes out first and step 5 runs right after it: the
   claim made the order durable (SUBMITTING, with its client order id) before it was
   sent, so a crash or a store failure before step 5 lands loses nothing — the resolver
   (at once, or at the next start) learns the venue's answer again by client order id.
   Lookups, cancels and duplicates of the order wait for its pending step 5, so a client
   never reads an older state than its reply. ``persist_before_reply`` restores the
   strict order (the reply then also means "the answer is stored").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import attrs
import orjson

from oexec.errors import (
    BreakerOpenError,
    ErrorCode,
    NotFoundError,
    OexecError,
    RejectError,
    StoreError,
    ThrottleError,
    VenueAuthError,
    VenueClockSkewError,
    VenueError,
    VenueOrderNotFoundError,
    VenueRateLimitError,
    VenueRejectedError,
    VenueUnavailableError,
    VenueUnknownOutcomeError,
)
from oexec.models import Order, OrderIntent, OrderState, VenueOrder
from oexec.models.serde import order_from_dict, order_to_dict
from oexec.service.apply import PRE_VENUE_STATES, apply_venue_order, with_state
from oexec.service.client_ids import client_order_id_for
from oexec.service.journal import Journal, build_trace
from oexec.service.market import MarketState
from oexec.service.ports import EventReplay, OrderStore, Venue, VenueOrderRequest
from oexec.service.resolver import UnknownOutcomeResolver
from oexec.service.rules.risk import RiskManager, is_reducing
from oexec.service.rules.symbol_book import SymbolRulesBook
from oexec.service.rules.validation import ValidationPipeline
from oexec.service.writer import OrderWriter, encode_reply

log = logging.getLogger("oexec.pipeline")
T = TypeVar("T")

#: Submit failures that prove the order never reached the matching engine.
NOT_SENT_ERRORS = (
    BreakerOpenError,
    ThrottleError,
    VenueUnavailableError,
    VenueRateLimitError,
    VenueAuthError,
    VenueClockSkewError,
)


class Breaker(Protocol):
    """The slice of oexec.breaker.VenueBreaker the pipeline uses."""

    @property
    def state(self) -> str: ...

    async def call(self, fn: Callable[[], Awaitable[T]], *, bypass: bool = False) -> T: ...


class PipelineObserver(Protocol):
    """Where the pipeline reports what it measures (oexec.ops.metrics.Metrics fits)."""

    def stage(self, stage: str, seconds: float) -> None: ...

    def submission_latency(self, symbol: str, seconds: float) -> None: ...

    def cache_hit(self) -> None: ...

    def cache_miss(self) -> None: ...

    def validation_failure(self, rule: str) -> None: ...


class NullObserver:
    def stage(self, stage: str, seconds: float) -> None:
        return None

    def submission_latency(self, symbol: str, seconds: float) -> None:
        return None

    def cache_hit(self) -> None:
        return None

    def cache_miss(self) -> None:
        return None

    def validation_failure(self, rule: str) -> None:
        return None


def new_order_id(now_ms: int) -> str:
    """Time-ordered, unique across daemons: 12 hex digits of ms + 16 random hex digits."""
    return f"{now_ms:012x}{os.urandom(8).hex()}"


@attrs.define
class PipelineSettings:
    idempotency_ttl_s: int = 86_400
    inline_resolve_s: float = 3.0  # how long a submit reply waits for an unknown outcome
    duplicate_wait_s: float = 15.0  # how long a duplicate waits for the first's outcome
    persist_before_reply: bool = False  # see the module docstring, step 5
    venue_name: str = "binance_usdm"


class OrderPipeline:
    def __init__(
        self,
        *,
        store: OrderStore,
        venue: Venue,
        writer: OrderWriter,
        market: MarketState,
        rules_book: SymbolRulesBook,
        validation: ValidationPipeline,
        risk: RiskManager,
        breaker: Breaker,
        resolver: UnknownOutcomeResolver,
        settings: PipelineSettings | None = None,
        is_banned: Callable[[], float] = lambda: 0.0,
        health_check: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        observer: PipelineObserver | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        journal: Journal | None = None,
        event_replay: EventReplay | None = None,
    ) -> None:
        self.store = store
        self.event_replay = event_replay
        self.venue = venue
        self.journal = journal
        self.writer = writer
        self.market = market
        self.rules_book = rules_book
        self.validation = validation
        self.risk = risk
        self.breaker = breaker
        self.resolver = resolver
        self.settings = settings or PipelineSettings()
        self.is_banned = is_banned
        self.health_check = health_check
        self.observer = observer or NullObserver()
        self.stage = self.observer.stage
        self.now_ms = now_ms
        self._inflight: dict[str, asyncio.Future[Order]] = {}
        #: the venue's answers being stored after their reply (step 5), by order id and
        #: by request id: what reads of those orders wait for
        self._persisting: dict[str, asyncio.Task[None]] = {}
        self._persisting_requests: dict[str, asyncio.Task[None]] = {}

    # -- place -----------------------------------------------------------------------------
    async def place_order(self, intent: OrderIntent) -> Order:
        first = self._inflight.get(intent.request_id)
        if first is not None:  # same request_id already in flight in this process
            return await asyncio.shield(first)
        future: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._inflight[intent.request_id] = future
        try:
            order = await self._place(intent)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(order)
            return order
        finally:
            self._inflight.pop(intent.request_id, None)

    async def _place(self, intent: OrderIntent) -> Order:
        now = self.now_ms()
        t0 = time.perf_counter()
        reject: RejectError | None = None
        context = await self.market.context_for(intent, now)
        reducing = is_reducing(intent, context)
        try:
            self.validation.check(intent, self.rules_book.get(intent.symbol), context)
            t1 = time.perf_counter()
            self.stage("validation", t1 - t0)
            await self.risk.check(intent, context)
            self.stage("risk", time.perf_counter() - t1)
        except RejectError as exc:
            reject = exc
            self.observer.validation_failure(exc.code.value)
        else:
            self._admit(reducing)
        order = self._new_order(intent, now, reject)
        t2 = time.perf_counter()
        claim = await self.writer.claim(order, self.settings.idempotency_ttl_s)
        self.stage("idempotency", time.perf_counter() - t2)
        if not claim.claimed:
            self.observer.cache_hit()
            return await self._duplicate(intent, claim.order, claim.reply)
        self.observer.cache_miss()
        if reject is not None:  # writer.claim announced it
            await self._save_reply(order)
            raise reject
        return await self._submit(order, bypass_breaker=reducing)

    def _admit(self, reducing: bool) -> None:
        """Transient refusals before anything is recorded (a retry may succeed)."""
        if self.breaker.state == "open" and not reducing:
            raise BreakerOpenError("venue circuit breaker is open; only reduce-only orders pass")
        banned_for = self.is_banned()
        if banned_for > 0:
            raise ThrottleError(
                f"venue traffic paused for {banned_for:.1f}s after a 429/418",
                code=ErrorCode.VENUE_BANNED,
                retry_after_s=banned_for,
            )

    def _new_order(self, intent: OrderIntent, now: int, reject: OexecError | None) -> Order:
        return Order(
            id=new_order_id(now),
            request_id=intent.request_id,
            client_order_id=client_order_id_for(intent.request_id),
            symbol=intent.symbol,
            side=intent.side,
            type=intent.type,
            quantity=intent.quantity,
            state=OrderState.REJECTED if reject is not None else OrderState.SUBMITTING,
            created_at=now,
            updated_at=now,
            price=intent.price,
            time_in_force=intent.time_in_force,
            stop_price=intent.stop_price,
            reduce_only=intent.reduce_only,
            position_side=intent.position_side,
            working_type=intent.working_type,
            callback_rate=intent.callback_rate,
            activation_price=intent.activation_price,
            good_till_date=intent.good_till_date,
            error_code=reject.code.value if reject is not None else None,
            error_message=reject.message if reject is not None else None,
            version=1,
        )

    async def _submit(self, order: Order, *, bypass_breaker: bool) -> Order:
        request = VenueOrderRequest(
            symbol=order.symbol,
            side=order.side,
            type=order.type,
            client_order_id=order.client_order_id,
            quantity=order.quantity,
            price=order.price,
            time_in_force=order.time_in_force,
            stop_price=order.stop_price,
            reduce_only=order.reduce_only,
            position_side=order.position_side,
            working_type=order.working_type,
            callback_rate=order.callback_rate,
            activation_price=order.activation_price,
            good_till_date=order.good_till_date,
        )
        sent_at = self.now_ms()
        inside: list[float] = []  # when the breaker let the call in and when it returned

        async def send() -> VenueOrder:
            inside.append(time.perf_counter())
            try:
                return await self.venue.place_order(request)
            finally:
                inside.append(time.perf_counter())

        t0 = time.perf_counter()
        try:
            try:
                venue_order = await self.breaker.call(send, bypass=bypass_breaker)
            finally:
                # the breaker's own share: around the venue call, not in it
                inside.append(time.perf_counter())
                venue_s = inside[1] - inside[0] if len(inside) == 3 else 0.0
                self.stage("breaker", max(0.0, inside[-1] - t0 - venue_s))
        except NOT_SENT_ERRORS:
            await self.store.release(order)
            raise
        except VenueRejectedError as exc:
            now, code, message = self.now_ms(), exc.code.value, exc.message

            def reject(current: Order) -> Order | None:
                if current.state not in PRE_VENUE_STATES:
                    return None  # the venue's own view got there first
                return with_state(
                    current, OrderState.REJECTED, now, error_code=code, error_message=message
                )

            async with self._recording(order, sent_at):
                stored, _ = await self.writer.update(order, reject, reason="venue reject")
                await self._save_reply(stored)
            raise
        except (VenueUnknownOutcomeError, Exception) as exc:
            # Anything else may have reached the venue: resolve by client id, never resend.
            if not isinstance(exc, VenueUnknownOutcomeError):
                log.exception("unexpected submit failure for %s; resolving", order.id)
            async with self._recording(order, sent_at):
                return await self._unknown(order, sent_at)
        finally:
            elapsed = time.perf_counter() - t0
            self.stage("venue", elapsed)
            self.observer.submission_latency(order.symbol, elapsed)
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
                    await self._save_reply(stored)
            return stored
        finally:
            self.stage("persist", time.perf_counter() - t1)

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

    async def _persisted(self, order_id: str | None = None, request_id: str | None = None) -> None:
        """Wait until the venue answer of this order (if one is being stored) is stored."""
        task = None
        if order_id is not None:
            task = self._persisting.get(order_id)
        if task is None and request_id is not None:
            task = self._persisting_requests.get(request_id)
        if task is not None:
            await asyncio.wait({task})  # its failure is the resolver's, not the reader's

    async def drain(self) -> None:
        """At stop, after the front end: store the venue answers already replied."""
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

    async def _unknown(self, order: Order, sent_at: int) -> Order:
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
            resolved = await asyncio.wait_for(asyncio.shield(task), self.settings.inline_resolve_s)
        except TimeoutError:
            raise VenueUnknownOutcomeError(
                "submit outcome unknown; resolving by client order id (query the order later)",
                details={"order_id": order.id, "client_order_id": order.client_order_id},
            ) from None
        await self._save_reply(resolved)
        if resolved.state is OrderState.REJECTED:
            raise _error_from_order(resolved)
        return resolved

    async def _save_reply(self, order: Order) -> None:
        await self.store.save_reply(
            order.request_id, encode_reply(order_to_dict(order)), self.settings.idempotency_ttl_s
        )

    async def _duplicate(self, intent: OrderIntent, first: Order, reply: bytes | None) -> Order:
        """Return the first request's outcome; wait for it while it is still in flight."""
        if _differs(intent, first):
            raise OexecError(
                f"request_id {intent.request_id!r} was already used for a different order",
                code=ErrorCode.DUPLICATE_REQUEST_MISMATCH,
                details={"order_id": first.id},
            )
        if reply is None and first.id in self._persisting:  # answered here, being stored
            await self._persisted(first.id)
            reply = await self.store.get_reply(intent.request_id)
        deadline = time.monotonic() + self.settings.duplicate_wait_s
        delay = 0.002
        while reply is None and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
            reply = await self.store.get_reply(intent.request_id)
            if reply is not None:
                break
            current = await self.store.get(first.id)
            if current is None:
                return await self._place(intent)  # the first was released: never sent
            if current.state not in (OrderState.SUBMITTING, OrderState.UNKNOWN):
                # settled without a saved reply: by the resolver after a restart
                if current.state is OrderState.REJECTED:
                    raise _error_from_order(current)
                return current
        if reply is None:
            current = await self.store.get(first.id)
            return current or first
        order = order_from_dict(orjson.loads(reply))
        if order.state is OrderState.REJECTED:
            raise _error_from_order(order)
        return order

    # -- queries and cancels -----------------------------------------------------------------
    async def _lookup(self, order_id: str | None, request_id: str | None) -> Order:
        await self._persisted(order_id or None, request_id or None)
        if order_id:
            order = await self.store.get(order_id)
        elif request_id:
            order = await self.store.get_by_request_id(request_id)
        else:
            raise OexecError("order_id or request_id is required", code=ErrorCode.BAD_REQUEST)
        if order is None:
            raise NotFoundError(
                "no such order", details={"order_id": order_id, "request_id": request_id}
            )
        return order

    async def get_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order:
        return await self._lookup(order_id, request_id)

    async def cancel_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order:
        order = await self._lookup(order_id, request_id)
        if order.is_terminal:
            return order
        symbol, client_id = order.symbol, order.client_order_id
        try:
            venue_order = await self.breaker.call(
                lambda: self.venue.cancel_order(symbol, client_order_id=client_id), bypass=True
            )
        except VenueUnknownOutcomeError:
            return await self._unknown_cancel(order)
        except VenueOrderNotFoundError:
            # Already closed, not visible yet, or an earlier attempt of this very cancel
            # landed and its answer was lost: ask.
            try:
                venue_order = await self.venue.query_order(symbol, client_order_id=client_id)
            except VenueOrderNotFoundError:
                if order.state in (OrderState.SUBMITTING, OrderState.UNKNOWN):
                    raise OexecError(
                        "order not visible at the venue yet; its submit is being resolved",
                        code=ErrorCode.ORDER_NOT_CANCELABLE,
                        details={"order_id": order.id, "state": order.state.value},
                    ) from None
                # The venue showed it (the store has its answer): a -2013 now is the
                # read-after-write lag, not "never existed". Keep asking.
                return await self._unknown_cancel(order)
            except VenueError:
                return await self._unknown_cancel(order)
        except VenueError as exc:
            if exc.details.get("after_unknown_attempt"):
                # a retry failed definitely, but an earlier attempt may have landed
                return await self._unknown_cancel(order)
            raise
        now = self.now_ms()
        stored, _ = await self.writer.update(
            order, lambda o: apply_venue_order(o, venue_order, now), reason="cancel"
        )
        return stored

    async def _unknown_cancel(self, order: Order) -> Order:
        """The cancel may or may not have landed: resolve it by query (with backoff)."""
        task = self.resolver.resolve_cancel_in_background(order)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.settings.inline_resolve_s)
        except TimeoutError:
            raise VenueUnknownOutcomeError(
                "cancel outcome unknown; resolving by query (get the order later)",
                details={"order_id": order.id, "client_order_id": order.client_order_id},
            ) from None

    async def trace(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        """The audit trail of one order (oexec.service.journal.build_trace)."""
        order = await self._lookup(order_id, request_id)
        return await build_trace(self.store, order, self.journal)

    async def cancel_all(self, symbol: str) -> list[Order]:
        await self.drain()
        open_orders = await self.store.open_orders(symbol)  # before: the stream may close them
        await self.breaker.call(lambda: self.venue.cancel_all(symbol), bypass=True)
        results = await asyncio.gather(
            *(self._refresh(order) for order in open_orders), return_exceptions=True
        )
        return [r for r in results if isinstance(r, Order)]

    async def _refresh(self, order: Order) -> Order:
        """Fold the venue's current view of one order into the store."""
        venue_order = await self.venue.query_order(
            order.symbol, client_order_id=order.client_order_id
        )
        now = self.now_ms()
        stored, _ = await self.writer.update(
            order, lambda o: apply_venue_order(o, venue_order, now), reason="refresh"
        )
        return stored

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        await self.drain()
        return await self.store.open_orders(symbol)

    async def order_history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]:
        await self.drain()
        return await self.store.history(symbol, limit=limit, start_ms=start_ms, end_ms=end_ms)

    # -- operations ------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        if self.health_check is None:
            return {"status": "healthy", "checks": {}}
        return await self.health_check()

    async def halt(self, *, cancel_all: bool = False) -> dict[str, Any]:
        self.risk.halt()
        canceled = 0
        if cancel_all:
            symbols = {order.symbol for order in await self.store.open_orders(None)}
            for symbol in sorted(symbols):
                canceled += len(await self.cancel_all(symbol))
        log.warning("trading halted (cancel_all=%s, orders refreshed=%d)", cancel_all, canceled)
        return {"halted": True, "canceled": canceled}

    async def resume(self) -> dict[str, Any]:
        self.risk.resume()
        log.warning("trading resumed")
        return {"halted": False}

    async def replay(
        self, from_seq: int, *, topics: Sequence[str] = (), limit: int = 500
    ) -> dict[str, Any]:
        """Published events from ``from_seq`` on, one page (the event log, issue 17)."""
        if self.event_replay is None:
            raise OexecError("this daemon keeps no event log", code=ErrorCode.REPLAY_UNAVAILABLE)
        return await self.event_replay.replay(from_seq, topics, limit)


def _differs(intent: OrderIntent, first: Order) -> bool:
    return (
        intent.symbol != first.symbol
        or intent.side is not first.side
        or intent.type is not first.type
        or intent.quantity != first.quantity
        or intent.price != first.price
    )


def _error_from_order(order: Order) -> OexecError:
    try:
        code = ErrorCode(order.error_code or ErrorCode.VENUE_REJECTED.value)
    except ValueError:
        code = ErrorCode.VENUE_REJECTED
    return OexecError(
        order.error_message or "order rejected",
        code=code,
        details={"order_id": order.id, "request_id": order.request_id},
    )
