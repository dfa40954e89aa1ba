"""Pure parts of tracking: diffs, the dead-man plan, scrubbing, the journal, rendering,
and the resolver's unknown-cancel path on an in-memory venue."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

from oexec.cli.reconcile import table
from oexec.cli.trace import render, timeline
from oexec.errors import VenueUnavailableError, VenueUnknownOutcomeError
from oexec.models import (
    Order,
    OrderState,
    OrderTerms,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueOrderStatus,
    VenueTrade,
)
from oexec.models.venue import StreamGap
from oexec.service import tracker as tracker_module
from oexec.service.deadman import DeadManSwitch, plan
from oexec.service.journal import Journal, JournalingVenue, scrub
from oexec.service.market import MarketState
from oexec.service.ports import VenueOrderRequest
from oexec.service.reconcile import Difference, adopted_order, diff_order
from oexec.service.resolver import ResolverPolicy, UnknownOutcomeResolver
from oexec.service.tracker import OrderTracker
from oexec.service.writer import OrderWriter

from ..service.fakes import MemoryStore, RecordingSink, ScriptedVenue
from ..store.helpers import make_order


def _request(coid: str = "ox-1") -> VenueOrderRequest:
    return VenueOrderRequest(
        client_order_id=coid,
        terms=OrderTerms(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            quantity=Decimal("0.010"),
            price=Decimal("50000.10"),
            time_in_force=TimeInForce.GTC,
        ),
    )


# --- diff_order -------------------------------------------------------------------------
def _venue(status: VenueOrderStatus, executed: str = "0") -> Any:
    return attrs.evolve(
        ScriptedVenue().accept(_request(), status), executed_quantity=Decimal(executed)
    )


@pytest.mark.parametrize(
    ("state", "filled", "status", "executed", "fills", "fields"),
    [
        (OrderState.NEW, "0", VenueOrderStatus.NEW, "0", "0", []),
        (OrderState.NEW, "0", VenueOrderStatus.FILLED, "0.010", "0",
         ["state", "filled_quantity", "fills"]),
        (OrderState.FILLED, "0.010", VenueOrderStatus.FILLED, "0.010", "0.005", ["fills"]),
        (OrderState.CANCELED, "0", VenueOrderStatus.EXPIRED, "0", "0", ["state"]),
        (OrderState.EXPIRED, "0", VenueOrderStatus.EXPIRED_IN_MATCH, "0", "0", []),
    ],
)  # fmt: skip
def test_diff_order_names_each_disagreement(
    state: OrderState, filled: str, status: VenueOrderStatus, executed: str, fills: str,
    fields: list[str],
) -> None:  # fmt: skip
    order = attrs.evolve(make_order(state=state), filled_quantity=Decimal(filled))
    rows = diff_order(order, _venue(status, executed), Decimal(fills))
    assert [r.field for r in rows] == fields


def test_an_order_the_venue_never_saw_differs_unless_rejected() -> None:
    assert diff_order(make_order(state=OrderState.REJECTED), None, Decimal(0)) == []
    rows = diff_order(make_order(state=OrderState.NEW), None, Decimal(0))
    assert [(r.field, r.store, r.venue) for r in rows] == [("missing_at_venue", "NEW", "-")]


def test_adopted_order_mirrors_the_venue() -> None:
    seen = _venue(VenueOrderStatus.PARTIALLY_FILLED, "0.004")
    order = adopted_order(seen, 1_000)
    assert order.request_id == "adopted:ox-1" and order.client_order_id == "ox-1"
    assert order.state is OrderState.PARTIALLY_FILLED
    assert order.filled_quantity == Decimal("0.004") and order.version == 1


def test_table_has_a_header_and_aligned_rows() -> None:
    rows = [Difference("ox-1", "BTCUSDT", "o1", "state", "NEW", "FILLED")]
    lines = table(rows).splitlines()
    assert lines[0].split() == ["client_order_id", "symbol", "order_id", "field", "store", "venue"]
    assert lines[1].split() == ["ox-1", "BTCUSDT", "o1", "state", "NEW", "FILLED"]


# --- dead-man switch ---------------------------------------------------------------------
def test_plan_rearms_every_open_symbol_and_disarms_the_rest() -> None:
    assert plan({"BTCUSDT", "ETHUSDT"}, {"BTCUSDT", "SOLUSDT"}) == (
        ["BTCUSDT", "SOLUSDT"],
        ["ETHUSDT"],
    )
    assert plan(set(), set()) == ([], [])


async def test_beat_arms_then_disarms() -> None:
    store = MemoryStore()
    calls: list[tuple[str, int]] = []

    async def arm(symbol: str, ms: int) -> None:
        calls.append((symbol, ms))

    switch = DeadManSwitch(store, arm, 60)
    order = make_order(state=OrderState.NEW)
    await store.claim(order, 60)
    await switch.beat()
    assert calls == [("BTCUSDT", 60_000)] and switch.armed == {"BTCUSDT"}
    await store.save(attrs.evolve(order, state=OrderState.CANCELED, version=2))
    await switch.beat()
    assert calls[-1] == ("BTCUSDT", 0) and switch.armed == set()


# --- journal ----------------------------------------------------------------------------
def test_scrub_drops_secrets_anywhere_and_stringifies_decimals() -> None:
    data = {
        "signature": "abc",
        "apiKey": "k",
        "nested": [{"X-MBX-APIKEY": "k", "qty": Decimal("0.1")}],
        "side": Side.BUY,
    }
    assert scrub(data) == {"nested": [{"qty": "0.1"}], "side": "BUY"}


async def test_journal_batches_in_the_background_and_bounds_its_queue() -> None:
    store = MemoryStore()
    journal = Journal(store, max_pending=3, now_ms=lambda: 7)
    for n in range(5):
        journal.record("ox-1", "decision", decision=f"d{n}")
    assert journal.dropped == 2
    await journal.flush()
    entries = [orjson.loads(e) for e in await store.journal("ox-1")]
    assert entries == [{"at": 7, "kind": "decision", "decision": f"d{n}"} for n in range(3)]


async def test_journaling_venue_records_requests_answers_and_errors() -> None:
    store, venue = MemoryStore(), ScriptedVenue(script=[VenueUnknownOutcomeError("timeout")])
    journal = Journal(store)
    journaled = JournalingVenue(venue, journal)
    with pytest.raises(VenueUnknownOutcomeError):
        await journaled.place_order(_request())
    venue.accept(_request())
    await journaled.query_order("BTCUSDT", client_order_id="ox-1")
    await journal.flush()
    entries = [orjson.loads(e) for e in await store.journal("ox-1")]
    assert [(e["kind"], e["op"]) for e in entries] == [
        ("request", "place_order"),
        ("error", "place_order"),
        ("request", "query_order"),
        ("response", "query_order"),
    ]
    assert entries[0]["fields"]["price"] == "50000.10"


def test_timeline_merges_states_journal_and_fills_in_time_order() -> None:
    trace = {
        "order_id": "o1",
        "states": [{"state": "NEW", "version": 2, "at": 20, "reason": "venue accepted"}],
        "journal": [
            {"at": 10, "kind": "request", "op": "place_order", "fields": {}},
            {"at": 30, "kind": "decision", "decision": "recovered"},
        ],
        "fills": [{"trade_id": 5, "quantity": "1", "price": "2", "time": 25}],
    }
    assert [kind for _, kind, _ in timeline(trace)] == ["request", "state", "fill", "decision"]
    assert "place_order" in render(trace)


# --- unknown cancels ---------------------------------------------------------------------
class FlakyQueries(ScriptedVenue):
    """Answers 5xx to the first ``failures`` queries."""

    failures: int = 2

    async def query_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise VenueUnavailableError("503")
        return await super().query_order(symbol, client_order_id=client_order_id)


async def test_unknown_cancel_is_resolved_by_asking_until_the_venue_answers() -> None:
    store, venue = MemoryStore(), FlakyQueries()
    order = make_order(state=OrderState.NEW)
    await store.claim(order, 60)
    venue.accept(attrs.evolve(_request(order.client_order_id)), VenueOrderStatus.CANCELED)
    writer = OrderWriter(store, RecordingSink())
    policy = ResolverPolicy(first_delay_s=0.001, max_delay_s=0.002)
    resolver = UnknownOutcomeResolver(venue, writer, policy)
    resolved = await resolver.resolve_cancel_in_background(order)
    assert resolved.state is OrderState.CANCELED and venue.failures == 0


async def _claimed_and_filled(store: MemoryStore) -> tuple[Order, Order]:
    """A NEW order claimed in ``store``, and its FILLED (0.010, venue id 1000) next version."""
    order = make_order(state=OrderState.NEW)
    await store.claim(order, 60)
    filled = attrs.evolve(
        order, state=OrderState.FILLED, filled_quantity=Decimal("0.010"),
        exchange_order_id="1000", version=2,
    )  # fmt: skip
    return order, filled


def _trade(order_id: str, trade_id: int = 77) -> VenueTrade:
    return VenueTrade(
        symbol="BTCUSDT", trade_id=trade_id, exchange_order_id=order_id, client_order_id=None,
        side=Side.BUY, price=Decimal("50000"), quantity=Decimal("0.010"),
        commission=Decimal("0"), commission_asset="USDT", is_maker=False,
        realized_pnl=Decimal("0"), time=1,
    )  # fmt: skip


# --- fill checks survive a venue outage ----------------------------------------------------
class OutageTrades(ScriptedVenue):
    """userTrades fails while ``down``; then returns one trade for the order."""

    down: bool = True

    async def user_trades(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        start_ms: int | None = None,
        limit: int = 500,
    ) -> Any:
        if self.down:
            raise VenueUnavailableError("venue unreachable")
        return [_trade(order_id or "")]


async def test_a_fill_check_the_venue_cannot_answer_is_kept_and_retried() -> None:
    store, venue, sink = MemoryStore(), OutageTrades(), RecordingSink()
    writer = OrderWriter(store, sink)
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price))
    order, filled = await _claimed_and_filled(store)
    await writer.commit(order, filled, reason="venue accepted")  # REST said FILLED
    assert await tracker.check_fills(due_only=False) == 0  # venue down: nothing yet
    venue.down = False
    assert await tracker.check_fills(due_only=False) == 1
    assert sink.topics().count("fill") == 1 and await tracker.check_fills(due_only=False) == 0


@attrs.define
class SymbolTrades(ScriptedVenue):
    """userTrades answers per order or per symbol (``start_ms``), counting each kind."""

    trades: list[VenueTrade] = attrs.Factory(list)
    per_order: int = 0
    per_symbol: list[int | None] = attrs.Factory(list)

    async def user_trades(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        start_ms: int | None = None,
        limit: int = 500,
    ) -> Any:
        if order_id is not None:
            self.per_order += 1
            return [t for t in self.trades if t.exchange_order_id == order_id]
        self.per_symbol.append(start_ms)
        return self.trades[:limit]


async def test_many_owed_fill_checks_read_the_trades_once_per_symbol() -> None:
    """Five orders owing trades (a REST answer or a query said FILLED, the stream was
    down): one userTrades of the symbol from just before the oldest order, not five."""
    store, sink = MemoryStore(), RecordingSink()
    writer = OrderWriter(store, sink)
    venue = SymbolTrades()
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price))
    created = []
    for n in range(5):
        order = make_order(state=OrderState.NEW, request_id=f"r{n}")
        await store.claim(order, 60)
        filled = attrs.evolve(
            order, state=OrderState.FILLED, filled_quantity=Decimal("0.010"),
            exchange_order_id=str(2000 + n), version=2,
        )  # fmt: skip
        await writer.commit(order, filled, reason="venue accepted")
        venue.trades.append(_trade(str(2000 + n), trade_id=500 + n))
        created.append(order.created_at)
    venue.trades.append(_trade("9999", trade_id=999))  # another order's: not recorded
    assert await tracker.check_fills(due_only=False) == 5
    assert venue.per_order == 0 and len(venue.per_symbol) == 1
    assert venue.per_symbol[0] is not None and venue.per_symbol[0] <= min(created)
    assert sink.topics().count("fill") == 5 and not store.owed


async def test_owed_fills_survive_a_restart_and_are_settled_once_recorded() -> None:
    """REST said FILLED, then the daemon died before fetching the trades: the owed-fills
    mark stored with the change makes the next run fetch them (chaos "fills missed")."""
    store, venue, sink = MemoryStore(), OutageTrades(), RecordingSink()
    venue.down = False
    order, filled = await _claimed_and_filled(store)
    await OrderWriter(store, sink).commit(order, filled, reason="venue accepted")
    assert store.owed == {order.id}  # ... and the process is killed here

    restarted = OrderTracker(store, venue, OrderWriter(store, sink), MarketState(venue.mark_price))
    assert await restarted.check_fills() == 0  # a new process knows nothing in memory
    assert await restarted.load_owed_fills() == 1
    assert await restarted.check_fills() == 1
    assert [f.trade_id for f in await store.fills(order.id)] == [77]
    assert store.owed == set()  # recorded fills add up: settled


async def test_a_fill_check_that_stays_short_is_retried_then_left_for_the_next_start() -> None:
    store, venue, sink = MemoryStore(), OutageTrades(), RecordingSink()
    venue.down = False
    order = make_order(state=OrderState.NEW)
    await store.claim(order, 60)
    overfilled = attrs.evolve(
        order,
        state=OrderState.FILLED,
        filled_quantity=Decimal("0.020"),
        exchange_order_id="1000",
        version=2,
    )  # fmt: skip  (the venue's trade list lags: only 0.010 of it so far)
    writer = OrderWriter(store, sink)
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price))
    await writer.commit(order, overfilled, reason="venue accepted")
    for _ in range(tracker_module.FILL_CHECK_ATTEMPTS):
        await tracker.check_fills(due_only=False)
    assert store.owed == {order.id}  # never settled while short
    assert tracker.fills.due == {}  # given up in memory after the attempts ...
    assert await tracker.load_owed_fills() == 1  # ... and picked up again from the store


async def test_stream_events_keep_order_per_order_and_run_across_orders() -> None:
    """One order's events apply in arrival order; other orders' events do not wait for
    them (a slow store must not back the stream up); a gap waits for all before it."""
    store, venue, sink = MemoryStore(), ScriptedVenue(), RecordingSink()
    tracker = OrderTracker(store, venue, OrderWriter(store, sink), MarketState(venue.mark_price))
    slow, fast = venue.accept(_request("ox-slow")), venue.accept(_request("ox-fast"))
    applied: list[str] = []
    release_slow = asyncio.Event()

    async def handle(event: object) -> None:
        if isinstance(event, OrderUpdate):
            name = f"{event.order.client_order_id}#{event.event_time}"
            if name == "ox-slow#1":
                await release_slow.wait()
            applied.append(name)
        else:
            applied.append("gap")

    tracker.handle = handle  # type: ignore[method-assign]

    def update(order: Any, n: int) -> OrderUpdate:
        return OrderUpdate(order=order, execution_type="NEW", event_time=n, transaction_time=n)

    async def events() -> Any:
        yield update(slow, 1)
        yield update(slow, 2)
        yield update(fast, 3)
        await asyncio.sleep(0.05)
        release_slow.set()
        yield StreamGap("reconnected", 4)

    await asyncio.wait_for(tracker.run(events()), 5)
    assert applied.index("ox-fast#3") < applied.index("ox-slow#1")  # not held up
    assert applied.index("ox-slow#1") < applied.index("ox-slow#2")  # per order: in order
    assert applied[-1] == "gap"  # after everything before it


# --- fills already stored owe nothing -------------------------------------------------------
class CountingStore(MemoryStore):
    """Counts the reads a fill check makes."""

    reads = 0

    async def fills(self, order_id: str) -> Any:
        self.reads += 1
        return await super().fills(order_id)


async def test_a_fill_stored_before_its_order_update_owes_nothing() -> None:
    """The stream's trade is stored, then the order's FILLED: no owed-fills mark, no check."""
    store, venue, sink = CountingStore(), ScriptedVenue(), RecordingSink()
    writer = OrderWriter(store, sink)
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price))
    order = make_order(state=OrderState.NEW)
    await store.claim(order, 60)
    assert await tracker.record_fill(order, _trade("1000"))
    filled = attrs.evolve(
        order, state=OrderState.FILLED, filled_quantity=Decimal("0.010"),
        exchange_order_id="1000", version=2,
    )  # fmt: skip
    await writer.commit(order, filled, reason="user stream")
    assert store.owed == set() and tracker.fills.due == {}


async def test_fills_stored_after_the_save_that_owed_them_are_settled_without_reads() -> None:
    """REST said FILLED first (mark set, check due); the stream's trade came next: the check
    only clears the mark, from what this process stored, without reading the store."""
    store, venue, sink = CountingStore(), ScriptedVenue(), RecordingSink()
    writer = OrderWriter(store, sink)
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price))
    order, filled = await _claimed_and_filled(store)
    await writer.commit(order, filled, reason="venue accepted")
    assert store.owed == {order.id} and order.id in tracker.fills.due
    assert await tracker.record_fill(filled, _trade("1000"))
    assert await tracker.check_fills(due_only=False) == 0
    assert store.owed == set() and tracker.fills.due == {} and store.reads == 0


async def test_a_trade_stored_while_the_owing_save_is_in_flight_still_gets_the_mark_cleared() -> (
    None
):
    """The save decided "owes fills" (no trade stored yet) and stored the mark; the stream's
    trade was recorded while that save was in flight. The check must still be scheduled
    and clear the mark (the CI chaos run: 'trades still owed' until the next start)."""
    store, venue, sink = CountingStore(), ScriptedVenue(), RecordingSink()
    writer = OrderWriter(store, sink)
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price))
    order, filled = await _claimed_and_filled(store)
    saving = asyncio.ensure_future(writer.commit(order, filled, reason="venue accepted"))
    await asyncio.sleep(0)  # the save is in flight, its mark decided
    assert await tracker.record_fill(filled, _trade("1000"))
    await saving
    assert store.owed == {order.id} and order.id in tracker.fills.due
    assert await tracker.check_fills(due_only=False) == 0
    assert store.owed == set() and tracker.fills.due == {}


async def test_a_fill_event_is_published_before_the_fill_is_counted() -> None:
    """The event goes out as soon as the store has the trade: metrics and the fill hook
    come after the send, off the event's path (issue 10); they still run."""
    store, venue, sink = MemoryStore(), ScriptedVenue(), RecordingSink()
    writer = OrderWriter(store, sink)
    seen: list[list[str]] = []

    class Observer(tracker_module.NullTrackingObserver):
        def fill(self, fill: Any) -> None:
            seen.append(sink.topics())

    tracker = OrderTracker(
        store, venue, writer, MarketState(venue.mark_price), observer=Observer(),
        on_fill=lambda fill: seen.append(sink.topics()),
    )  # fmt: skip
    order = make_order(state=OrderState.NEW)
    await store.claim(order, 60)
    assert await tracker.record_fill(order, _trade("1000"))
    assert seen == [["fill"], ["fill"]]
    assert tracker.recorded_quantity(order.id) == Decimal("0.010")
    assert not await tracker.record_fill(order, _trade("1000"))  # stored once, sent once
    assert sink.topics() == ["fill"] and len(seen) == 2


