"""The order pipeline: the OrderService port, composed of its stages.

A new order goes admit → claim → submit → settle, each its own module:

1. ``admit.py``: validation and risk in memory; a refusal is recorded as a REJECTED
   order. Transient refusals (breaker open, venue ban) raise before anything is recorded,
   so a retry with the same request_id is a fresh attempt. So does a request whose own
   deadline (``deadline_ms``) has passed (DEADLINE_EXCEEDED);
2. ``claim.py``: ONE atomic store step claims the request_id and makes the order durable
   (SUBMITTING, or REJECTED). Losing it means another request owns the request_id: wait
   for its outcome;
3. ``submit.py``: the venue call through the breaker, within the request's deadline (the
   adapter takes rate-limit tokens). A submit that provably never left releases the
   claim; a venue rejection is final; an unknown outcome is resolved by client order id,
   never resent;
4. ``settle.py``: the venue's answer folded in (OrderWriter: CAS + events) and the reply
   cached, by default right after the reply (the claim already made the order durable).

Cancels (``cancels.py``) and reads (``queries.py``) wait for the answers still being
stored, so a client never reads an older state than its reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from oexec.errors import (
    BreakerOpenError,
    ErrorCode,
    OexecError,
    ThrottleError,
    VenueOrderNotFoundError,
    VenueRejectedError,
    VenueUnknownOutcomeError,
)
from oexec.models import Order, OrderIntent
from oexec.service.account import AccountOps
from oexec.service.admit import Admission
from oexec.service.amend import Amender
from oexec.service.batch import BatchingVenue, BatchOrders
from oexec.service.cancels import Cancels
from oexec.service.claim import Claims, order_for
from oexec.service.journal import Journal
from oexec.service.market import MarketState
from oexec.service.ports import AmendVenue, ClaimResult, EventReplay, OrderStore, Venue
from oexec.service.queries import Queries
from oexec.service.resolver import UnknownOutcomeResolver
from oexec.service.rules.allowlist import SymbolAllowList
from oexec.service.rules.risk import RiskManager
from oexec.service.rules.symbol_book import SymbolRulesBook
from oexec.service.rules.validation import ValidationPipeline
from oexec.service.settle import Settlement
from oexec.service.stages import (
    NOT_SENT_ERRORS,
    Breaker,
    Deadline,
    NullObserver,
    PipelineObserver,
    PipelineSettings,
    new_order_id,
)
from oexec.service.submit import Submitter
from oexec.service.writer import OrderWriter

__all__ = [
    "NOT_SENT_ERRORS",
    "Breaker",
    "NullObserver",
    "OrderPipeline",
    "PipelineObserver",
    "PipelineSettings",
    "new_order_id",
]

log = logging.getLogger("oexec.pipeline")
#: Refusals answered before the claim (nothing recorded; a retry is a fresh attempt).
TRANSIENT_REFUSALS = (BreakerOpenError, ThrottleError)
T = TypeVar("T")


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
        allow: SymbolAllowList | None = None,
        amend_venue: AmendVenue | None = None,
        batching: BatchingVenue | None = None,
        account: AccountOps | None = None,
    ) -> None:
        self.store = store
        self.event_replay = event_replay
        self.writer = writer
        self.resolver = resolver
        self.risk = risk
        self.settings = settings or PipelineSettings()
        self.health_check = health_check
        self.now_ms = now_ms
        observer = observer or NullObserver()
        self.admission = Admission(
            market=market,
            rules_book=rules_book,
            validation=validation,
            risk=risk,
            breaker=breaker,
            is_banned=is_banned,
            observer=observer,
        )
        self.settlement = Settlement(
            store=store,
            writer=writer,
            resolver=resolver,
            settings=self.settings,
            observer=observer,
            now_ms=now_ms,
        )
        self.claims = Claims(
            store=store,
            writer=writer,
            settlement=self.settlement,
            settings=self.settings,
            observer=observer,
        )
        self.submitter = Submitter(venue=venue, breaker=breaker, observer=observer)
        self.queries = Queries(store=store, settlement=self.settlement, journal=journal)
        self.cancels = Cancels(
            store=store,
            venue=venue,
            writer=writer,
            breaker=breaker,
            resolver=resolver,
            queries=self.queries,
            settlement=self.settlement,
            settings=self.settings,
            now_ms=now_ms,
        )
        self._inflight: dict[str, asyncio.Future[Order]] = {}
        # beyond one order (issue 16): amend, batches, the account view
        self.allow = allow or SymbolAllowList()
        self.amender = (
            None
            if amend_venue is None
            else Amender(
                amend=amend_venue,
                venue=venue,
                writer=writer,
                lookup=self.get_order,
                market=market,
                rules_book=rules_book,
                validation=validation,
                risk=risk,
                breaker=breaker,
                allow=self.allow,
                journal=journal,
                now_ms=now_ms,
            )
        )
        self.batches = (
            None
            if batching is None
            else BatchOrders(
                batching,
                place_one=self.place_order,
                cancel_one=self.cancel_order,
                lookup=self.get_order,
            )
        )
        self.account = account

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
        self.allow.check_symbol(intent.terms.symbol)  # before any I/O: nothing recorded
        now = self.now_ms()
        deadline = Deadline.after_ms(intent.deadline_ms)
        try:
            verdict = await self.admission.judge(intent, now)
            deadline.check("the order was recorded")
        except TRANSIENT_REFUSALS:
            # A retry of a request this daemon (or one before a restart) already sent must
            # get that order, not "refused": the client would think it never went out.
            known = await self.store.get_by_request_id(intent.request_id)
            if known is None:
                raise
            reply = await self.store.get_reply(intent.request_id)
            return await self.claims.first_outcome(
                intent, ClaimResult(claimed=False, order=known, reply=reply), self._place
            )
        order = order_for(intent, now, verdict.reject)
        claim = await self.claims.claim(order)
        if not claim.claimed:
            return await self.claims.first_outcome(intent, claim, self._place)
        if verdict.reject is not None:  # writer.claim announced it
            await self.settlement.save_reply(order)
            raise verdict.reject
        if self.store.uncertain_until_ms > now:
            found = await self._found_at_venue(order)
            if found is not None:
                return await self._reply(claim, found)
        answered = await self._submit(order, bypass_breaker=verdict.reducing, deadline=deadline)
        return await self._reply(claim, answered)

    async def _found_at_venue(self, order: Order) -> Order | None:
        """After a host crash (oexec/store/claim_log.py) the store may have lost claims whose
        orders reached the venue: until that window closes, a request id the store does
        not know is first looked up at the venue by its (deterministic) client order id.
        Found: that order is this request's, folded in, never sent again. Not found: send.
        The venue cannot answer: the claim is given back (nothing was sent) and the error
        goes to the client, whose retry asks again."""
        try:
            found = await self.cancels.refresh(order, reason="found at venue")
        except VenueOrderNotFoundError:
            return None
        except Exception:
            await self.claims.release(order)
            raise
        log.warning("request %s was at the venue already (host restart window)", order.request_id)
        return found

    async def _submit(self, order: Order, *, bypass_breaker: bool, deadline: Deadline) -> Order:
        """Send the claimed order; the order as its reply shows it (settle.py)."""
        sent_at = self.now_ms()
        try:
            venue_order = await self.submitter.send(
                order, bypass_breaker=bypass_breaker, deadline=deadline
            )
        except NOT_SENT_ERRORS:
            await self.claims.release(order)
            raise
        except VenueRejectedError as exc:
            await self.settlement.rejected(order, exc, sent_at)
            raise
        except Exception as exc:
            # Anything else may have reached the venue: resolve by client id, never resend.
            if not isinstance(exc, VenueUnknownOutcomeError):
                log.exception("unexpected submit failure for %s; resolving", order.id)
            return await self.settlement.unknown(order, sent_at)
        return await self.settlement.accepted(order, venue_order, sent_at)

    async def _reply(self, claim: ClaimResult, answered: Order) -> Order:
        """The one point a sent order's reply is built: what the client is answered once
        the claim (``claim``) and the venue's answer (``answered``) are in. An early claim
        was written while the order was at the venue (issue 14); the reply still waits
        for that write, so it means "this claim is durable" at ``store.durability``."""
        if claim.durable is not None:
            await claim.durable
        return answered

    async def drain(self) -> None:
        """At stop, after the front end: store the venue answers already replied."""
        await self.settlement.drain()

    # -- queries and cancels ---------------------------------------------------------------
    async def get_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order:
        return await self.queries.lookup(order_id, request_id)

    async def trace(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        return await self.queries.trace(order_id, request_id)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        return await self.queries.open_orders(symbol)

    async def order_history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]:
        return await self.queries.history(symbol, limit=limit, start_ms=start_ms, end_ms=end_ms)

    async def cancel_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order:
        return await self.cancels.cancel_order(order_id, request_id)

    async def cancel_all(self, symbol: str) -> list[Order]:
        return await self.cancels.cancel_all(symbol)

    async def replay(
        self, from_seq: int, *, topics: Sequence[str] = (), limit: int = 500
    ) -> dict[str, Any]:
        """Published events from ``from_seq`` on, one page (the event log, issue 17)."""
        if self.event_replay is None:
            raise OexecError("this daemon keeps no event log", code=ErrorCode.REPLAY_UNAVAILABLE)
        return await self.event_replay.replay(from_seq, topics, limit)

    # -- beyond one order (issue 16) -------------------------------------------------------
    async def modify_order(
        self,
        *,
        order_id: str | None = None,
        request_id: str | None = None,
        price: Decimal | None = None,
        quantity: Decimal | None = None,
    ) -> Order:
        return await _needs(self.amender, "modify_order").modify_order(
            order_id=order_id, request_id=request_id, price=price, quantity=quantity
        )

    async def place_orders(self, intents: Sequence[OrderIntent]) -> list[Order | OexecError]:
        return await _needs(self.batches, "place_orders").place_orders(intents)

    async def cancel_orders(
        self, *, order_ids: Sequence[str] = (), request_ids: Sequence[str] = ()
    ) -> list[Order | OexecError]:
        batches = _needs(self.batches, "cancel_orders")
        return await batches.cancel_orders(order_ids=order_ids, request_ids=request_ids)

    async def positions(self, symbol: str | None = None) -> dict[str, Any]:
        return await _needs(self.account, "positions").positions(symbol)

    async def balances(self) -> dict[str, Any]:
        return await _needs(self.account, "balances").balances()

    async def set_leverage(self, symbol: str, leverage: int) -> dict[str, Any]:
        return await _needs(self.account, "set_leverage").set_leverage(symbol, leverage)

    async def set_margin_type(self, symbol: str, margin_type: str) -> dict[str, Any]:
        account = _needs(self.account, "set_margin_type")
        return await account.set_margin_type(symbol, margin_type)

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


def _needs(part: T | None, op: str) -> T:
    """The part serving ``op``; a pipeline built without it answers UNKNOWN_OP."""
    if part is None:
        raise OexecError(f"{op} is not served by this daemon", code=ErrorCode.UNKNOWN_OP)
    return part
