"""Many orders in one request: ``place_orders`` and ``cancel_orders`` (issue 16).

Why this shape: a batch element must be exactly as safe as a single order — the same
validation, risk, idempotency claim, unknown-outcome resolution and settling. So each
element runs the single-order path (``OrderService.place_order`` / ``cancel_order``)
unchanged, concurrently, and only the venue call is shared: ``BatchingVenue`` sits
under that path (beneath the journal) and, while a batch is open, gathers the submits of
its elements into the venue's batch endpoints (``POST /fapi/v1/batchOrders``, 5
orders; ``DELETE /fapi/v1/batchOrders``, 10 ids of one symbol). What the venue answers
per element goes back to that element's own submit: an order, or the element's error.
A whole-request failure reaches every element of that venue call, and each handles it as
a single submit would (released if provably unsent, resolved by client order id if the
outcome is unknown — never resent). Outside a batch every call passes straight through.

A venue call leaves when it is full, when every element still outstanding is waiting in
it (the others were refused before the venue, or were duplicates), or ``linger_s`` after
its first element arrived (an element can be held up, e.g. a duplicate waiting for the
first request's outcome).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

import attrs

from oexec.errors import ErrorCode, OexecError, VenueError
from oexec.models import Order, OrderIntent, VenueOrder
from oexec.service.client_ids import client_order_id_for
from oexec.service.ports import BatchVenue, Venue, VenueOrderRequest
from oexec.service.venue_wrapper import VenueWrapper

log = logging.getLogger("oexec.batch")

#: Most orders one place_orders/cancel_orders request may carry (docs/wire.md).
MAX_BATCH_ELEMENTS = 50
#: Venue caps per call (reference §C.11): new orders per batchOrders, ids per batch cancel.
VENUE_PLACE_CHUNK = 5
VENUE_CANCEL_CHUNK = 10
LINGER_S = 0.02


class _Waiting:
    """One element's venue call, waiting for its batch to leave."""

    __slots__ = ("future", "item")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.future: asyncio.Future[VenueOrder] = asyncio.get_running_loop().create_future()


@attrs.define
class _Group:
    """The elements of one open batch: who may still arrive, who waits in which call."""

    outstanding: set[str]  # client order ids that may still call the venue
    chunk: int
    send: Callable[[str, list[_Waiting]], Coroutine[Any, Any, None]]
    linger_s: float
    waiting: dict[str, list[_Waiting]] = attrs.field(factory=dict)  # by call key
    timers: dict[str, asyncio.TimerHandle] = attrs.field(factory=dict)
    tasks: set[asyncio.Task[None]] = attrs.field(factory=set)

    def arrive(self, key: str, client_order_id: str, item: Any) -> _Waiting:
        waiting = _Waiting(item)
        self.waiting.setdefault(key, []).append(waiting)
        if key not in self.timers:
            loop = asyncio.get_running_loop()
            self.timers[key] = loop.call_later(self.linger_s, self._flush, key, True)
        self.outstanding.discard(client_order_id)
        self.flush_ready()
        return waiting

    def done(self, client_order_id: str) -> None:
        """An element finished (or never reached the venue): stop waiting for it."""
        self.outstanding.discard(client_order_id)
        self.flush_ready()

    def flush_ready(self) -> None:
        for key in list(self.waiting):
            self._flush(key, force=not self.outstanding)

    def _flush(self, key: str, force: bool) -> None:
        queue = self.waiting.get(key, [])
        while len(queue) >= self.chunk or (force and queue):
            batch, queue[:] = queue[: self.chunk], queue[self.chunk :]
            task = asyncio.get_running_loop().create_task(self.send(key, batch))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        if not queue:
            self.waiting.pop(key, None)
            timer = self.timers.pop(key, None)
            if timer is not None:
                timer.cancel()


