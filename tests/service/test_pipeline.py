"""The pipeline's own logic, driven through in-memory ports (see fakes.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import attrs
import pytest

from oexec.breaker import VenueBreaker
from oexec.config import BreakerConfig, RiskConfig
from oexec.errors import (
    ErrorCode,
    OexecError,
    StoreError,
    ThrottleError,
    VenueRejectedError,
    VenueUnavailableError,
    VenueUnknownOutcomeError,
)
from oexec.models import (
    ExchangeInfo,
    Order,
    OrderIntent,
    OrderState,
    OrderTerms,
    OrderType,
    Side,
    TimeInForce,
)
from oexec.service.market import MarketState
from oexec.service.pipeline import OrderPipeline, PipelineSettings
from oexec.service.resolver import ResolverPolicy, UnknownOutcomeResolver
from oexec.service.rules.risk import RiskManager
from oexec.service.rules.symbol_book import SymbolRulesBook
from oexec.service.rules.validation import ValidationPipeline
from oexec.service.writer import OrderWriter

from .fakes import BTC, MemoryStore, RecordingSink, ScriptedVenue


def build(
    store: MemoryStore | None = None,
    venue: ScriptedVenue | None = None,
    breaker: VenueBreaker | None = None,
    *,
    persist_before_reply: bool = False,
) -> tuple[OrderPipeline, MemoryStore, ScriptedVenue, RecordingSink]:
    store = store or MemoryStore()
    venue = venue or ScriptedVenue()
    sink = RecordingSink()
    market = MarketState(venue.mark_price)
    writer = OrderWriter(store, sink, listeners=[market.on_order_change])
    book = SymbolRulesBook()
    book.load(ExchangeInfo(server_time=0, symbols={"BTCUSDT": BTC}))
    resolver = UnknownOutcomeResolver(
        venue,
        writer,
        ResolverPolicy(not_found_grace_ms=200, first_delay_s=0.01, max_delay_s=0.05),
    )
    pipeline = OrderPipeline(
        store=store,
        venue=venue,
        writer=writer,
        market=market,
        rules_book=book,
        validation=ValidationPipeline(),
        risk=RiskManager(RiskConfig()),
        breaker=breaker or VenueBreaker(BreakerConfig()),
        resolver=resolver,
        settings=PipelineSettings(
            inline_resolve_s=3.0,
            duplicate_wait_s=3.0,
            persist_before_reply=persist_before_reply,
        ),
    )
    return pipeline, store, venue, sink


def limit(
    request_id: str = "r1", price: str = "50000.0", qty: str = "0.010", reduce_only: bool = False
) -> OrderIntent:
    return OrderIntent(
        request_id=request_id,
        terms=OrderTerms(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            quantity=Decimal(qty),
            price=Decimal(price),
            time_in_force=TimeInForce.GTC,
            reduce_only=reduce_only,
        ),
    )


@pytest.mark.parametrize("persist_before_reply", [False, True])
async def test_accepted_order_is_stored_announced_and_cached(persist_before_reply: bool) -> None:
    pipeline, store, venue, sink = build(persist_before_reply=persist_before_reply)
    order = await pipeline.place_order(limit())
    assert order.state is OrderState.NEW and order.exchange_order_id == "1000"
    assert venue.placed[0].client_order_id == order.client_order_id
    if persist_before_reply:
        assert (await store.get(order.id)) == order and "r1" in store.replies
    await pipeline.drain()
    assert (await store.get(order.id)) == order  # the reply is what got stored
    assert sink.topics() == ["order.created"]
    assert "r1" in store.replies


async def test_the_reply_goes_out_before_the_answer_is_stored_and_reads_wait_for_it() -> None:
    """Default: the claim (SUBMITTING) is durable before the submit; the venue's answer
    is stored after the reply, and a read, a cancel or a retry through the daemon never
    sees the older state."""

    class SlowSaves(MemoryStore):
        gate = asyncio.Event()

        async def save(self, order: Order, **kwargs: Any) -> None:
            await self.gate.wait()
            await super().save(order, **kwargs)

    store = SlowSaves()
    pipeline, _, venue, _ = build(store=store)
    order = await asyncio.wait_for(pipeline.place_order(limit()), 2)
    assert order.state is OrderState.NEW
    stored = await store.get(order.id)
    assert stored is not None and stored.state is OrderState.SUBMITTING  # not yet
    read = asyncio.create_task(pipeline.get_order(order_id=order.id))
    by_request = asyncio.create_task(pipeline.get_order(request_id="r1"))
    retry = asyncio.create_task(pipeline.place_order(limit()))
    await asyncio.sleep(0.02)
    assert not (read.done() or by_request.done() or retry.done())
    store.gate.set()
    assert (await read).state is OrderState.NEW
    assert (await by_request).state is OrderState.NEW
    assert (await retry).id == order.id
    assert len(venue.placed) == 1


async def test_validation_reject_is_recorded_and_never_reaches_the_venue() -> None:
    pipeline, store, venue, sink = build()
    with pytest.raises(OexecError) as first:
        await pipeline.place_order(limit(price="50000.05"))
    assert first.value.code is ErrorCode.PRICE_TICK
    stored = await store.get_by_request_id("r1")
    assert stored is not None and stored.state is OrderState.REJECTED
    assert stored.error_code == "PRICE_TICK"
    assert sink.topics() == ["order.rejected"]
    with pytest.raises(OexecError) as again:
        await pipeline.place_order(limit(price="50000.05"))
    assert again.value.code is ErrorCode.PRICE_TICK
    assert venue.placed == []


async def test_concurrent_duplicates_make_one_venue_order() -> None:
    venue = ScriptedVenue(gate=asyncio.Event())
    pipeline, _, _, _ = build(venue=venue)
    tasks = [asyncio.create_task(pipeline.place_order(limit())) for _ in range(10)]
    await asyncio.sleep(0.01)
    venue.gate.set()  # type: ignore[union-attr]
    orders = await asyncio.gather(*tasks)
    assert len(venue.placed) == 1
    assert {o.id for o in orders} == {orders[0].id}


async def test_duplicates_across_daemons_sharing_a_store_make_one_order() -> None:
    store = MemoryStore()
    venue = ScriptedVenue(gate=asyncio.Event())
    first, _, _, _ = build(store, venue)
    second, _, _, _ = build(store, venue)
    a = asyncio.create_task(first.place_order(limit()))
    await asyncio.sleep(0.01)
    b = asyncio.create_task(second.place_order(limit()))
    await asyncio.sleep(0.02)
    venue.gate.set()  # type: ignore[union-attr]
    one, two = await asyncio.gather(a, b)
    assert one.id == two.id and len(venue.placed) == 1


async def test_reused_request_id_for_another_order_is_refused() -> None:
    pipeline, _, venue, _ = build()
    await pipeline.place_order(limit())
    with pytest.raises(OexecError) as info:
        await pipeline.place_order(limit(qty="0.020"))
    assert info.value.code is ErrorCode.DUPLICATE_REQUEST_MISMATCH
    assert len(venue.placed) == 1


async def test_definitely_not_sent_releases_the_claim_so_a_retry_is_fresh() -> None:
    venue = ScriptedVenue(script=[VenueUnavailableError("connection refused")])
    pipeline, store, _, _ = build(venue=venue)
    with pytest.raises(VenueUnavailableError):
        await pipeline.place_order(limit())
    assert store.orders == {} and store.by_request == {}
    order = await pipeline.place_order(limit())
    assert order.state is OrderState.NEW and len(venue.accepted) == 1


async def test_venue_reject_is_final_for_the_request_id() -> None:
    venue = ScriptedVenue(script=[VenueRejectedError("Margin is insufficient.", venue_code=-2019)])
    pipeline, store, _, sink = build(venue=venue)
    with pytest.raises(VenueRejectedError):
        await pipeline.place_order(limit())
    stored = await store.get_by_request_id("r1")
    assert stored is not None and stored.state is OrderState.REJECTED
    assert sink.topics() == ["order.rejected"]
    with pytest.raises(OexecError) as again:
        await pipeline.place_order(limit())
    assert again.value.code is ErrorCode.VENUE_REJECTED
    assert len(venue.placed) == 1


async def test_unknown_outcome_that_was_placed_resolves_without_resending() -> None:
    def accept_then_time_out(v: ScriptedVenue, request: object) -> object:
        v.accept(request)  # type: ignore[arg-type]
        raise VenueUnknownOutcomeError("-1007 timeout", venue_code=-1007)

    venue = ScriptedVenue(script=[accept_then_time_out], hidden_queries=2)
    pipeline, _, _, sink = build(venue=venue)
    order = await pipeline.place_order(limit())
    assert order.state is OrderState.NEW
    assert len(venue.placed) == 1 and venue.queries >= 3
    assert sink.topics() == ["order.updated", "order.created"]


async def test_an_unknown_outcome_is_never_answered_as_a_refusal() -> None:
    """A chaos run's phantom: the submit's outcome was unknown, the inline resolution's
    query found no rate budget, and the client was answered RATE_LIMITED - "refused,
    never sent" - for an order that was at the venue. The resolver waits for budget;
    whatever stops the inline resolution, the answer is the order or "unknown"."""

    def accept_then_reset(v: ScriptedVenue, request: object) -> object:
        v.accept(request)  # type: ignore[arg-type]
        raise VenueUnknownOutcomeError("ServerDisconnectedError")

    throttled = ThrottleError("rate limit (shared) has no room before the deadline")
    venue = ScriptedVenue(script=[accept_then_reset], query_errors=[throttled, throttled])
    pipeline, store, _, _ = build(venue=venue)
    order = await pipeline.place_order(limit())
    assert order.state is OrderState.NEW
    assert len(venue.placed) == 1 and venue.queries == 3

    broken = ScriptedVenue(script=[accept_then_reset], query_errors=[RuntimeError("bug")])
    pipeline, store, _, _ = build(venue=broken)
    with pytest.raises(OexecError) as info:
        await pipeline.place_order(limit(request_id="r2"))
    assert info.value.code is ErrorCode.VENUE_UNKNOWN_OUTCOME
    stored = await store.get_by_request_id("r2")
    assert stored is not None and stored.state is OrderState.UNKNOWN
    assert len(broken.placed) == 1


async def test_unknown_outcome_never_placed_is_rejected_only_after_the_window() -> None:
    venue = ScriptedVenue(script=[VenueUnknownOutcomeError("503 unknown", http_status=503)])
    pipeline, store, _, _ = build(venue=venue)
    with pytest.raises(OexecError) as info:
        await pipeline.place_order(limit())
    assert info.value.code is ErrorCode.VENUE_UNKNOWN_OUTCOME
    stored = await store.get_by_request_id("r1")
    assert stored is not None and stored.state is OrderState.REJECTED
    assert len(venue.placed) == 1 and venue.queries >= 2


async def test_open_breaker_refuses_new_risk_at_once_but_lets_reduce_only_through() -> None:
    breaker = VenueBreaker(BreakerConfig(failure_threshold=2))
    venue = ScriptedVenue(script=[VenueUnavailableError("down"), VenueUnavailableError("down")])
    pipeline, store, _, _ = build(venue=venue, breaker=breaker)
    for n in range(2):
        with pytest.raises(VenueUnavailableError):
            await pipeline.place_order(limit(request_id=f"f{n}"))
    assert breaker.state == "open"
    with pytest.raises(OexecError) as info:
        await pipeline.place_order(limit(request_id="new-risk"))
    assert info.value.code is ErrorCode.BREAKER_OPEN
    assert await store.get_by_request_id("new-risk") is None
    flat = await pipeline.place_order(limit(request_id="flatten", reduce_only=True))
    assert flat.state is OrderState.NEW


async def test_a_retry_of_a_sent_request_gets_its_order_even_with_the_breaker_open() -> None:
    """A chaos run's phantom: a request sent before a restart, retried while the breaker
    was open, was answered BREAKER_OPEN - the client took it as never sent."""
    breaker = VenueBreaker(BreakerConfig(failure_threshold=2))
    venue = ScriptedVenue(script=[VenueUnavailableError("down"), VenueUnavailableError("down")])
    store = MemoryStore()
    first, _, _, _ = build(store=store, breaker=VenueBreaker(BreakerConfig()))
    sent = await first.place_order(limit(request_id="sent-before"))
    await first.drain()
    pipeline, _, _, _ = build(store=store, venue=venue, breaker=breaker)  # the restart
    for n in range(2):
        with pytest.raises(VenueUnavailableError):
            await pipeline.place_order(limit(request_id=f"f{n}"))
    assert breaker.state == "open"
    retried = await pipeline.place_order(limit(request_id="sent-before"))
    assert retried.id == sent.id and retried.exchange_order_id == sent.exchange_order_id
    with pytest.raises(OexecError) as info:  # an unknown request is still refused
        await pipeline.place_order(limit(request_id="never-sent"))
    assert info.value.code is ErrorCode.BREAKER_OPEN


async def test_cancel_and_cancel_all() -> None:
    pipeline, _, _, sink = build()
    first = await pipeline.place_order(limit("a"))
    second = await pipeline.place_order(limit("b"))
    canceled = await pipeline.cancel_order(order_id=first.id)
    assert canceled.state is OrderState.CANCELED
    assert (await pipeline.cancel_order(request_id="a")).state is OrderState.CANCELED
    rest = await pipeline.cancel_all("BTCUSDT")
    assert [o.id for o in rest] == [second.id] and rest[0].state is OrderState.CANCELED
    assert sink.topics().count("order.canceled") == 2
    assert await pipeline.open_orders() == []


async def test_cancel_all_answers_the_orders_it_closed_even_when_the_stream_was_first() -> None:
    """The user stream can store the cancels before the venue's cancel-all call returns."""

    class StreamFirst(ScriptedVenue):
        async def cancel_all(self, symbol: str) -> None:
            await super().cancel_all(symbol)
            for order in await store.open_orders(symbol):  # what the tracker does meanwhile
                await pipeline.cancels.refresh(order)

    pipeline, store, _, _ = build(venue=StreamFirst())
    first = await pipeline.place_order(limit("a"))
    second = await pipeline.place_order(limit("b"))
    closed = await pipeline.cancel_all("BTCUSDT")
    assert {o.id for o in closed} == {first.id, second.id}
    assert all(o.state is OrderState.CANCELED for o in closed)


