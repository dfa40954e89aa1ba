"""Order operations after validation: place, find, cancel, modify, batches, queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oexec.sim.engine import book, filters, matching, placement
from oexec.sim.engine import params as p
from oexec.sim.engine.errors import SimError, invalid_value, no_such_order, unknown_order
from oexec.sim.engine.orders import Order, Status
from oexec.sim.engine.params import OrderType, RespType, Side, TimeInForce
from oexec.sim.engine.state import State

Json = dict[str, Any]
MAX_BATCH_PLACE = 5
MAX_BATCH_CANCEL = 10
MAX_LIMIT = 1000
ER_GTX = 11


def place(state: State, account_id: str, params: p.Params) -> Json:
    """Validate, accept and run one order; the ACK or RESULT body."""
    account = state.account(account_id)
    try:
        resp_type = p.enum(params, "newOrderRespType", RespType) or RespType.ACK
        order = placement.build(state, account, params)
    except SimError:
        state.rejected += 1
        raise
    order.order_id, order.seq = state.new_order_id(), state.new_seq()
    order.update_time = order.time
    state.add_order(order)
    state.accepted += 1
    ack = order.to_json()
    matching.start(state, order)
    return order.to_json() if resp_type is RespType.RESULT else ack


def find(state: State, account_id: str, params: p.Params) -> Order | None:
    """The order named by orderId (wins) or origClientOrderId, on the given symbol."""
    symbol = state.spec(p.required(params, "symbol")).symbol
    order_id = p.integer(params, "orderId")
    client = p.text(params, "origClientOrderId")
    if order_id is None and client is None:
        raise SimError(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    if order_id is not None:
        found = state.orders.get(order_id)
        if found is None or found.account_id != account_id or found.symbol != symbol:
            return None
        return found
    mine = [o for o in state.orders.values() if o.account_id == account_id and o.symbol == symbol]
    named = [o for o in mine if o.client_order_id == client]
    open_ones = [o for o in named if o.is_open]
    chosen = open_ones or named
    return chosen[-1] if chosen else None


def cancel(state: State, account_id: str, params: p.Params) -> Json:
    order = find(state, account_id, params)
    if order is None or not order.is_open:
        raise unknown_order()
    matching.close(state, order, Status.CANCELED)
    return order.to_json()


def modify(state: State, account_id: str, params: p.Params) -> Json:
    """PUT /fapi/v1/order (§C.9): re-queued at the new price/quantity, or cancelled."""
    order = find(state, account_id, params)
    side = p.required_enum(params, "side", Side)
    qty = p.required_decimal(params, "quantity")
    price = p.required_decimal(params, "price")
    if order is None or not order.is_open:
        raise no_such_order()
    if order.orig_type is not OrderType.LIMIT:
        raise SimError(-5025, "Only limit order is supported.")
    if side is not order.side:
        raise invalid_value("side")
    if qty == order.orig_qty and price == order.price:
        raise SimError(-5027, "No need to modify the order.")
    market = state.markets[order.symbol]
    filters.check_price(market.spec, price)
    filters.check_quantity(market.spec, order.type, qty)
    filters.check_percent_price(market.spec, side, price, market.mark)
    if not order.reduce_only and price * qty < market.spec.min_notional:
        raise SimError(-5029, "Order's notional must be no smaller than the minimum.")
    crosses = book.within(side, book.best(market, side), price)
    if qty <= order.executed_qty:
        matching.close(state, order, Status.CANCELED)
    elif order.time_in_force is TimeInForce.GTX and crosses:
        matching.close(state, order, Status.EXPIRED, ER_GTX)
    else:
        order.orig_qty, order.price, order.seq = qty, price, state.new_seq()
        order.modify_count += 1
        order.update_time = state.now_ms()
        matching.publish(state, order, "AMENDMENT")
        if crosses:
            matching.take(state, order, price)
    return order.to_json() | {"pair": order.symbol}


def batch(params: p.Params, name: str, limit: int, run: Callable[[p.Params], Json]) -> list[Json]:
    """Run each element independently; errors become ``{code, msg}`` in request order."""
    items = p.json_list(params, name)
    if not items or len(items) > limit:
        raise SimError(-4082, "Invalid number of batch place orders.")
    results: list[Json] = []
    for item in items:
        try:
            results.append(run(p.string_map(item, name)))
        except SimError as error:
            results.append(error.to_json())
    return results


def batch_cancel(state: State, account_id: str, params: p.Params) -> list[Json]:
    symbol = p.required(params, "symbol")
    state.spec(symbol)
    if p.text(params, "orderIdList") is not None:
        key, ids = "orderId", p.json_list(params, "orderIdList")
    elif p.text(params, "origClientOrderIdList") is not None:
        key, ids = "origClientOrderId", p.json_list(params, "origClientOrderIdList")
    else:
        raise SimError(-1102, "Param 'orderIdList' or 'origClientOrderIdList' must be sent.")
    if not ids or len(ids) > MAX_BATCH_CANCEL:
        raise SimError(-4082, "Invalid number of batch cancel orders.")
    results: list[Json] = []
    for value in ids:
        try:
            results.append(cancel(state, account_id, {"symbol": symbol, key: str(value)}))
        except SimError as error:
            results.append(error.to_json())
    return results


def limit_of(params: p.Params, default: int = 500) -> int:
    limit = p.integer(params, "limit") or default
    return max(1, min(limit, MAX_LIMIT))


def in_window(time: int, params: p.Params) -> bool:
    start, end = p.integer(params, "startTime"), p.integer(params, "endTime")
    return (start is None or time >= start) and (end is None or time <= end)


def all_orders(state: State, account_id: str, params: p.Params) -> list[Json]:
    symbol = state.spec(p.required(params, "symbol")).symbol
    first = p.integer(params, "orderId") or 0
    rows = [
        o
        for o in state.orders.values()
        if o.account_id == account_id
        and o.symbol == symbol
        and o.order_id >= first
        and in_window(o.time, params)
    ]
    return (
        [o.to_json() for o in rows[: limit_of(params)]]
        if first
        else [o.to_json() for o in rows[-limit_of(params) :]]
    )


def user_trades(state: State, account_id: str, params: p.Params) -> list[Json]:
    symbol = state.spec(p.required(params, "symbol")).symbol
    order_id, from_id = p.integer(params, "orderId"), p.integer(params, "fromId")
    # One order's trades need not scan every order ever placed (bench, issue 10).
    candidates = (
        state.orders.values()
        if order_id is None
        else [o for o in (state.orders.get(order_id),) if o is not None]
    )
    fills = [
        f
        for o in candidates
        if o.account_id == account_id and o.symbol == symbol
        for f in o.fills
        if (order_id is None or f.order_id == order_id)
        and (from_id is None or f.trade_id >= from_id)
        and in_window(f.time, params)
    ]
    fills.sort(key=lambda f: f.trade_id)
    limit = limit_of(params)
    chosen = fills[:limit] if from_id is not None else fills[-limit:]
    return [f.to_json() for f in chosen]