class BatchingVenue(VenueWrapper):
    """The Venue port for the order path, gathering a batch's submits and cancels into the
    venue's batch endpoints (see the module docstring). Everything else passes through."""

    def __init__(self, inner: Venue, batch: BatchVenue, *, linger_s: float = LINGER_S) -> None:
        super().__init__(inner)
        self.batch = batch
        self.linger_s = linger_s
        self._places: dict[str, _Group] = {}  # client order id -> its open batch
        self._cancels: dict[str, _Group] = {}
        self.venue_calls = 0  # batch calls made (for tests and metrics)

    # -- opening a batch -------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def placing(self, client_order_ids: Sequence[str]) -> AsyncIterator[_Group]:
        group = _Group(set(client_order_ids), VENUE_PLACE_CHUNK, self._send_places, self.linger_s)
        async with self._open(self._places, group, client_order_ids):
            yield group

    @contextlib.asynccontextmanager
    async def canceling(self, client_order_ids: Sequence[str]) -> AsyncIterator[_Group]:
        group = _Group(set(client_order_ids), VENUE_CANCEL_CHUNK, self._send_cancels, self.linger_s)
        async with self._open(self._cancels, group, client_order_ids):
            yield group

    @contextlib.asynccontextmanager
    async def _open(
        self, registry: dict[str, _Group], group: _Group, ids: Sequence[str]
    ) -> AsyncIterator[None]:
        for client_order_id in ids:
            registry[client_order_id] = group
        try:
            yield
        finally:
            for client_order_id in ids:
                if registry.get(client_order_id) is group:
                    del registry[client_order_id]
            group.outstanding.clear()
            group.flush_ready()  # nothing can be left waiting once its elements ended
            if group.tasks:
                await asyncio.wait(set(group.tasks))

    # -- the order path's calls ------------------------------------------------------------
    async def place_order(
        self, request: VenueOrderRequest, *, deadline_s: float | None = None
    ) -> VenueOrder:
        group = self._places.get(request.client_order_id)
        if group is None:
            return await self.inner.place_order(request, deadline_s=deadline_s)
        item = (request, deadline_s)
        return await group.arrive("", request.client_order_id, item).future

    async def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        group = self._cancels.get(client_order_id or "") if order_id is None else None
        if group is None or client_order_id is None:
            return await self.inner.cancel_order(
                symbol, client_order_id=client_order_id, order_id=order_id
            )
        return await group.arrive(symbol, client_order_id, client_order_id).future

    async def _send_places(self, _key: str, batch: list[_Waiting]) -> None:
        requests: list[VenueOrderRequest] = [w.item[0] for w in batch]
        # the call may wait for a rate-limit token no longer than its most urgent element
        deadlines = [w.item[1] for w in batch if w.item[1] is not None]
        self.venue_calls += 1
        try:
            results = await self.batch.batch_place(
                requests, deadline_s=min(deadlines) if deadlines else None
            )
        except BaseException as exc:
            _fail_all(batch, exc)
            return
        _settle(batch, results)

    async def _send_cancels(self, symbol: str, batch: list[_Waiting]) -> None:
        ids: list[str] = [w.item for w in batch]
        self.venue_calls += 1
        try:
            results = await self.batch.batch_cancel(symbol, client_order_ids=ids)
        except BaseException as exc:
            _fail_all(batch, exc)
            return
        if len(results) != len(batch):
            _fail_all(batch, VenueError("batch cancel answer does not match the request"))
            return
        _settle(batch, results)


def _fail_all(batch: list[_Waiting], exc: BaseException) -> None:
    for waiting in batch:
        if not waiting.future.done():
            waiting.future.set_exception(exc)


def _settle(batch: list[_Waiting], results: Sequence[VenueOrder | VenueError]) -> None:
    for waiting, result in zip(batch, results, strict=True):
        if waiting.future.done():
            continue
        if isinstance(result, BaseException):
            waiting.future.set_exception(result)
        else:
            waiting.future.set_result(result)


# -- the service side ----------------------------------------------------------------------
PlaceOne = Callable[[OrderIntent], Awaitable[Order]]
CancelOne = Callable[..., Awaitable[Order]]
Lookup = Callable[..., Awaitable[Order]]


class BatchOrders:
    """``place_orders`` / ``cancel_orders``: the single-order path per element, the venue
    calls batched by ``BatchingVenue``. One order or one OexecError per element."""

    def __init__(
        self,
        venue: BatchingVenue,
        *,
        place_one: PlaceOne,
        cancel_one: CancelOne,
        lookup: Lookup,
    ) -> None:
        self.venue = venue
        self.place_one = place_one
        self.cancel_one = cancel_one
        self.lookup = lookup

    async def place_orders(self, intents: Sequence[OrderIntent]) -> list[Order | OexecError]:
        _check_size(len(intents))
        ids = [client_order_id_for(intent.request_id) for intent in intents]
        async with self.venue.placing(ids) as group:

            async def one(intent: OrderIntent, client_order_id: str) -> Order:
                try:
                    return await self.place_one(intent)
                finally:
                    group.done(client_order_id)

            results = await asyncio.gather(
                *(one(intent, cid) for intent, cid in zip(intents, ids, strict=True)),
                return_exceptions=True,
            )
        return [_element(result) for result in results]

    async def cancel_orders(
        self, *, order_ids: Sequence[str] = (), request_ids: Sequence[str] = ()
    ) -> list[Order | OexecError]:
        keys = [("order_id", key) for key in order_ids] + [
            ("request_id", key) for key in request_ids
        ]
        _check_size(len(keys))
        found = await asyncio.gather(
            *(self.lookup(**{kind: key}) for kind, key in keys), return_exceptions=True
        )
        ids = [order.client_order_id for order in found if isinstance(order, Order)]
        async with self.venue.canceling(ids) as group:

            async def one(kind: str, key: str, order: Order | BaseException) -> Order:
                if isinstance(order, BaseException):
                    raise order
                try:
                    return await self.cancel_one(**{kind: key})
                finally:
                    group.done(order.client_order_id)

            results = await asyncio.gather(
                *(one(kind, key, order) for (kind, key), order in zip(keys, found, strict=True)),
                return_exceptions=True,
            )
        return [_element(result) for result in results]


def _check_size(count: int) -> None:
    if not 1 <= count <= MAX_BATCH_ELEMENTS:
        raise OexecError(
            f"a batch holds 1..{MAX_BATCH_ELEMENTS} orders, got {count}",
            code=ErrorCode.BAD_REQUEST,
            details={"field": "orders", "count": count, "max": MAX_BATCH_ELEMENTS},
        )


def _element(result: Order | BaseException) -> Order | OexecError:
    if isinstance(result, (Order, OexecError)):
        return result
    if isinstance(result, asyncio.CancelledError):
        raise result
    log.error("batch element failed unexpectedly", exc_info=result)
    return OexecError("internal error", code=ErrorCode.INTERNAL)
