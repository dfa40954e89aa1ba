"""Wire ops beyond one order -> OrderService calls -> result maps (docs/wire.md, "Ops").

Batch results keep the request's order: ``{"results": [{"order": ...} | {"error":
{code, message, details}}, ...]}``; an element that failed its field checks is answered
with its own error without reaching the service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from oexec.errors import OexecError
from oexec.models import Order, OrderIntent
from oexec.service.ports import OrderService
from oexec.wire import order_to_wire
from oexec.wire.strategy import (
    Balances,
    CancelOrders,
    ModifyOrder,
    PlaceOrders,
    Positions,
    SetLeverage,
    SetMarginType,
    error_to_wire,
)

Result = dict[str, Any]


def element_to_wire(result: Order | OexecError) -> Result:
    if isinstance(result, Order):
        return {"order": order_to_wire(result)}
    return {"error": error_to_wire(result)}


def _results(results: Sequence[Order | OexecError]) -> Result:
    return {"results": [element_to_wire(result) for result in results]}


async def _modify_order(service: OrderService, request: ModifyOrder) -> Result:
    order = await service.modify_order(
        order_id=request.order_id,
        request_id=request.request_id,
        price=request.price,
        quantity=request.quantity,
    )
    return {"order": order_to_wire(order)}


async def _place_orders(service: OrderService, request: PlaceOrders) -> Result:
    intents = [e for e in request.elements if isinstance(e, OrderIntent)]
    placed = iter(await service.place_orders(intents) if intents else [])
    return _results([next(placed) if isinstance(e, OrderIntent) else e for e in request.elements])


async def _cancel_orders(service: OrderService, request: CancelOrders) -> Result:
    results = await service.cancel_orders(
        order_ids=request.order_ids, request_ids=request.request_ids
    )
    return _results(results)


async def _positions(service: OrderService, request: Positions) -> Result:
    return dict(await service.positions(request.symbol))


async def _balances(service: OrderService, request: Balances) -> Result:
    return dict(await service.balances())


async def _set_leverage(service: OrderService, request: SetLeverage) -> Result:
    return dict(await service.set_leverage(request.symbol, request.leverage))


async def _set_margin_type(service: OrderService, request: SetMarginType) -> Result:
    return dict(await service.set_margin_type(request.symbol, request.margin_type))


STRATEGY_HANDLERS: dict[type[Any], Callable[[OrderService, Any], Awaitable[Result]]] = {
    ModifyOrder: _modify_order,
    PlaceOrders: _place_orders,
    CancelOrders: _cancel_orders,
    Positions: _positions,
    Balances: _balances,
    SetLeverage: _set_leverage,
    SetMarginType: _set_margin_type,
}