async def test_lookups_and_kill_switch() -> None:
    pipeline, _, _, _ = build()
    order = await pipeline.place_order(limit())
    assert (await pipeline.get_order(request_id="r1")).id == order.id
    with pytest.raises(OexecError) as info:
        await pipeline.get_order(order_id="nope")
    assert info.value.code is ErrorCode.NOT_FOUND
    assert (await pipeline.halt(cancel_all=True))["halted"] is True
    assert (await pipeline.get_order(order_id=order.id)).state is OrderState.CANCELED
    with pytest.raises(OexecError) as halted:
        await pipeline.place_order(limit("after-halt"))
    assert halted.value.code is ErrorCode.RISK_HALTED
    await pipeline.resume()
    assert (await pipeline.place_order(limit("after-resume"))).state is OrderState.NEW
    history = await pipeline.order_history("BTCUSDT", limit=10)
    assert {o.request_id for o in history} >= {"r1", "after-halt", "after-resume"}


@pytest.mark.parametrize("persist_before_reply", [False, True])
async def test_an_answer_the_store_cannot_take_is_learned_again_by_the_resolver(
    persist_before_reply: bool,
) -> None:
    """Redis restarts while the venue accepts: the client gets the venue's answer (or,
    when the reply waits for the store, STORE_UNAVAILABLE), and the resolver stores it
    once the store is back (no order stays SUBMITTING until the next start)."""

    class FlakyStore(MemoryStore):
        saves_failing = 1

        async def save(self, order: Order, **kwargs: Any) -> None:
            if self.saves_failing:
                self.saves_failing -= 1
                raise StoreError("redis save failed: ConnectionError")
            await super().save(order, **kwargs)

    pipeline, store, venue, _ = build(store=FlakyStore(), persist_before_reply=persist_before_reply)
    if persist_before_reply:
        with pytest.raises(StoreError):
            await pipeline.place_order(limit())
    else:
        assert (await pipeline.place_order(limit())).state is OrderState.NEW
        await pipeline.drain()  # the store step after the reply failed and handed over
    claimed = await store.get_by_request_id("r1")
    assert claimed is not None
    assert pipeline.resolver.resolving(claimed.id)
    await asyncio.wait_for(pipeline.resolver.stop(timeout_s=5), 6)
    stored = await store.get(claimed.id)
    assert stored is not None and stored.state is OrderState.NEW
    assert len(venue.placed) == 1  # learned by query, never resent