async def test_bounded_fan_out_holds_a_few_tasks_not_one_per_item() -> None:
    """A fill-check backlog of thousands of orders must not become thousands of tasks
    at once (RSS, issue 10): only ``RECOVERY_CONCURRENCY`` run, and each item is done."""
    seen: list[int] = []
    most = 0

    async def work(item: int) -> int:
        nonlocal most
        most = max(most, len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        seen.append(item)
        return item

    items = list(range(200))
    total = await tracker_module._sum_bounded(work, items)
    assert total == sum(items)
    assert sorted(seen) == items
    assert most <= tracker_module.RECOVERY_CONCURRENCY + 1  # + the test's own task
    assert await tracker_module._sum_bounded(work, []) == 0


# --- the watch loop wakes when work is due ---------------------------------------------------
def test_the_watch_loop_wakes_for_the_next_sweep_or_fill_check() -> None:
    """Issue 17: on a fixed 2 s tick a 1.5 s sweep ran every 4 s and a fill check due in
    1 s waited up to 2; the loop now sleeps until the next of them is due."""
    store = MemoryStore()
    venue = ScriptedVenue()
    tracker = OrderTracker(
        store, venue, OrderWriter(store, RecordingSink()), MarketState(venue.mark_price),
        poll_interval_s=2.0, sweep_interval_s=30.0, sweep_weight_per_minute=120.0,
    )  # fmt: skip
    now = tracker_module.time.monotonic()
    tracker._stream_up, tracker._sweep_weight, tracker._last_sweep = True, 3, now - 1.0
    assert tracker.sweep_every_s() == 1.5
    assert 0.3 < tracker.next_wake_s() <= 0.5  # the sweep, 1.5 s after the last
    tracker.fills.due["o1"] = now + 0.2
    assert tracker.next_wake_s() <= 0.2  # the fill check comes first
    tracker.fills.due["o1"] = now + 5.0
    tracker.fills.hurry()  # the venue answers again after a gap
    assert tracker.fills.due["o1"] <= tracker_module.time.monotonic()
    tracker._stream_up = False  # down: poll every poll_interval_s
    tracker.fills.due.clear()
    assert 0.9 < tracker.next_wake_s() <= 1.0


async def test_the_resolver_asks_again_the_moment_a_not_found_proves_never_placed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not found within the venue's grace proves nothing; the next query is sent when the
    grace ends, not a backoff later (up to 2 s more of UNKNOWN, issue 17)."""
    from oexec.service import resolver as resolver_module

    store, venue = MemoryStore(), ScriptedVenue()  # the venue never saw the order
    order = make_order(state=OrderState.UNKNOWN)
    await store.claim(order, 60)
    writer = OrderWriter(store, RecordingSink())
    policy = ResolverPolicy(not_found_grace_ms=300, first_delay_s=1.0, max_delay_s=5.0)
    clock = [1_000_000]
    resolver = UnknownOutcomeResolver(venue, writer, policy, now_ms=lambda: clock[0])
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += int(seconds * 1000)
        await real_sleep(0)

    monkeypatch.setattr(resolver_module.asyncio, "sleep", sleep)
    resolved = await resolver.resolve(order, sent_at_ms=clock[0])
    assert resolved.state is OrderState.REJECTED
    assert venue.queries == 2 and slept[0] == pytest.approx(0.31)
