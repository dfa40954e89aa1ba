"""In-memory stand-ins for the pipeline's ports, for unit tests of the pipeline's logic.

Integration tests use the real store (Redis, SQLite), the real simulator and real sockets;
these exist so that rare interleavings (a lost claim, an unknown outcome, a released
claim) can be driven deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from oexec.errors import StoreConflictError, VenueOrderNotFoundError
from oexec.models import (
    ExchangeInfo,
    Fill,
    Order,
    OrderState,
    SymbolRules,
    VenueOrder,
    VenueOrderStatus,
    VenueTrade,
)
from oexec.service.ports import (
    ClaimResult,
    OutboxEntry,
    VenueOrderRequest,
    outbox_id_for_fill,
    outbox_id_for_order,
)


class MemoryStore:
    uncertain_until_ms = 0

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.by_request: dict[str, str] = {}
        self.replies: dict[str, bytes] = {}
        self.fill_keys: set[tuple[str, int]] = set()
        self.fill_rows: list[Fill] = []
        self.saves: list[tuple[str, str]] = []
        self.journals: dict[str, list[bytes]] = {}
        self.outbox: dict[str, bytes] = {}
        self.owed: set[str] = set()

    async def claim(
        self, order: Order, ttl_s: int, *, events: bytes | None = None, early: bool = False
    ) -> ClaimResult:
        await asyncio.sleep(0)
        existing = self.by_request.get(order.request_id)
        if existing is not None:
            return ClaimResult(False, self.orders[existing], self.replies.get(order.request_id))
        self.by_request[order.request_id] = order.id
        self.orders[order.id] = order
        if events:
            self.outbox[outbox_id_for_order(order)] = events
        return ClaimResult(True, order)

    async def save(
        self,
        order: Order,
        *,
        reason: str = "",
        events: bytes | None = None,
        reply: bytes | None = None,
        reply_ttl_s: int = 0,
        owes_fills: bool = False,
    ) -> None:
        await asyncio.sleep(0)
        stored = self.orders.get(order.id)
        if stored is None or stored.version != order.version - 1:
            raise StoreConflictError("version conflict")
        self.orders[order.id] = order
        self.saves.append((order.id, reason))
        if events:
            self.outbox[outbox_id_for_order(order)] = events
        if reply is not None:
            self.replies[order.request_id] = reply
        if owes_fills:
            self.owed.add(order.id)

    async def outbox_take(self, older_than_ms: int, limit: int = 500) -> list[OutboxEntry]:
        return [OutboxEntry(id=k, body=v) for k, v in list(self.outbox.items())[:limit]]

    async def outbox_put(self, entry_id: str, events: bytes) -> None:
        self.outbox[entry_id] = events

    async def outbox_ack(self, entry_ids: Sequence[str]) -> None:
        for entry_id in entry_ids:
            self.outbox.pop(entry_id, None)

    async def owed_fills(self) -> list[str]:
        return sorted(self.owed)

    async def settle_fills(self, order_id: str) -> None:
        self.owed.discard(order_id)

    async def release(self, order: Order) -> bool:
        stored = self.orders.get(order.id)
        if stored is None or stored.version != order.version:
            return False
        del self.orders[order.id]
        del self.by_request[order.request_id]
        return True

    async def save_reply(self, request_id: str, reply: bytes, ttl_s: int) -> None:
        self.replies[request_id] = reply

    async def get_reply(self, request_id: str) -> bytes | None:
        return self.replies.get(request_id)

    async def get(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    async def get_by_request_id(self, request_id: str) -> Order | None:
        oid = self.by_request.get(request_id)
        return self.orders.get(oid) if oid else None

    async def get_by_client_order_id(self, client_order_id: str) -> Order | None:
        return next((o for o in self.orders.values() if o.client_order_id == client_order_id), None)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if o.state.is_open and (symbol is None or o.symbol == symbol)
        ]

    async def history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]:
        rows = [o for o in self.orders.values() if symbol is None or o.symbol == symbol]
        return sorted(rows, key=lambda o: o.created_at, reverse=True)[:limit]

    async def state_history(self, order_id: str) -> list[dict[str, Any]]:
        return []

    async def add_fill(self, fill: Fill, *, events: bytes | None = None) -> bool:
        key = (fill.symbol, fill.trade_id)
        if key in self.fill_keys:
            return False
        self.fill_keys.add(key)
        self.fill_rows.append(fill)
        if events:
            self.outbox[outbox_id_for_fill(fill)] = events
        return True

    async def fills(self, order_id: str) -> list[Fill]:
        return [f for f in self.fill_rows if f.order_id == order_id]

    async def open_order_count(self, symbol: str | None = None) -> int:
        return len(await self.open_orders(symbol))

    async def append_journal(self, client_order_id: str, entries: Sequence[bytes]) -> None:
        self.journals.setdefault(client_order_id, []).extend(entries)

    async def append_journal_many(self, batch: Mapping[str, Sequence[bytes]]) -> None:
        for client_order_id, entries in batch.items():
            await self.append_journal(client_order_id, entries)

    async def journal(self, client_order_id: str) -> list[bytes]:
        return list(self.journals.get(client_order_id, []))

    async def start(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, topic: str, payload: dict[str, Any]) -> int:
        self.events.append((topic, payload))
        return len(self.events)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def topics(self) -> list[str]:
        return [t for t, _ in self.events]


Behaviour = Callable[[VenueOrderRequest], VenueOrder]


@attrs.define
class ScriptedVenue:
    """place_order follows ``script`` (a list of callables or exceptions, one per call)."""

    script: list[Any] = attrs.Factory(list)
    accepted: dict[str, VenueOrder] = attrs.Factory(dict)
    placed: list[VenueOrderRequest] = attrs.Factory(list)
    deadlines: list[float | None] = attrs.Factory(list)  # deadline_s of each place_order
    queries: int = 0
    hidden_queries: int = 0  # answer -2013 this many times first (read-after-write lag)
    query_errors: list[BaseException] = attrs.Factory(list)  # raised by the first queries
    gate: asyncio.Event | None = None
    name: str = "scripted"

    def accept(
        self, request: VenueOrderRequest, status: VenueOrderStatus = VenueOrderStatus.NEW
    ) -> VenueOrder:
        terms = request.terms
        order = VenueOrder(
            symbol=terms.symbol,
            exchange_order_id=str(1000 + len(self.accepted)),
            client_order_id=request.client_order_id,
            status=status,
            side=terms.side,
            type=terms.type,
            quantity=terms.quantity,
            executed_quantity=terms.quantity if status is VenueOrderStatus.FILLED else Decimal(0),
            price=terms.price or Decimal(0),
            average_price=terms.price or Decimal(0)
            if status is VenueOrderStatus.FILLED
            else Decimal(0),
            cumulative_quote=Decimal(0),
            update_time=1,
        )
        self.accepted[request.client_order_id] = order
        return order

    async def place_order(
        self, request: VenueOrderRequest, *, deadline_s: float | None = None
    ) -> VenueOrder:
        self.placed.append(request)
        self.deadlines.append(deadline_s)
        if self.gate is not None:
            await self.gate.wait()
        step = self.script.pop(0) if self.script else None
        if step is None:
            return self.accept(request)
        if isinstance(step, BaseException):
            raise step
        return step(self, request)  # type: ignore[no-any-return]

    async def query_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        self.queries += 1
        if self.query_errors:
            raise self.query_errors.pop(0)
        if self.hidden_queries > 0:
            self.hidden_queries -= 1
            raise VenueOrderNotFoundError("Order does not exist.", venue_code=-2013)
        found = self.accepted.get(client_order_id or "")
        if found is None:
            raise VenueOrderNotFoundError("Order does not exist.", venue_code=-2013)
        return found

    async def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        found = await self.query_order(symbol, client_order_id=client_order_id)
        canceled = attrs.evolve(found, status=VenueOrderStatus.CANCELED, update_time=2)
        self.accepted[found.client_order_id] = canceled
        return canceled

    async def cancel_all(self, symbol: str) -> None:
        for cid, order in list(self.accepted.items()):
            if order.symbol == symbol and order.status is VenueOrderStatus.NEW:
                self.accepted[cid] = attrs.evolve(
                    order, status=VenueOrderStatus.CANCELED, update_time=3
                )

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return [o for o in self.accepted.values() if o.status is VenueOrderStatus.NEW]

    async def orders_since(
        self, symbol: str, *, start_ms: int, limit: int = 1000
    ) -> list[VenueOrder]:
        return [o for o in self.accepted.values() if o.symbol == symbol][-limit:]

    async def user_trades(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        start_ms: int | None = None,
        limit: int = 500,
    ) -> list[VenueTrade]:
        return []

    async def exchange_info(self) -> ExchangeInfo:
        return ExchangeInfo(server_time=0, symbols={"BTCUSDT": BTC})

    async def mark_price(self, symbol: str) -> Decimal:
        return Decimal("50000")

    async def close(self) -> None:
        return None


BTC = SymbolRules(
    symbol="BTCUSDT",
    base_asset="BTC",
    min_price=Decimal("556.80"),
    max_price=Decimal("4529764"),
    tick_size=Decimal("0.10"),
    min_qty=Decimal("0.001"),
    max_qty=Decimal("1000"),
    step_size=Decimal("0.001"),
    market_min_qty=Decimal("0.001"),
    market_max_qty=Decimal("120"),
    market_step_size=Decimal("0.001"),
    min_notional=Decimal("100"),
    multiplier_up=Decimal("1.05"),
    multiplier_down=Decimal("0.95"),
    max_num_orders=200,
    max_num_algo_orders=10,
)
OPEN_STATES = {s for s in OrderState if s.is_open}
