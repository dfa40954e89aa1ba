"""Follow every order to its end: user-data stream events, fills, and gap recovery.

The stream is the fast path; it is not trusted across gaps, nor even while it is up
(the venue may drop an event without closing the socket). So:

- after any (re)connect the tracker recovers before reading further events: every order
  the store thinks is open is compared with the venue and, where they differ, queried
  and its trades fetched, so nothing that happened during the gap is missed;
- while the stream is down, the same recovery runs every ``poll_interval_s``;
- while it is up, a cheap sweep (one ``openOrders`` request) runs every
  ``sweep_interval_s`` and queries only the orders that disagree;
- any order whose filled quantity runs ahead of its recorded fills (a REST reply or a
  query said FILLED, the stream's trade events were lost) gets its trades fetched.

Fills are applied once (the store dedupes by symbol + trade id) and each new one is
published (stored with its event, oexec/service/outbox.py); ``order.filled`` is
announced once by the writer. An order whose filled quantity grew is marked in the store
as owing trades, in the same step as the change (``save(owes_fills=True)``); the mark is
cleared only once its recorded fills add up, and ``load_owed_fills`` picks the marks up
after a restart, so a crash between a REST reply saying FILLED and the trade fetch
cannot lose the fills (oexec/service/fills.py). Duplicate and out-of-order events are
harmless: ``apply_venue_order`` is monotone.

Size: ~630 lines, over the ~400 guideline on purpose: stream events, gap recovery,
sweeps and the stream runner share one piece of state (what recovery or reconciliation
is owed, and since when the stream is down); split, each part would reach into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import attrs

from oexec.errors import OexecError, VenueOrderNotFoundError
from oexec.models import Fill, Order, OrderUpdate, VenueOrder, VenueTrade
from oexec.models.venue import AccountConfigUpdate, AccountUpdate, MarginCall, StreamGap
from oexec.service import bulk_reads
from oexec.service.apply import PRE_VENUE_STATES, apply_venue_order
from oexec.service.fills import (  # re-exported: the tracker's tests read them here
    FILL_CHECK_ATTEMPTS,
    RECOVERY_CONCURRENCY,
    FillKeeper,
    _sum_bounded,
)
from oexec.service.journal import Journal
from oexec.service.market import MarketState
from oexec.service.ports import OrderStore, Venue
from oexec.service.writer import OrderWriter
from oexec.tasks import cancel_and_wait

log = logging.getLogger("oexec.tracker")
#: Sweeps run at least this far apart, however cheap (issue 17).
MIN_SWEEP_S = 1.0
#: The watch loop never spins faster than this, whatever is due.
MIN_WAKE_S = 0.05
T = TypeVar("T")

__all__ = [
    "FILL_CHECK_ATTEMPTS",
    "RECOVERY_CONCURRENCY",
    "NullTrackingObserver",
    "OrderTracker",
    "TrackingObserver",
    "_sum_bounded",
]
FIRST_CONNECT = "connected"
ZERO = Decimal(0)
STREAM_CONCURRENCY = 32  # orders whose stream events are applied at the same time
#: Events folded on versions still being stored, at most (beyond: the long way)
MAX_RIDING = 10_000


class TrackingObserver(Protocol):
    """Where the tracker reports (oexec.ops.metrics.Metrics fits)."""

    def fill(self, fill: Fill) -> None: ...

    def set_user_stream_lag(self, seconds: float) -> None: ...

    def user_stream_reconnected(self) -> None: ...

    def recovery(self, trigger: str, corrections: int) -> None: ...


class NullTrackingObserver:
    def fill(self, fill: Fill) -> None:
        return None

    def set_user_stream_lag(self, seconds: float) -> None:
        return None

    def user_stream_reconnected(self) -> None:
        return None

    def recovery(self, trigger: str, corrections: int) -> None:
        return None


def _forget_chain(
    chains: dict[str, asyncio.Task[None]], behind: dict[str, deque[OrderUpdate]], coid: str
) -> Callable[[asyncio.Task[None]], None]:
    """A task that ended early (cancelled at stop) leaves no order waiting behind it."""

    def forget(done: asyncio.Task[None]) -> None:
        if chains.get(coid) is done:
            del chains[coid]
            behind.pop(coid, None)

    return forget


def agrees(order: Order, venue: VenueOrder) -> bool:
    """True when the venue's open-order view says nothing the store does not know."""
    return (
        order.venue_status == venue.status.value
        and order.filled_quantity == venue.executed_quantity
        and order.exchange_order_id == venue.exchange_order_id
    )


