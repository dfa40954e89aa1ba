"""The service's contract with a venue, run against every venue package (issue 15).

The same core — pipeline, writer, resolver, tracker fed by the venue's user stream — is
built from what ``oexec.venue.open_venue`` hands over (the ``VenueKit``: ports, policy,
capabilities) exactly as the daemon builds it, once for the in-memory venue and once
for Binance USDⓈ-M against the bundled simulator. Nothing in ``oexec/service`` knows
which; only the ``Driver`` below (what the test does *at* the venue: fill an order, lose
a submit's answer) differs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest

from oexec.breaker import VenueBreaker
from oexec.config import BreakerConfig, RiskConfig, VenueConfig
from oexec.errors import VenueUnknownOutcomeError
from oexec.models import (
    OrderIntent,
    OrderState,
    OrderTerms,
    OrderType,
    Side,
    SymbolRules,
    TimeInForce,
    VenueOrderStatus,
)
from oexec.service.client_ids import check_venue_takes
from oexec.service.market import MarketState
from oexec.service.pipeline import OrderPipeline, PipelineSettings
from oexec.service.ports import VenueKit
from oexec.service.resolver import ResolverPolicy, UnknownOutcomeResolver
from oexec.service.rules.risk import RiskManager
from oexec.service.rules.symbol_book import SymbolRulesBook
from oexec.service.rules.validation import ValidationPipeline
from oexec.service.tracker import OrderTracker
from oexec.service.writer import OrderWriter
from oexec.tasks import cancel_and_wait
from oexec.venue import open_venue

from .fakes import MemoryStore, RecordingSink

SYMBOL = "BTCUSDT"
WAIT_S = 10.0


@attrs.define
class Driver:
    """What a test does at the venue itself, per venue package."""

    fill: Callable[[str, Decimal], None]  # (client order id, its limit price)
    lose_next_answer: Callable[[], None]  # the next submit lands, its answer is lost


@attrs.define
class Core:
    """The core as the daemon wires it from a VenueKit (oexec/app.py)."""

    kit: VenueKit
    driver: Driver
    store: MemoryStore
    sink: RecordingSink
    pipeline: OrderPipeline
    tracker: OrderTracker
    rules: SymbolRules
    mark: Decimal


async def _memory() -> AsyncIterator[tuple[VenueKit, Driver]]:
    kit = await open_venue(VenueConfig(name="memory"))
    venue: Any = kit.venue  # the memory venue's own controls
    driver = Driver(
        fill=lambda coid, _price: venue.fill(coid, venue.orders[coid].quantity),
        lose_next_answer=lambda: venue.fail_next_submit(VenueUnknownOutcomeError("timeout")),
    )
    try:
        yield kit, driver
    finally:
        await kit.venue.close()


async def _binance() -> AsyncIterator[tuple[VenueKit, Driver]]:
    sim_app = pytest.importorskip("oexec.sim.app")
    from oexec.sim.config import FaultConfig

    async with sim_app.SimServer() as sim:
        config = VenueConfig(
            name="binance_usdm",
            base_url=sim.base_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            time_sync_interval_s=0,
        )
        kit = await open_venue(config)

        def fill(_coid: str, price: Decimal) -> None:
            sim.exchange.set_price(SYMBOL, price - Decimal(10))  # the book trades through

        def lose_next_answer() -> None:
            timeout = FaultConfig(
                "timeout_after_accept", count=1, path="/fapi/v1/order", params={"reply": "503"}
            )
            sim.state.faults.add(timeout)

        try:
            yield kit, Driver(fill=fill, lose_next_answer=lose_next_answer)
        finally:
            await kit.venue.close()


VENUES: dict[str, Callable[[], AsyncIterator[tuple[VenueKit, Driver]]]] = {
    "memory": _memory,
    "binance_usdm": _binance,
}


@pytest.fixture(params=sorted(VENUES))
async def core(request: pytest.FixtureRequest) -> AsyncIterator[Core]:
    async with contextlib.aclosing(VENUES[request.param]()) as opened:
        kit, driver = await anext(opened)
        check_venue_takes(kit.policy)
        venue = kit.venue
        store, sink = MemoryStore(), RecordingSink()
        market = MarketState(venue.mark_price)
        writer = OrderWriter(store, sink)
        writer.subscribe(market.on_order_change)
        book = SymbolRulesBook()
        book.load(await venue.exchange_info())
        resolver = UnknownOutcomeResolver(
            venue,
            writer,
            ResolverPolicy(
                not_found_grace_ms=kit.policy.not_found_grace_ms,
                first_delay_s=0.02,
                max_delay_s=0.1,
            ),
        )
        pipeline = OrderPipeline(
            store=store,
            venue=venue,
            writer=writer,
            market=market,
            rules_book=book,
            validation=ValidationPipeline(),
            risk=RiskManager(RiskConfig()),
            breaker=VenueBreaker(BreakerConfig()),
            resolver=resolver,
            settings=PipelineSettings(inline_resolve_s=5.0, duplicate_wait_s=5.0),
        )
        tracker = OrderTracker(
            store,
            venue,
            writer,
            market,
            all_symbols_cost=kit.policy.all_symbols_open_orders_cost,
        )
        assert kit.user_stream is not None, "both venues push order updates"
        stream = kit.user_stream(tracker.on_stream_state)
        following = asyncio.get_running_loop().create_task(tracker.run(stream.events()))
        try:
            await _until(lambda: _true(tracker.stream_up), "the user stream is up")
            rules = book.get(SYMBOL)
            assert rules is not None
            mark = await venue.mark_price(SYMBOL)
            yield Core(kit, driver, store, sink, pipeline, tracker, rules, mark)
        finally:
            await pipeline.drain()
            await cancel_and_wait([following])
            await stream.close()
            await resolver.stop(timeout_s=2)


def _limit(core: Core, request_id: str, below: str = "0.97") -> OrderIntent:
    rules = core.rules
    price = (core.mark * Decimal(below)).quantize(rules.tick_size)
    quantity = max(rules.min_qty, (rules.min_notional * 2 / price).quantize(rules.step_size))
    terms = OrderTerms(
        symbol=SYMBOL,
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=quantity,
        price=price,
        time_in_force=TimeInForce.GTC,
    )
    return OrderIntent(request_id=request_id, terms=terms)


async def _true(value: bool) -> bool:
    return value


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(int(WAIT_S / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {WAIT_S}s: {what}")


async def _state_is(core: Core, order_id: str, state: OrderState) -> bool:
    order = await core.store.get(order_id)
    return order is not None and order.state is state


# --- the contract ---------------------------------------------------------------------------
async def test_a_placed_order_rests_at_the_venue_and_is_announced(core: Core) -> None:
    order = await core.pipeline.place_order(_limit(core, "c-1"))
    assert order.state is OrderState.NEW and order.exchange_order_id
    seen = await core.kit.venue.query_order(SYMBOL, client_order_id=order.client_order_id)
    assert seen.status is VenueOrderStatus.NEW and seen.quantity == order.quantity
    await core.pipeline.drain()
    assert "order.created" in core.sink.topics()
    again = await core.pipeline.place_order(_limit(core, "c-1"))  # a retry
    assert again.id == order.id
    assert [o.client_order_id for o in await core.kit.venue.open_orders(SYMBOL)] == [
        order.client_order_id
    ]


async def test_cancel_and_cancel_all_close_the_orders_there_and_here(core: Core) -> None:
    first = await core.pipeline.place_order(_limit(core, "c-a"))
    second = await core.pipeline.place_order(_limit(core, "c-b", below="0.96"))
    canceled = await core.pipeline.cancel_order(order_id=first.id)
    assert canceled.state is OrderState.CANCELED
    rest = await core.pipeline.cancel_all(SYMBOL)
    assert [o.id for o in rest] == [second.id] and rest[0].state is OrderState.CANCELED
    assert await core.kit.venue.open_orders(SYMBOL) == []
    await _until(lambda: _true(core.sink.topics().count("order.canceled") == 2), "2 cancels")


async def test_a_fill_at_the_venue_reaches_the_store_once_through_the_stream(core: Core) -> None:
    order = await core.pipeline.place_order(_limit(core, "c-fill"))
    assert order.price is not None
    core.driver.fill(order.client_order_id, order.price)
    await _until(lambda: _state_is(core, order.id, OrderState.FILLED), "FILLED via the stream")
    fills = await core.store.fills(order.id)
    assert sum(f.quantity for f in fills) == order.quantity
    assert "fill" in core.sink.topics() and core.sink.topics().count("order.filled") == 1


async def test_recovery_finds_what_the_stream_did_not_say(core: Core) -> None:
    """The tracker's gap recovery (open-orders per symbol or all at once, by the venue's
    policy) folds in a change made while nobody listened."""
    order = await core.pipeline.place_order(_limit(core, "c-gap"))
    await core.pipeline.drain()
    await core.kit.venue.cancel_order(SYMBOL, client_order_id=order.client_order_id)
    assert await core.tracker.recover("gap") in (0, 1)  # 0: the stream was first
    await _until(lambda: _state_is(core, order.id, OrderState.CANCELED), "CANCELED")


async def test_a_lost_answer_is_resolved_by_client_order_id_never_resent(core: Core) -> None:
    core.driver.lose_next_answer()
    order = await core.pipeline.place_order(_limit(core, "c-lost"))
    assert order.state is OrderState.NEW  # learned by query within the inline wait
    at_venue = [o.client_order_id for o in await core.kit.venue.open_orders(SYMBOL)]
    assert at_venue == [order.client_order_id]  # one order: never sent twice
