"""Wire op -> OrderService call -> result map. One small handler per op, in a table.

Results (docs/wire.md, "Ops"): ``{"order": ...}`` for single-order ops, ``{"orders":
[...]}`` for lists, the service's own map for health/halt/resume.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from oexec.front.strategy_dispatch import STRATEGY_HANDLERS
from oexec.models import Order
from oexec.service.ports import OrderService
from oexec.wire import (
    CancelAll,
    CancelOrder,
    GetOrder,
    Halt,
    Health,
    OpenOrders,
    OrderHistory,
    PlaceOrder,
    Replay,
    Request,
    Resume,
    Trace,
    order_to_wire,
)

Result = dict[str, Any]


def _one(order: Order) -> Result:
    return {"order": order_to_wire(order)}


def _many(orders: Sequence[Order]) -> Result:
    return {"orders": [order_to_wire(order) for order in orders]}


async def _place_order(service: OrderService, request: PlaceOrder) -> Result:
    return _one(await service.place_order(request.intent))


async def _get_order(service: OrderService, request: GetOrder) -> Result:
    return _one(await service.get_order(order_id=request.order_id, request_id=request.request_id))


async def _cancel_order(service: OrderService, request: CancelOrder) -> Result:
    order = await service.cancel_order(order_id=request.order_id, request_id=request.request_id)
    return _one(order)


async def _cancel_all(service: OrderService, request: CancelAll) -> Result:
    return _many(await service.cancel_all(request.symbol))


async def _open_orders(service: OrderService, request: OpenOrders) -> Result:
    return _many(await service.open_orders(request.symbol))


async def _order_history(service: OrderService, request: OrderHistory) -> Result:
    orders = await service.order_history(
        request.symbol, limit=request.limit, start_ms=request.start_ms, end_ms=request.end_ms
    )
    return _many(orders)


async def _trace(service: OrderService, request: Trace) -> Result:
    return dict(await service.trace(order_id=request.order_id, request_id=request.request_id))


async def _health(service: OrderService, request: Health) -> Result:
    return dict(await service.health())


async def _halt(service: OrderService, request: Halt) -> Result:
    return dict(await service.halt(cancel_all=request.cancel_all))


async def _resume(service: OrderService, request: Resume) -> Result:
    return dict(await service.resume())


async def _replay(service: OrderService, request: Replay) -> Result:
    return dict(await service.replay(request.from_seq, topics=request.topics, limit=request.limit))


Handler = Callable[[OrderService, Any], Awaitable[Result]]

HANDLERS: dict[type[Request], Handler] = {
    PlaceOrder: _place_order,
    GetOrder: _get_order,
    CancelOrder: _cancel_order,
    CancelAll: _cancel_all,
    OpenOrders: _open_orders,
    OrderHistory: _order_history,
    Trace: _trace,
    Health: _health,
    Halt: _halt,
    Resume: _resume,
    Replay: _replay,
    **STRATEGY_HANDLERS,
}


async def dispatch(service: OrderService, request: Request) -> Result:
    """Call the service for ``request``; OexecErrors propagate to become error replies."""
    return await HANDLERS[type(request)](service, request)