class OrderTracker:
    def __init__(
        self,
        store: OrderStore,
        venue: Venue,
        writer: OrderWriter,
        market: MarketState,
        *,
        poll_interval_s: float = 2.0,
        sweep_interval_s: float = 30.0,
        sweep_weight_per_minute: float = 0.0,
        long_gap_s: float = 60.0,
        observer: TrackingObserver | None = None,
        journal: Journal | None = None,
        on_long_gap: Callable[[], Awaitable[Any]] | None = None,
        on_fill: Callable[[Fill], None] | None = None,
        on_stale_submits: Callable[[list[Order]], object] | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        all_symbols_cost: int = 1,
    ) -> None:
        self.store = store
        #: VenuePolicy.all_symbols_open_orders_cost: one open-orders query over every
        #: symbol costs this many per-symbol queries
        self.all_symbols_cost = all_symbols_cost
        self.venue = venue
        self.writer = writer
        self.market = market
        self.poll_interval_s = poll_interval_s
        self.sweep_interval_s = sweep_interval_s
        #: venue weight per minute the sweep may spend (0: every sweep_interval_s). A
        #: stream event the venue dropped is only found by a sweep; with a few symbols a
        #: sweep costs a few weight, so it can run every second or two (issue 17: the
        #: view matches the venue within 3 s instead of within sweep_interval_s).
        self.sweep_weight_per_minute = sweep_weight_per_minute
        self._sweep_weight = 0  # what the last sweep's open-orders queries cost
        self.long_gap_s = long_gap_s
        self.observer: TrackingObserver = observer or NullTrackingObserver()
        self.journal = journal
        self.on_long_gap = on_long_gap
        self.on_fill = on_fill
        self.on_stale_submits = on_stale_submits
        self.now_ms = now_ms
        #: whether the user stream is up, and since when it is down (None: up, or a
        #: standby's: another daemon follows the stream); only the tracker changes them
        self._stream_up = False
        self._down_since: float | None = time.monotonic()
        self.last_event_ms: int | None = None
        self.recoveries = 0
        self._last_sweep = time.monotonic()
        #: set to run the watch loop's work now instead of at its next due time
        self._wake = asyncio.Event()
        #: trades the stream did not deliver: fetched, stored once, owed marks cleared
        self.fills = FillKeeper(
            store, venue, writer, observer=self.observer, on_fill=on_fill, now_ms=now_ms
        )
        self._reconcile_owed = False
        self._recovery_owed = False
        #: told every ACCOUNT_UPDATE and StreamGap, in stream order (the account view)
        self.account_listeners: list[Callable[[AccountUpdate | StreamGap], None]] = []
        #: client order id -> (order id, version) of a version still being stored when an
        #: event was folded on it (``fold``, ``check_riding``); bounded by MAX_RIDING
        self._riding: dict[str, tuple[str, int]] = {}
        writer.subscribe(self._landed)

    # -- events ----------------------------------------------------------------------------
    async def handle(self, event: Any) -> None:
        if isinstance(event, OrderUpdate):
            await self.on_order_update(event)
        elif isinstance(event, AccountUpdate):
            self.market.on_account_update(event)
            self._tell_account(event)
            await self.writer.account_update(event)  # position and balance events
        elif isinstance(event, AccountConfigUpdate | MarginCall):
            await self.writer.account_update(event)  # position events (issue 17)
        elif isinstance(event, StreamGap):
            self._tell_account(event)
            await self.on_gap(event)

    def _tell_account(self, event: AccountUpdate | StreamGap) -> None:
        """The account view (oexec/service/account.py) follows the same stream."""
        for listener in self.account_listeners:
            try:
                listener(event)
            except Exception:
                log.exception("account listener failed on %s", type(event).__name__)

    async def on_gap(self, gap: StreamGap) -> None:
        """A (re)connect: recover what the gap hid before trusting the stream again."""
        long_gap = (
            self._down_since is not None and time.monotonic() - self._down_since >= self.long_gap_s
        )
        if gap.reason != FIRST_CONNECT:
            self.observer.user_stream_reconnected()
        if long_gap and gap.reason != FIRST_CONNECT:
            self.owe_reconciliation()
        else:
            self._recovery_owed = True
        try:
            await self.settle_owed()
            # the venue answers again: the fill checks it could not answer run now, not
            # at their retry time
            self.fills.hurry()
            self._wake.set()
        finally:
            # The stream is up whatever the recovery did: events flow again. What the
            # recovery could not do (venue throttled or away) stays owed, and ``watch``
            # retries it every poll until it succeeds.
            self._stream_up = True
            self._down_since = None

    def owe_reconciliation(self) -> None:
        """A full reconciliation (adoption included) must run before the tracker is
        square with the venue: after a long gap, or a start whose own one failed."""
        if self.on_long_gap is not None:
            self._reconcile_owed = True
        else:
            self._recovery_owed = True

    async def settle_owed(self) -> None:
        """Run the owed reconciliation or recovery; each stays owed until it succeeds."""
        if self._reconcile_owed and self.on_long_gap is not None:
            await self.on_long_gap()
            self._reconcile_owed = self._recovery_owed = False
        elif self._recovery_owed:
            await self.recover("gap")
            self._recovery_owed = False

    @property
    def stream_up(self) -> bool:
        return self._stream_up

    @property
    def down_since(self) -> float | None:
        """Monotonic time the stream went down; None while up or while standing by."""
        return self._down_since

    def stream_stopped(self) -> None:
        """The stream runner ended (stop, lease lost): events no longer arrive. Since when
        is left to ``on_stream_state`` and the leadership calls (a standby is not down)."""
        self._stream_up = False

    def stand_by(self) -> None:
        """Another daemon follows the stream: this one is not "down" (no health alarm)."""
        self._stream_up = False
        self._down_since = None

    def take_over(self) -> None:
        """This daemon starts following after others did: it does not know what happened
        meanwhile, as after a long disconnect (the first gap reconciles in full)."""
        self._stream_up = False
        self._down_since = time.monotonic() - self.long_gap_s

    def on_stream_state(self, state: str) -> None:
        """UserStream ``on_state`` hook: anything but connected means events may be lost."""
        if state != "connected" and self._stream_up:
            self._stream_up = False
            self._down_since = time.monotonic()

    def _heard(self, update: OrderUpdate) -> None:
        """What every order event leaves, whether or not it changes the order: the
        stream's lag and the journal's verbatim line (``oexec trace``)."""
        self.last_event_ms = update.event_time
        self.observer.set_user_stream_lag(max(0, self.now_ms() - update.event_time) / 1000)
        if self.journal is not None:
            self.journal.record(
                update.order.client_order_id,
                "stream",
                execution_type=update.execution_type,
                raw=update.order.raw,
            )

    def fold(self, update: OrderUpdate) -> bool:
        """Take in, without a task or a store call, an event whose effect the order already
        has; False when it may change something (then ``on_order_update`` applies it).

        Most of the stream repeats what the submit's answer says (a MARKET or IOC order
        arrives settled: its NEW, FILLED or EXPIRED event changes nothing). The test is the
        one ``writer.update`` would make: ``apply_venue_order`` on the newest version this
        process wrote or, while that version's save runs (the event usually arrives as the
        answer is being stored), on the version being stored. A version being stored may
        still fail: the event then rides on it (``check_riding``). A trade is never folded
        (it is stored once, through ``record_fill``).
        """
        if update.trade is not None:
            return False
        coid = update.order.client_order_id
        order = self.writer.recent(coid)
        if order is None:
            return False
        riding = self.writer.writing(order.id)
        if riding:
            order = self.writer.landing(coid)
            if order is None or len(self._riding) >= MAX_RIDING:
                return False
        if apply_venue_order(order, update.order, self.now_ms()) is not None:
            return False
        if riding:
            known = self._riding.get(coid)
            if known is None or known[1] < order.version:
                self._riding[coid] = (order.id, order.version)
        self._heard(update)
        return True

    def _landed(self, before: Order | None, after: Order) -> None:
        """Writer listener: a stored version ends the ride of events folded on it."""
        riding = self._riding.get(after.client_order_id)
        if riding is not None and after.version >= riding[1]:
            del self._riding[after.client_order_id]

    def check_riding(self) -> None:
        """Events folded on a version whose save was running: once no update of the order
        runs, that version (or a later one) is the order's newest, or its save failed and
        what those events said is owed — a recovery compares the store with the venue.
        (The submit's answer has its own net: a failed store step hands the order to the
        resolver.)"""
        for coid, (order_id, version) in list(self._riding.items()):
            if self.writer.writing(order_id):
                continue
            del self._riding[coid]
            newest = self.writer.recent(coid)
            if newest is None or newest.id != order_id or newest.version < version:
                log.info("a stream event rode on a version of %s not stored; recovering", coid)
                self._recovery_owed = True

    async def on_order_update(self, update: OrderUpdate) -> None:
        self._heard(update)
        coid = update.order.client_order_id
        order = self.writer.recent(coid) or await self.store.get_by_client_order_id(coid)
        if order is None:
            log.info("stream event for an order this daemon does not know: %s", coid)
            return
        if update.trade is not None:
            await self.record_fill(order, update.trade)
        now = self.now_ms()
        await self.writer.update(
            order, lambda o: apply_venue_order(o, update.order, now), reason="user stream"
        )

    # -- fills (oexec/service/fills.py) ---------------------------------------------------
    async def record_fill(self, order: Order, trade: VenueTrade) -> bool:
        return await self.fills.record(order, trade)

    async def fetch_fills(self, order: Order, exchange_order_id: str | None = None) -> int:
        return await self.fills.fetch(order, exchange_order_id)

    def recorded_quantity(self, order_id: str) -> Decimal:
        return self.writer.recorded_quantity(order_id)

    async def load_owed_fills(self) -> int:
        return await self.fills.load_owed()

    async def check_fills(self, *, due_only: bool = True) -> int:
        return await self.fills.check(due_only=due_only)

    async def audit_fills(self, order: Order) -> int:
        return await self.fills.audit(order)

    # -- gap recovery ----------------------------------------------------------------------
    async def recover(self, trigger: str = "gap") -> int:
        """Fold the venue's truth for every open order into the store; returns changes."""
        self.recoveries += 1
        self._last_sweep = time.monotonic()
        stored_open = await self.store.open_orders(None)
        open_orders = [o for o in stored_open if o.state not in PRE_VENUE_STATES]
        self._sweep_weight = min(len({o.symbol for o in open_orders}), self.all_symbols_cost)
        if self.on_stale_submits is not None and len(open_orders) < len(stored_open):
            # SUBMITTING/UNKNOWN belong to the resolver; one whose resolution died with a
            # store outage (or was never started) is handed to it again
            self.on_stale_submits([o for o in stored_open if o.state in PRE_VENUE_STATES])
        try:
            venue_open = await self._venue_open_orders({o.symbol for o in open_orders})
        except OexecError:
            venue_open = {}  # query every order instead
        differing = [
            o
            for o in open_orders
            if not ((seen := venue_open.get(o.client_order_id)) is not None and agrees(o, seen))
        ]
        known, trades = await self._read_in_bulk(differing)

        async def refresh(order: Order) -> int:
            seen = known.get(order.client_order_id)
            found = None if seen is None else trades.get(seen.exchange_order_id)
            return await self._refresh_quietly(order, seen, found)

        changed = await _sum_bounded(refresh, differing)
        self.observer.recovery(trigger, changed)
        return changed

    async def _read_in_bulk(
        self, orders: list[Order]
    ) -> tuple[dict[str, VenueOrder], dict[str, list[VenueTrade]]]:
        """The venue's view of ``orders`` and the trades of those that filled, a request
        per symbol where that is cheaper than one per order (oexec/service/bulk_reads.py;
        the rest are asked one by one)."""
        now = self.now_ms()
        known = await bulk_reads.venue_orders(self.venue, orders, now)
        filled = [
            attrs.evolve(order, exchange_order_id=seen.exchange_order_id)
            for order in orders
            if (seen := known.get(order.client_order_id)) is not None and seen.executed_quantity > 0
        ]
        return known, await bulk_reads.trades_by_order(self.venue, filled, now)

    async def _venue_open_orders(self, symbols: set[str]) -> dict[str, VenueOrder]:
        """The venue's open orders of ``symbols``, by client order id. Per symbol while
        that is cheaper (``all_symbols_cost``, from the venue's policy: on some venues a
        query over every symbol costs tens of per-symbol ones, and a poll every 2 s
        without a symbol would spend most of the rate budget)."""
        if not symbols:
            return {}
        if len(symbols) < self.all_symbols_cost:
            lists = await asyncio.gather(*(self.venue.open_orders(sym) for sym in symbols))
            seen = [o for orders in lists for o in orders]
        else:
            seen = await self.venue.open_orders(None)
        return {o.client_order_id: o for o in seen}

    async def _refresh_quietly(
        self,
        order: Order,
        seen: VenueOrder | None = None,
        trades: list[VenueTrade] | None = None,
    ) -> int:
        with contextlib.suppress(OexecError):
            return await self.refresh(order, seen, trades)
        return 0

    async def refresh(
        self,
        order: Order,
        seen: VenueOrder | None = None,
        trades: list[VenueTrade] | None = None,
    ) -> int:
        """Fold the venue's truth of ``order`` in, with its trades. ``seen`` / ``trades``:
        already read in bulk (then no query, and a trade fetch only if they fall short)."""
        if seen is not None:
            venue_order = seen
        else:
            try:
                venue_order = await self.venue.query_order(
                    order.symbol, client_order_id=order.client_order_id
                )
            except VenueOrderNotFoundError:
                return 0  # the resolver owns orders the venue has not shown yet
        if venue_order.executed_quantity > 0:
            await self.fills.record_all(order, trades or ())
            if trades is None or not await self.fills.covers(
                order.id, venue_order.executed_quantity
            ):
                await self.fetch_fills(order, venue_order.exchange_order_id)
        now = self.now_ms()
        _, changed = await self.writer.update(
            order, lambda o: apply_venue_order(o, venue_order, now), reason="recovery"
        )
        if changed and self.journal is not None:
            self.journal.record(
                order.client_order_id,
                "decision",
                decision="recovered",
                detail=f"store {order.state.value} -> venue {venue_order.status.value}",
            )
        return int(changed)

    async def run(self, events: Any) -> None:
        """Consume a UserStream's event iterator until cancelled.

        Events of one order are applied in arrival order; events of different orders
        concurrently (at most ``STREAM_CONCURRENCY``), because each may wait on the store:
        applied one by one, a burst of fills outran the tracker, the stream's queue grew
        without bound (RSS +8 KB per order in the bench) and fill events lagged. Account
        updates (positions and balances, independent of order state) are applied as they
        come; a gap waits until every order event before it is applied. An order event
        that changes nothing stored, with none of its order's before it still running, is
        taken in at once (``fold``): the usual case, the submit's answer got there first.
        """
        chains: dict[str, asyncio.Task[None]] = {}  # order -> the task applying its events
        behind: dict[str, deque[OrderUpdate]] = {}  # order -> events waiting for that task
        slots = asyncio.Semaphore(STREAM_CONCURRENCY)
        try:
            async for event in events:
                if isinstance(event, OrderUpdate):
                    coid = event.order.client_order_id
                    if coid in chains:  # its order's task takes it next, in turn
                        await slots.acquire()  # back-pressure: the stream waits, not memory
                        if coid in chains:
                            behind.setdefault(coid, deque()).append(event)
                            continue
                        slots.release()  # that task ended meanwhile
                    if self._fold_quietly(event):
                        continue  # nothing to store: no task, no lock, no store call
                    await slots.acquire()
                    task = asyncio.get_running_loop().create_task(
                        self._apply_in_turn(event, chains, behind, slots)
                    )
                    chains[coid] = task
                    task.add_done_callback(_forget_chain(chains, behind, coid))
                    continue
                if isinstance(event, StreamGap) and chains:
                    # a recovery must see every event that arrived before the gap
                    await asyncio.wait(list(chains.values()))
                await self._apply_logged(event)
        finally:
            await cancel_and_wait(list(chains.values()))

    def _fold_quietly(self, update: OrderUpdate) -> bool:
        try:
            return self.fold(update)
        except Exception:  # a bug must not stop the stream: apply it the long way
            log.exception("tracker could not fold an order event; applying it")
            return False

    async def _apply_in_turn(
        self,
        first: OrderUpdate,
        chains: dict[str, asyncio.Task[None]],
        behind: dict[str, deque[OrderUpdate]],
        slots: asyncio.Semaphore,
    ) -> None:
        """Apply ``first``, then the events of its order that arrived meanwhile, in order
        (one task per order, not one per event: the second event of an order usually
        arrives while the first waits for the submit's answer to be stored). A queued
        event that by then changes nothing is folded in. The task leaves ``chains``
        itself, with nothing left queued and no await in between, so an event can never
        be queued behind a task that has finished."""
        coid = first.order.client_order_id
        event, fold = first, False  # ``run`` already tried to fold the first
        while True:
            try:
                if not (fold and self._fold_quietly(event)):
                    await self._apply_logged(event)
            finally:
                slots.release()
            queued = behind.get(coid)
            if not queued:
                behind.pop(coid, None)
                if chains.get(coid) is asyncio.current_task():
                    del chains[coid]
                return
            event, fold = queued.popleft(), True

    async def _apply_logged(self, event: Any) -> None:
        try:
            await self.handle(event)
        except OexecError as exc:
            # the event is lost (store away, venue throttled): recover at the next
            # poll instead of waiting for the sweep
            self._recovery_owed = True
            log.warning("tracker could not apply %s: %s", type(event).__name__, exc)
        except Exception:  # a bug must not stop the stream: log it, recover later
            self._recovery_owed = True
            log.exception("tracker failed on %s", type(event).__name__)

    async def watch(self, *, stream_enabled: bool = True) -> None:
        """Poll while the stream is down, sweep while it is up, fetch missing fills.

        It wakes when the next of these is due (``next_wake_s``), not on a fixed tick: on
        a 2 s tick a 1.5 s sweep ran every 4 s and a fill check due in 1 s waited up to
        2 (issue 17: the view matches the venue within 3 s)."""
        failed = False
        while True:
            # after a failure (venue or store away) the next try waits a whole poll
            pause = self.poll_interval_s if failed else self.next_wake_s(stream_enabled)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()
            failed = True
            try:
                self.check_riding()
                await self.settle_owed()
                since = time.monotonic() - self._last_sweep
                if not self._stream_up or not stream_enabled:
                    if since >= self.poll_interval_s:
                        await self.recover("poll")
                elif since >= self.sweep_every_s():
                    await self.recover("sweep")
                    await self.load_owed_fills()  # marks another daemon's submits left
                await self.check_fills()
                failed = False
            except OexecError as exc:
                log.warning("tracking poll failed: %s", exc.message)

    def next_wake_s(self, stream_enabled: bool = True) -> float:
        """Seconds until the next poll, sweep or fill check is due (at least
        ``MIN_WAKE_S``, at most ``poll_interval_s``)."""
        now = time.monotonic()
        down = not self._stream_up or not stream_enabled
        every = self.poll_interval_s if down else self.sweep_every_s()
        due = self._last_sweep + every
        if self.fills.due:
            due = min(due, min(self.fills.due.values()))
        return min(self.poll_interval_s, max(MIN_WAKE_S, due - now))

    def sweep_every_s(self) -> float:
        """Seconds between sweeps while the stream is up: as often as
        ``sweep_weight_per_minute`` affords (open orders cost 1 per symbol, or the venue's
        ``all_symbols_cost`` for all),
        at least MIN_SWEEP_S apart, at most ``sweep_interval_s``."""
        if self.sweep_weight_per_minute <= 0:
            return self.sweep_interval_s
        afford = self._sweep_weight * 60.0 / self.sweep_weight_per_minute
        return min(self.sweep_interval_s, max(MIN_SWEEP_S, afford))

    async def poll_while_down(self) -> None:
        """Kept for callers of the first version: ``watch`` does this and more."""
        await self.watch()