# --- deadline_ms: honoured up to the send, never after ---------------------------------------
async def test_a_spent_deadline_records_and_sends_nothing() -> None:
    pipeline, store, venue, sink = build()
    with pytest.raises(ThrottleError) as info:
        await pipeline.place_order(attrs.evolve(limit(), deadline_ms=0))
    assert info.value.code is ErrorCode.DEADLINE_EXCEEDED
    assert store.orders == {} and venue.placed == [] and sink.topics() == []
    assert (await pipeline.place_order(limit())).state is OrderState.NEW  # a fresh attempt


async def test_the_venue_call_waits_at_most_what_the_deadline_leaves() -> None:
    pipeline, _, venue, _ = build()
    await pipeline.place_order(attrs.evolve(limit("a"), deadline_ms=5_000))
    await pipeline.place_order(limit("b"))
    with_deadline, without = venue.deadlines
    assert with_deadline is not None and 4.0 < with_deadline <= 5.0
    assert without is None  # the venue's default token wait


@pytest.mark.parametrize("deadline_ms", [None, 300])
async def test_no_token_before_the_deadline_is_deadline_exceeded_and_unsent(
    deadline_ms: int | None,
) -> None:
    """The gate refuses (RATE_LIMITED) when no token comes in time; when the request set
    its own deadline, that deadline decided: DEADLINE_EXCEEDED. Either way the claim is
    released (never sent), so a retry is a fresh attempt."""
    refused = ThrottleError("no room", retry_after_s=0.4)
    pipeline, store, venue, _ = build(venue=ScriptedVenue(script=[refused]))
    with pytest.raises(ThrottleError) as info:
        await pipeline.place_order(attrs.evolve(limit(), deadline_ms=deadline_ms))
    expected = ErrorCode.RATE_LIMITED if deadline_ms is None else ErrorCode.DEADLINE_EXCEEDED
    assert info.value.code is expected and info.value.retry_after_s == 0.4
    assert store.orders == {}  # released
    assert (await pipeline.place_order(limit())).state is OrderState.NEW
    assert len(venue.placed) == 2
