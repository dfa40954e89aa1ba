"""The one place order changes are stored and announced.

Every change of an order goes through here: the claim (``claim``), an adopted venue
order (``adopt``), a trade (``record_fill``), and every later change — the submit's
answer, the user-data stream, the poller, the resolver, reconciliation — through
``update``. Nothing else publishes order or fill events or tells the change listeners
(``subscribe``); tests/test_architecture.py checks it. ``update`` serialises changes per
order inside this process, uses the store's version compare-and-set across processes,
re-reads and re-applies on a conflict, and publishes exactly the events the state change
implies (so ``order.filled`` is announced once, by whoever moved the order to FILLED).
The events go into the store with the change, in the same atomic step (the outbox,
oexec/service/outbox.py), so a crash between the write and the publish delays them but
cannot lose them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import orjson

from oexec.errors import StoreConflictError
from oexec.models import Fill, Order
from oexec.models.serde import order_to_dict
from oexec.models.venue import AccountConfigUpdate, AccountUpdate, MarginCall
from oexec.service.account_events import account_events, outbox_id_for_account
from oexec.service.outbox import (
    Event,
    OutboxRelay,
    PackedPayload,
    fill_events,
    order_events,
    pack_events,
)
from oexec.service.ports import (
    ClaimResult,
    EventSink,
    EventTopics,
    OrderStore,
    outbox_id_for_fill,
    outbox_id_for_order,
)

log = logging.getLogger("oexec.writer")

OrderChange = Callable[[Order], Order | None]
ChangeListener = Callable[[Order | None, Order], None]
MAX_CAS_RETRIES = 8
#: Orders whose last announced version is remembered. Only near-simultaneous writers
#: of one order need it, so recent orders suffice; 100,000 entries grew RSS by ~15 MB
#: on the way to 100,000 orders (issue 10: RSS flat from 10,000 to 100,000).
MAX_ANNOUNCED = 8192
#: Recently written orders kept in memory (by client order id) so that a user-stream
#: event needs no store read; bounded, the least recently written go first.
RECENT_ORDERS = 4096
#: Orders whose stored trade quantity this process remembers (see ``fills_cover``):
#: enough for the fills of recent orders; an order beyond it is checked in the store.
RECORDED_ORDERS = 8192
ZERO = Decimal(0)


def encode_reply(body: dict[str, object]) -> bytes:
    """The cached reply of a request: its order as a dict, JSON (one encoding for every
    path that caches one, so a duplicate request gets the same bytes)."""
    return orjson.dumps(body)


class OrderWriter:
    def __init__(
        self,
        store: OrderStore,
        events: EventSink,
        *,
        listeners: list[ChangeListener] | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.relay = OutboxRelay(store, events)
        self.listeners: list[ChangeListener] = list(listeners or [])
        self._owing: list[Callable[[Order], None]] = []
        #: order id -> (its lock, how many updates hold or wait for it). An entry lives
        #: only while in use: keeping one per order ever written leaked memory (issue 10).
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        #: order id -> highest version this writer announced (bounded, oldest evicted).
        #: A store may report a save as landed when identical bytes are already stored
        #: (a retried save); two writers applying the same venue view in the same
        #: millisecond produce identical bytes, and only one of them may announce it.
        self._announced: OrderedDict[str, int] = OrderedDict()
        self._recent: OrderedDict[str, Order] = OrderedDict()
        #: order id -> quantity of its trades this process has stored (bounded, oldest
        #: evicted). A save that grows the filled quantity owes fills only when they are
        #: not stored yet: then the owed-fills mark, and a check later, are needed.
        self._recorded: OrderedDict[str, Decimal] = OrderedDict()
        #: client order id -> the version being stored right now (only while its save runs)
        self._landing: dict[str, Order] = {}

    def subscribe(self, listener: ChangeListener) -> None:
        """Tell ``listener`` every stored change of an order, once per version, in this
        process (market counts, the dead-man switch)."""
        self.listeners.append(listener)

    def subscribe_owing(self, listener: Callable[[Order], None]) -> None:
        """Tell ``listener`` each stored change that marked its order as owing trades
        (the fill checks). Told from the save itself: a trade recorded while the save was
        in flight must not hide a mark that was stored (a listener deciding later, from
        what is recorded by then, left such marks behind until the next start)."""
        self._owing.append(listener)

    def fills_cover(self, order: Order) -> bool:
        """Whether trades this process stored already add up to ``order``'s fill."""
        return self.recorded_quantity(order.id) >= order.filled_quantity

    def recorded_quantity(self, order_id: str) -> Decimal:
        """Quantity of the order's trades this process stored (0 if not remembered)."""
        return self._recorded.get(order_id, ZERO)

    def recent(self, client_order_id: str) -> Order | None:
        """The latest version this process wrote of the order, if still remembered.

        A hint, not the truth: another daemon may have written a newer version since.
        Use it as the base of ``update``, whose compare-and-set catches exactly that.
        """
        return self._recent.get(client_order_id)

    def writing(self, order_id: str) -> bool:
        """Whether an ``update`` of the order holds or awaits its lock: its newest version
        may be about to change, so ``recent`` is not yet the base an update would use."""
        return order_id in self._locks

    def landing(self, client_order_id: str) -> Order | None:
        """The version of the order whose save is running now, if any: not stored yet, and
        it may still fail (the stream's tracker folds an event against it only with a
        check that it landed, ``OrderTracker.check_riding``)."""
        return self._landing.get(client_order_id)

    def latest(self, order: Order) -> Order:
        """``order``, or the newer version of it this process wrote since (a caller's copy
        goes stale while it waits: a stream event applied before the submit's answer)."""
        known = self._recent.get(order.client_order_id)
        if known is not None and known.id == order.id and known.version > order.version:
            return known
        return order

    def _remember(self, order: Order) -> None:
        known = self._recent.get(order.client_order_id)
        if known is not None and known.version > order.version:
            return
        self._recent[order.client_order_id] = order
        self._recent.move_to_end(order.client_order_id)
        if len(self._recent) > RECENT_ORDERS:
            self._recent.popitem(last=False)

    @contextlib.asynccontextmanager
    async def _serialised(self, order_id: str) -> AsyncIterator[None]:
        entry = self._locks.get(order_id)
        if entry is None:
            entry = self._locks[order_id] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[order_id]

    def _first_announcement(self, order: Order) -> bool:
        seen = self._announced.get(order.id)
        if seen is not None and seen >= order.version:
            return False
        self._announced[order.id] = order.version
        self._announced.move_to_end(order.id)
        if len(self._announced) > MAX_ANNOUNCED:
            self._announced.popitem(last=False)
        return True

    async def announce(self, before: Order | None, after: Order, events: list[Event]) -> None:
        """Publish the events of a stored change and tell local listeners (once per version)."""
        if not self._first_announcement(after):
            return
        for listener in self.listeners:
            listener(before, after)
        if events:
            await self.relay.publish(outbox_id_for_order(after), events)

    async def claim(self, order: Order, ttl_s: int, *, early: bool = False) -> ClaimResult:
        """The store's atomic claim, with the events of an order rejected at once.

        ``early``: the store may answer before the claim is written (its
        ``ClaimResult.durable`` says when it is); events are announced only once stored.
        """
        events = order_events(None, order)
        packed = pack_events(events) if events else None
        result = await self.store.claim(order, ttl_s, events=packed, early=early)
        if result.claimed:
            self._remember(result.order)
            if events:
                if result.durable is not None:
                    await result.durable
                await self.announce(None, result.order, events)
        return result

    async def adopt(self, order: Order, ttl_s: int) -> bool:
        """Record a venue order this daemon did not place (reconciliation) and announce it
        as ``order.created`` with ``adopted: true``: the record and its event in one store
        step (the claim, keyed by its request id), so a crash right after cannot lose the
        event. False if another writer (here or in a peer daemon) adopted it first."""
        events: list[Event] = [
            (
                EventTopics.ORDER_CREATED,
                PackedPayload({"order": order_to_dict(order), "adopted": True}),
            )
        ]
        result = await self.store.claim(order, ttl_s, events=pack_events(events))
        if not result.claimed:
            return False
        self._remember(order)
        await self.announce(None, order, events)
        return True

    async def record_fill(self, fill: Fill) -> bool:
        """Store a trade once (keyed by symbol + trade id) with its ``fill`` event, and
        publish the event as soon as the store answers; False if it was stored already.
        The recorded-quantity count is updated after the send, off the event's path
        (issue 10); nothing suspends in between."""
        events = fill_events(fill)
        if not await self.store.add_fill(fill, events=pack_events(events)):
            return False
        try:
            await self.relay.publish(outbox_id_for_fill(fill), events)
        finally:
            recorded = self._recorded
            recorded[fill.order_id] = recorded.get(fill.order_id, ZERO) + fill.quantity
            recorded.move_to_end(fill.order_id)
            if len(recorded) > RECORDED_ORDERS:
                recorded.popitem(last=False)
        return True

    async def account_update(self, update: AccountUpdate | AccountConfigUpdate | MarginCall) -> int:
        """Announce the venue's ACCOUNT_UPDATE as ``position`` and ``balance`` events,
        ACCOUNT_CONFIG_UPDATE (leverage) and MARGIN_CALL as ``position`` events (issue
        17): stored in the outbox first, then published like every other event, so a
        crash delays them but cannot lose them. Returns how many events."""
        events = account_events(update)
        if not events:
            return 0
        entry_id = outbox_id_for_account(update)
        await self.store.outbox_put(entry_id, pack_events(events))
        await self.relay.publish(entry_id, events)
        return len(events)

    async def commit(
        self, before: Order, after: Order, *, reason: str, reply_ttl_s: int | None = None
    ) -> Order:
        """Store ``after`` (version = before.version + 1) with its events, the owed-fills
        mark when its filled quantity grew, and (``reply_ttl_s``) the request's cached
        reply, in one store step; then announce it.

        Raises StoreConflictError when another writer got there first; use ``update`` when
        that can happen.
        """
        body = order_to_dict(after)
        events = order_events(before, after, body)
        coid = after.client_order_id
        owes = after.filled_quantity > before.filled_quantity and not self.fills_cover(after)
        self._landing[coid] = after
        try:
            await self.store.save(
                after,
                reason=reason,
                events=pack_events(events) if events else None,
                reply=None if reply_ttl_s is None else encode_reply(body),
                reply_ttl_s=reply_ttl_s or 0,
                owes_fills=owes,
            )
        finally:
            if self._landing.get(coid) is after:
                del self._landing[coid]
        self._remember(after)
        if owes:
            for listener in self._owing:
                listener(after)
        await self.announce(before, after, events)
        return after

    async def update(
        self,
        order: Order,
        change: OrderChange,
        *,
        reason: str,
        reply_ttl_s: int | None = None,
    ) -> tuple[Order, bool]:
        """Apply ``change`` to the latest stored version of ``order``; retry on conflicts.

        Returns (order as stored now, whether this call changed it). With
        ``reply_ttl_s`` the stored change also caches the request's reply (the order as
        stored); a call that changes nothing caches nothing.
        """
        async with self._serialised(order.id):
            # A caller's copy may have gone stale while it waited for the lock (a stream
            # event read before the submit's save landed): start from the newest version
            # this process wrote, not from a conflict (0.77 conflicts per order, each a
            # failed save, a read and a retry, were measured before this).
            current = self.latest(order)
            for _ in range(MAX_CAS_RETRIES):
                updated = change(current)
                if updated is None:
                    return current, False
                try:
                    stored = await self.commit(
                        current, updated, reason=reason, reply_ttl_s=reply_ttl_s
                    )
                    return stored, True
                except StoreConflictError:
                    latest = await self.store.get(order.id)
                    if latest is None:
                        raise
                    self._remember(latest)
                    current = latest
            raise StoreConflictError(
                f"order {order.id}: too many concurrent writers", details={"order_id": order.id}
            )
