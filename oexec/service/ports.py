"""The narrow interfaces the order pipeline depends on. Adapters implement them.

The pipeline never imports a store, venue or socket module: it is handed objects that
satisfy these Protocols by the composition root (oexec/app.py). Tests hand it the real
adapters against real servers, or small in-memory ones for pure unit tests.

Size: ~500 lines, over the ~400 guideline on purpose: Protocols and records only, no
logic, so the core's whole contract with its adapters (store, venue, events, the
service the front end calls) reads in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import attrs

from oexec.errors import OexecError, VenueError
from oexec.models import (
    ExchangeInfo,
    Fill,
    Order,
    OrderIntent,
    OrderTerms,
    RateLimitRule,
    VenueOrder,
    VenueTrade,
)
from oexec.models.account import AccountSettingChange, Balance, Position
from oexec.models.enums import Side
from oexec.models.venue import (
    AccountConfigUpdate,
    AccountUpdate,
    MarginCall,
    OrderUpdate,
    StreamGap,
)


# --- store ------------------------------------------------------------------------------
@attrs.frozen(slots=True)
class ClaimResult:
    """Outcome of the atomic idempotency claim.

    ``claimed`` True: this caller owns the request_id and ``order`` was written in the
    same atomic step. False: someone already claimed it; ``order`` is theirs (as stored
    now) and ``reply`` their cached reply if it is final.

    ``durable``: set when the claim was decided before its store write finished (the
    embedded store's early claim, oexec/store/claim_log.py): the order may be sent now,
    and the write resolves this future (or fails it with StoreError) meanwhile. A reply
    to the client waits for it, so a reply still means "this claim is durable".
    """

    claimed: bool
    order: Order
    reply: bytes | None = None
    durable: asyncio.Future[None] | None = None


@attrs.frozen(slots=True)
class OutboxEntry:
    """Events a store write implied, not yet known to be published."""

    id: str
    body: bytes


def outbox_id_for_order(order: Order) -> str:
    """One entry per order version: a repeated save of the same version reuses it."""
    return f"o:{order.id}:{order.version}"


def outbox_id_for_fill(fill: Fill) -> str:
    return f"f:{fill.symbol}:{fill.trade_id}"


class OrderStore(Protocol):
    """Durable order state. Redis (shared, production) and SQLite (embedded) implement it.

    Guarantees every backend must keep (tests/store/ runs one suite over both):
    - ``claim`` is atomic: of N concurrent claims of one request_id exactly one wins,
      across processes sharing the backend; the order is durable when it returns - or,
      for an ``early`` claim, when its ``ClaimResult.durable`` resolves (the order may
      be sent before; a crash meanwhile cannot lose the claim, oexec/store/claim_log.py).
    - ``save`` is an optimistic compare-and-set on ``version``: it writes ``order``
      (whose version must be stored version + 1) or raises StoreConflictError.
    - ``add_fill`` returns False when (symbol, trade_id) was already recorded.
    - Outbox (docs/tracking.md, "Events survive a crash"): a write that implies events
      stores them (``events``, opaque bytes) in the same atomic step, under an id that
      is stable for that change (``outbox_id_for_order``/``outbox_id_for_fill``). They
      stay pending until ``outbox_ack``; ``outbox_take`` hands out the ones pending
      longer than a grace period, so a crash between the write and the publish delays
      an event but never loses it.
    - Owed fills: a save with ``owes_fills`` marks the order as one whose trades must be
      fetched (its filled quantity grew); the mark survives a crash until
      ``settle_fills``.
    """

    @property
    def uncertain_until_ms(self) -> int:
        """Until when (epoch ms) a request id this store does not know may still have
        reached the venue - a claim lost to a crash of the host, which the store detects
        (oexec/store/claim_log.py); 0: never. The pipeline asks the venue first till then."""
        ...

    async def start(self) -> None:
        """Connect/open and check the backend once; raises StoreError if it is unusable."""
        ...

    async def claim(
        self, order: Order, ttl_s: int, *, events: bytes | None = None, early: bool = False
    ) -> ClaimResult: ...

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
        """CAS write of ``order``; in the same atomic step, when given: its outbox entry
        (``events``), the cached reply of its request (``reply``, kept ``reply_ttl_s``)
        and the owed-fills mark."""
        ...

    async def release(self, order: Order) -> bool:
        """Undo a claim whose submit provably never left (throttled, breaker open, refused).

        Deletes the order and its idempotency key only if the stored order is still the
        claimed version (state SUBMITTING, same version); returns whether it did. A retry
        with the same request_id is then a fresh attempt.
        """
        ...

    async def save_reply(self, request_id: str, reply: bytes, ttl_s: int) -> None: ...

    async def get_reply(self, request_id: str) -> bytes | None: ...

    async def get(self, order_id: str) -> Order | None: ...

    async def get_by_request_id(self, request_id: str) -> Order | None: ...

    async def get_by_client_order_id(self, client_order_id: str) -> Order | None: ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    async def open_order_count(self, symbol: str | None = None) -> int:
        """How many non-terminal orders (all, or of ``symbol``): an index count, no scan."""
        ...

    async def history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]: ...

    async def state_history(self, order_id: str) -> list[dict[str, Any]]: ...

    async def add_fill(self, fill: Fill, *, events: bytes | None = None) -> bool:
        """Record ``fill`` once (and its outbox entry with it); False if already recorded."""
        ...

    async def outbox_take(self, older_than_ms: int, limit: int = 500) -> list[OutboxEntry]:
        """Pending outbox entries written before ``older_than_ms`` (epoch ms), oldest
        first; each is re-stamped with now, so another taker sees it only after the
        grace period again (at-least-once, without a stampede)."""
        ...

    async def outbox_ack(self, entry_ids: Sequence[str]) -> None:
        """Forget entries whose events are out; unknown ids are ignored."""
        ...

    async def outbox_put(self, entry_id: str, events: bytes) -> None:
        """Store an outbox entry that goes with no order change (the account's position
        and balance events, issue 17); the same id again replaces it."""
        ...

    async def owed_fills(self) -> list[str]:
        """Ids of orders marked as owing trades (see ``save(owes_fills=True)``)."""
        ...

    async def settle_fills(self, order_id: str) -> None:
        """Clear the owed-fills mark of ``order_id`` (its trades are all recorded)."""
        ...

    async def fills(self, order_id: str) -> list[Fill]: ...

    async def append_journal(self, client_order_id: str, entries: Sequence[bytes]) -> None:
        """Append audit-journal entries (opaque JSON bytes) for one order, oldest first.

        Append-only and bounded: at most JOURNAL_MAX_ENTRIES per order are kept (the
        oldest go first) and they expire with the order (order TTL).
        """
        ...

    async def append_journal_many(self, batch: Mapping[str, Sequence[bytes]]) -> None:
        """``append_journal`` for many orders in one store round trip (one Redis
        transaction, one SQLite transaction): the journal's flush, batched so that its
        cost does not grow with the number of orders in the batch."""
        ...

    async def journal(self, client_order_id: str) -> list[bytes]:
        """The journal entries of one order, oldest first."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


# --- venue ------------------------------------------------------------------------------
#: One of the venue's rate windows: (kind, interval_s), kinds as in ``RateLimitRule``
#: (``REQUEST_WEIGHT``, ``ORDERS``, ``RAW_REQUESTS``).
RateWindow = tuple[str, int]


class RequestGate(Protocol):
    """The client-side view of the venue's rate limits; the venue adapter calls it.

    ``acquire`` before every request with the endpoint's weight and order count (waits
    for tokens, or raises ThrottleError at once if it could not send before
    ``deadline_s`` from now); ``observe`` with the venue's own count of each window it
    reported (``{window: used}``, read by the adapter from its answers) so the local view
    is corrected — with ``window_age_s``, how far into each window the venue is when its
    windows are fixed and aligned to its clock (the count then covers only that much
    time; without it the count is taken as the last full interval's); ``pause`` when the
    venue bans traffic, for as long as it says.
    """

    async def acquire(self, *, weight: int, orders: int, deadline_s: float | None) -> None: ...

    def observe(
        self,
        used: Mapping[RateWindow, int],
        window_age_s: Mapping[RateWindow, float] | None = None,
    ) -> None: ...

    def pause(self, retry_after_s: float) -> None: ...


@attrs.frozen(slots=True)
class VenueOrderRequest:
    """A new order as sent to the venue: its terms and the client order id derived for it."""

    client_order_id: str
    terms: OrderTerms


class Venue(Protocol):
    """One exchange account. Every method raises VenueError subclasses, or ThrottleError
    from the RequestGate when a request could not be sent in time (it was never sent).

    ``place_order`` raises VenueUnknownOutcomeError whenever the request may have reached
    the venue without a definite answer; callers resolve it with ``query_order`` by
    client order id and never resend blindly.
    """

    name: str

    async def exchange_info(self) -> ExchangeInfo: ...

    async def mark_price(self, symbol: str) -> Decimal: ...

    async def place_order(
        self, request: VenueOrderRequest, *, deadline_s: float | None = None
    ) -> VenueOrder:
        """``deadline_s``: how long the request may wait (rate-limit gate) before it is
        sent; past it the request is refused unsent (ThrottleError). None: the venue's
        default wait."""
        ...

    async def query_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder: ...

    async def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder: ...

    async def cancel_all(self, symbol: str) -> None: ...

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...

    async def orders_since(
        self, symbol: str, *, start_ms: int, limit: int = 1000
    ) -> list[VenueOrder]:
        """Every order of ``symbol`` created at or after ``start_ms``, open or not, at most
        ``limit`` (fewer than ``limit``: that is all of them). One request for many
        orders' truth: reconciliation after a gap (oexec/service/bulk_reads.py)."""
        ...

    async def user_trades(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        start_ms: int | None = None,
        limit: int = 500,
    ) -> list[VenueTrade]:
        """The trades of one order, or (``start_ms``) of every order of ``symbol`` since
        then, at most ``limit``."""
        ...

    async def close(self) -> None: ...


class AmendVenue(Protocol):
    """The venue's in-place amend of a resting LIMIT order (``PUT /fapi/v1/order``:
    the order keeps its id; the venue decides its queue priority). Never retried: an
    unknown outcome is resolved by querying the order."""

    async def modify_order(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        *,
        client_order_id: str | None = None,
        order_id: str | None = None,
    ) -> VenueOrder: ...


class BatchVenue(Protocol):
    """Several orders in one venue request (``batchOrders``): one result or one
    typed error per element, in request order. ``batch_place`` takes up to
    ``MAX_BATCH_PLACE`` requests; a whole-request failure raises like ``place_order``."""

    async def batch_place(
        self, requests: Sequence[VenueOrderRequest], *, deadline_s: float | None = None
    ) -> list[VenueOrder | VenueError]: ...

    async def batch_cancel(
        self, symbol: str, *, client_order_ids: Sequence[str] = (), order_ids: Sequence[str] = ()
    ) -> list[VenueOrder | VenueError]: ...


class AccountVenue(Protocol):
    """The account's positions, balances and per-symbol settings, read from the venue
    (at start and after a user-stream gap; queries are served from the daemon's view)."""

    async def position_risk(self, symbol: str | None = None) -> list[Position]: ...

    async def account_balances(self) -> list[Balance]: ...

    async def set_leverage(self, symbol: str, leverage: int) -> AccountSettingChange: ...

    async def set_margin_type(self, symbol: str, margin_type: str) -> AccountSettingChange: ...


class UserStream(Protocol):
    """The account's private event stream (order updates, trades, account updates)."""

    def events(
        self,
    ) -> AsyncIterator[OrderUpdate | AccountUpdate | AccountConfigUpdate | MarginCall | StreamGap]:
        """Updates in arrival order; a StreamGap whenever events may have been missed.
        AccountConfigUpdate (leverage) and MarginCall become position events (issue 17)."""
        ...

    async def close(self, release_key: bool = False) -> None:
        """Stop. ``release_key``: also give up the account's stream subscription, which
        daemons of one deployment share (only the last one to stop does)."""
        ...


#: (symbol, timer ms) -> arm the venue's dead-man switch; 0 disarms it.
DeadManArm = Callable[[str, int], Awaitable[None]]
#: on_state -> a user stream; ``on_state`` hears "connected" and every other state.
UserStreamFactory = Callable[[Callable[[str], None]], UserStream]


@attrs.frozen
class VenuePolicy:
    """What the core must know about a venue's behaviour, as data its adapter hands over
    (so no module of the core names a venue).

    - ``client_order_id_pattern``: the ids the venue accepts (a regex, full match); the
      ids the core derives are checked against it once, at start;
    - ``not_found_grace_ms``: after a submit was sent, how long a "no such order" answer
      proves nothing (the request may still be accepted, or the venue's reads lag its
      writes); after it, not found means never placed;
    - ``all_symbols_open_orders_cost``: what one open-orders query over every symbol
      costs, counted in per-symbol queries (the tracker picks the cheaper);
    - ``rate_windows``: the venue's published rate limits, enforced until its exchange
      info says otherwise.
    """

    name: str
    client_order_id_pattern: str
    not_found_grace_ms: int
    all_symbols_open_orders_cost: int = 1
    rate_windows: tuple[RateLimitRule, ...] = ()


@attrs.frozen
class VenueKit:
    """A started venue as its package hands it to the composition root
    (``oexec.venue.open_venue``): the ports it fills and the capabilities it has."""

    venue: Venue
    policy: VenuePolicy
    user_stream: UserStreamFactory | None = None  # None: no push stream (polls only)
    dead_man: DeadManArm | None = None
    amend: AmendVenue | None = None
    batch: BatchVenue | None = None
    account: AccountVenue | None = None


# --- events -----------------------------------------------------------------------------
class EventSink(Protocol):
    """Where order and fill events go (ZeroMQ PUB, Redis Stream, ...).

    ``publish`` assigns the event's sequence number and returns it, or returns 0 when the
    sequence is assigned later (the Redis-shared sequence of several daemons, issue 8).
    """

    async def publish(self, topic: str, payload: dict[str, Any]) -> int: ...

    async def flush(self) -> None:
        """Return once every event published before this call is out (on PUB and in
        every copy the sink keeps); the outbox acknowledges entries only after it."""
        ...

    async def close(self) -> None: ...


class EventReplay(Protocol):
    """The event log behind the ``replay`` op (issue 17; docs/wire.md, "replay")."""

    async def replay(self, from_seq: int, topics: Sequence[str], limit: int) -> dict[str, Any]:
        """One page of logged events with seq >= ``from_seq``: ``events``, ``next_seq``,
        ``last_seq``, ``oldest_seq``. Raises ReplayExpiredError (older than the
        retention) or OexecError REPLAY_UNAVAILABLE (no log)."""
        ...


class EventTopics:
    ORDER_CREATED = "order.created"
    ORDER_UPDATED = "order.updated"
    ORDER_FILLED = "order.filled"
    ORDER_CANCELED = "order.canceled"
    ORDER_REJECTED = "order.rejected"
    FILL = "fill"
    POSITION = "position"  # issue 17: a leg changed (ACCOUNT_UPDATE)
    BALANCE = "balance"  # issue 17: an asset's balance changed (ACCOUNT_UPDATE)
    ALL: Sequence[str] = (
        ORDER_CREATED,
        ORDER_UPDATED,
        ORDER_FILLED,
        ORDER_CANCELED,
        ORDER_REJECTED,
        FILL,
        POSITION,
        BALANCE,
    )


# --- the service the front end calls ----------------------------------------------------
class OrderService(Protocol):
    """What a client can ask of the daemon; the front end maps wire ops onto this.

    Every method raises OexecError subclasses only (typed error reply); anything else is
    a bug and becomes INTERNAL. Lookups take an order id or a request id.
    """

    async def place_order(self, intent: OrderIntent) -> Order: ...

    async def get_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order: ...

    async def cancel_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order: ...

    async def cancel_all(self, symbol: str) -> list[Order]: ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    async def order_history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]: ...

    async def trace(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        """The audit trail of one order: states, fills, journaled requests and answers."""
        ...

    async def health(self) -> dict[str, Any]: ...

    async def halt(self, *, cancel_all: bool = False) -> dict[str, Any]: ...

    async def resume(self) -> dict[str, Any]: ...

    # -- events (issue 17) -------------------------------------------------------------------
    async def replay(
        self, from_seq: int, *, topics: Sequence[str] = (), limit: int = 500
    ) -> dict[str, Any]:
        """Published events from ``from_seq`` on, one page (EventReplay)."""
        ...

    # -- beyond one order (issue 16) ---------------------------------------------------------
    async def modify_order(
        self,
        *,
        order_id: str | None = None,
        request_id: str | None = None,
        price: Decimal | None = None,
        quantity: Decimal | None = None,
    ) -> Order:
        """Amend a resting LIMIT order's price and/or quantity in place."""
        ...

    async def place_orders(self, intents: Sequence[OrderIntent]) -> list[Order | OexecError]:
        """Each intent as ``place_order`` would (idempotent per request_id); one order or
        one typed error per intent, in order."""
        ...

    async def cancel_orders(
        self, *, order_ids: Sequence[str] = (), request_ids: Sequence[str] = ()
    ) -> list[Order | OexecError]: ...

    async def positions(self, symbol: str | None = None) -> dict[str, Any]: ...

    async def balances(self) -> dict[str, Any]: ...

    async def set_leverage(self, symbol: str, leverage: int) -> dict[str, Any]: ...

    async def set_margin_type(self, symbol: str, margin_type: str) -> dict[str, Any]: ...
