"""Reconciliation: make the store agree with the venue, and prove that it does.

``Reconciler.run`` is called at start and after any long stream disconnect. It

1. hands every order whose submit outcome is unknown (SUBMITTING / UNKNOWN) to the
   resolver (by client order id, never resent);
2. folds the venue's truth into every other open order (``OrderTracker.recover``);
3. adopts venue open orders the store does not know (an order record plus an
   ``order.created`` event) or, with ``adopt_unknown_orders = false``, reports and
   cancels them;
4. fetches the trades of recently filled orders whose fills are incomplete (a crash
   between a FILLED reply and its trades).

``compare`` is the ground-truth check behind ``oexec reconcile --check``: it reads both
sides, changes nothing, and returns one ``Difference`` per disagreement.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal

import attrs

from oexec.errors import OexecError, VenueOrderNotFoundError
from oexec.models import Order, OrderState, VenueOrder, VenueOrderStatus
from oexec.service.journal import Journal
from oexec.service.ports import OrderStore, Venue
from oexec.service.resolver import UnknownOutcomeResolver
from oexec.service.stages import new_order_id
from oexec.service.tracker import OrderTracker
from oexec.service.writer import OrderWriter

log = logging.getLogger("oexec.reconcile")

ADOPTED_PREFIX = "adopted:"  # request id of an adopted order: prefix + client order id
ADOPT_TTL_S = 86_400
#: The store state each venue status implies.
EXPECTED_STATE: dict[VenueOrderStatus, OrderState] = {
    VenueOrderStatus.NEW: OrderState.NEW,
    VenueOrderStatus.PARTIALLY_FILLED: OrderState.PARTIALLY_FILLED,
    VenueOrderStatus.FILLED: OrderState.FILLED,
    VenueOrderStatus.CANCELED: OrderState.CANCELED,
    VenueOrderStatus.EXPIRED: OrderState.EXPIRED,
    VenueOrderStatus.EXPIRED_IN_MATCH: OrderState.EXPIRED,
    VenueOrderStatus.REJECTED: OrderState.REJECTED,
}
ABSENT = "-"


@attrs.frozen
class Difference:
    """One disagreement between the store and the venue about one order."""

    client_order_id: str
    symbol: str
    order_id: str
    field: str  # missing_in_store, missing_at_venue, state, filled_quantity, fills
    store: str
    venue: str


@attrs.frozen
class ReconcileReport:
    resolving: int = 0
    corrected: int = 0
    adopted: tuple[str, ...] = ()
    canceled: tuple[str, ...] = ()
    fills_recovered: int = 0


def adopted_order(venue: VenueOrder, now_ms: int) -> Order:
    """A store record for a venue order this daemon did not place."""
    return Order(
        id=new_order_id(now_ms),
        request_id=ADOPTED_PREFIX + venue.client_order_id,
        client_order_id=venue.client_order_id,
        symbol=venue.symbol,
        side=venue.side,
        type=venue.type,
        quantity=venue.quantity,
        state=EXPECTED_STATE[venue.status],
        created_at=now_ms,
        updated_at=now_ms,
        price=venue.price if venue.price > 0 else None,
        time_in_force=venue.time_in_force,
        stop_price=venue.stop_price,
        reduce_only=venue.reduce_only,
        position_side=venue.position_side,
        exchange_order_id=venue.exchange_order_id,
        filled_quantity=venue.executed_quantity,
        average_price=venue.average_price if venue.executed_quantity > 0 else None,
        cumulative_quote=venue.cumulative_quote,
        venue_status=venue.status.value,
        venue_update_time=venue.update_time,
        version=1,
    )


def refused_before_the_venue(order: Order) -> bool:
    """Rejected by our own checks (validation, risk, halt): never sent, so there is nothing
    to compare - and a query would spend weight, or fail the whole comparison for a symbol
    the venue does not list (an order refused as SYMBOL_UNKNOWN). A venue's own rejection
    (``VENUE_*``) is still compared."""
    return (
        order.state is OrderState.REJECTED
        and order.exchange_order_id is None
        and not (order.error_code or "").startswith("VENUE_")
    )


def diff_order(order: Order, venue: VenueOrder | None, fills_qty: Decimal) -> list[Difference]:
    """Pure: how the store's ``order`` disagrees with the venue's view of it."""

    def row(field: str, mine: object, theirs: object) -> Difference:
        return Difference(
            order.client_order_id, order.symbol, order.id, field, str(mine), str(theirs)
        )

    if venue is None:
        never_sent = order.state is OrderState.REJECTED
        return [] if never_sent else [row("missing_at_venue", order.state.value, ABSENT)]
    rows = []
    expected = EXPECTED_STATE[venue.status]
    if order.state is not expected:
        rows.append(row("state", order.state.value, venue.status.value))
    if order.filled_quantity != venue.executed_quantity:
        rows.append(row("filled_quantity", order.filled_quantity, venue.executed_quantity))
    if fills_qty != venue.executed_quantity:
        rows.append(row("fills", fills_qty, venue.executed_quantity))
    return rows


async def compare(store: OrderStore, venue: Venue, *, history_limit: int = 200) -> list[Difference]:
    """Store vs venue for every open order (both sides) and the latest ``history_limit``."""
    differences: list[Difference] = []
    for seen in await venue.open_orders(None):
        if await store.get_by_client_order_id(seen.client_order_id) is None:
            differences.append(
                Difference(
                    seen.client_order_id,
                    seen.symbol,
                    ABSENT,
                    "missing_in_store",
                    ABSENT,
                    seen.status.value,
                )
            )
    orders = {o.id: o for o in await store.open_orders(None)}
    orders.update({o.id: o for o in await store.history(None, limit=history_limit)})
    for order in sorted(orders.values(), key=lambda o: (o.created_at, o.id)):
        if refused_before_the_venue(order):
            continue
        try:
            seen_order: VenueOrder | None = await venue.query_order(
                order.symbol, client_order_id=order.client_order_id
            )
        except VenueOrderNotFoundError:
            seen_order = None
        fills = sum((f.quantity for f in await store.fills(order.id)), Decimal(0))
        differences.extend(diff_order(order, seen_order, fills))
    return differences


class Reconciler:
    def __init__(
        self,
        store: OrderStore,
        venue: Venue,
        writer: OrderWriter,
        tracker: OrderTracker,
        resolver: UnknownOutcomeResolver,
        *,
        adopt_unknown_orders: bool = True,
        history_limit: int = 500,
        in_flight_grace_ms: int = 60_000,
        journal: Journal | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.store = store
        self.venue = venue
        self.writer = writer
        self.tracker = tracker
        self.resolver = resolver
        self.adopt_unknown_orders = adopt_unknown_orders
        self.history_limit = history_limit
        self.in_flight_grace_ms = in_flight_grace_ms
        self.journal = journal
        self.now_ms = now_ms

    async def run(self, *, at_start: bool = False) -> ReconcileReport:
        """Resolve, correct, adopt, recover fills; returns what it did."""
        resolving = self._resolve_unknown(await self.store.open_orders(None), at_start)
        corrected = await self.tracker.recover("reconcile")
        adopted, canceled = await self._foreign_orders()
        fills = await self._recover_fills()
        report = ReconcileReport(resolving, corrected, adopted, canceled, fills)
        log.info("reconciliation: %s", report)
        return report

    def resolve_stale(self, orders: list[Order]) -> int:
        """Hand SUBMITTING/UNKNOWN orders past the in-flight grace to the resolver (it
        ignores ones it is already resolving); the tracker calls this at each recovery."""
        return self._resolve_unknown(orders, at_start=False)

    def _resolve_unknown(self, open_orders: list[Order], at_start: bool) -> int:
        """SUBMITTING / UNKNOWN orders go to the resolver; a live submit is left alone."""
        now = self.now_ms()
        count = 0
        for order in open_orders:
            if order.state not in (OrderState.SUBMITTING, OrderState.UNKNOWN):
                continue
            if self.resolver.resolving(order.id):
                continue
            in_flight = order.state is OrderState.SUBMITTING and (
                now - order.created_at < self.in_flight_grace_ms
            )
            if in_flight and not at_start:
                continue
            self._decide(order.client_order_id, f"{order.state.value} at reconciliation: resolve")
            self.resolver.resolve_in_background(order, order.created_at)
            count += 1
        return count

    async def _foreign_orders(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        adopted: list[str] = []
        canceled: list[str] = []
        for seen in await self.venue.open_orders(None):
            if await self.store.get_by_client_order_id(seen.client_order_id) is not None:
                continue
            if self.adopt_unknown_orders:
                if await self.adopt(seen):
                    adopted.append(seen.client_order_id)
            else:
                log.warning("venue order %s unknown to the store: canceling", seen.client_order_id)
                self._decide(seen.client_order_id, "unknown to the store: cancel (no adoption)")
                try:
                    await self.venue.cancel_order(seen.symbol, client_order_id=seen.client_order_id)
                except OexecError as exc:
                    log.warning("cancel of foreign order failed: %s", exc.message)
                else:
                    canceled.append(seen.client_order_id)
        return tuple(adopted), tuple(canceled)

    async def adopt(self, seen: VenueOrder) -> bool:
        """Record and announce a venue order the store lacks; False if someone else did."""
        order = adopted_order(seen, self.now_ms())
        if not await self.writer.adopt(order, ADOPT_TTL_S):
            return False
        self._decide(seen.client_order_id, "unknown to the store: adopted", raw=seen.raw)
        if seen.executed_quantity > 0:
            await self.tracker.fetch_fills(order)
        return True

    async def _recover_fills(self) -> int:
        new = 0
        for order in await self.store.history(None, limit=self.history_limit):
            if order.filled_quantity > 0:
                try:
                    new += await self.tracker.audit_fills(order)
                except OexecError as exc:
                    log.warning("fill recovery for %s failed: %s", order.id, exc.message)
        return new

    def _decide(self, client_order_id: str, decision: str, **fields: object) -> None:
        if self.journal is not None:
            self.journal.record(client_order_id, "decision", decision=decision, **fields)
