"""Executing orders: taker walks, maker fills on price moves, triggers, expiry.

Every state change emits the venue's events in venue order: NEW; per fill TRADE_LITE,
ORDER_TRADE_UPDATE (x=TRADE), ACCOUNT_UPDATE (m=ORDER); then EXPIRED/CANCELED if any.
"""

from __future__ import annotations

from decimal import Decimal

from oexec.sim.engine import book, events, income, tape
from oexec.sim.engine.numbers import ZERO, money
from oexec.sim.engine.orders import Fill, Order, Status
from oexec.sim.engine.params import OrderType, PositionSide, Side, TimeInForce
from oexec.sim.engine.state import Market, State
from oexec.sim.engine.triggers import WORKING_TYPE, observe

#: Expiry reasons (``er``, §G.5).
ER_IOC = 2
ER_REDUCE_ONLY = 4
ER_MARKET = 9
ER_FOK = 10
_REMAINDER_REASON: dict[TimeInForce, int] = {TimeInForce.IOC: ER_IOC, TimeInForce.FOK: ER_FOK}


def publish(state: State, order: Order, execution: str, fill: Fill | None = None) -> None:
    notional = state.order_notional(order.account_id, order.symbol)
    event = events.order_trade_update(order, state.now_ms(), execution, fill, notional)
    state.emit(order.account_id, event)


def reducible(state: State, order: Order) -> Decimal:
    """How much a reduce-only/closePosition order may still trade without flipping."""
    account = state.account(order.account_id)
    amount = account.position(order.symbol, order.position_side).amount
    if order.position_side is PositionSide.BOTH:
        closes = amount < 0 if order.side is Side.BUY else amount > 0
        return abs(amount) if closes else ZERO
    return abs(amount)


def _cap(state: State, order: Order) -> Decimal:
    if order.reduce_only or order.close_position:
        return min(order.remaining, reducible(state, order))
    return order.remaining


def fill(state: State, order: Order, price: Decimal, qty: Decimal, maker: bool) -> None:
    """Book one trade: order, position, wallet, fees, market stats, then the events."""
    account = state.account(order.account_id)
    market = state.markets[order.symbol]
    now = state.now_ms()
    fee = money(price * qty * (state.fees.maker if maker else state.fees.taker))
    pnl = account.apply_fill(order.symbol, order.position_side, order.side, qty, price)
    account.charge(fee)
    trade = Fill(
        trade_id=state.new_trade_id(),
        order_id=order.order_id,
        symbol=order.symbol,
        side=order.side,
        position_side=order.position_side,
        price=price,
        qty=qty,
        commission=fee,
        commission_asset="USDT",
        realized_pnl=pnl,
        maker=maker,
        time=now,
    )
    order.fills.append(trade)
    order.executed_qty += qty
    order.cum_quote += price * qty
    order.status = Status.FILLED if order.remaining == 0 else Status.PARTIALLY_FILLED
    order.update_time = account.update_time = now
    position = account.position(order.symbol, order.position_side)
    position.update_time = now
    market.volume += qty
    market.quote_volume += price * qty
    market.trades += 1
    state.trades += 1
    buyer_maker = (order.side is Side.BUY) == maker
    public = tape.Trade(trade.trade_id, price, qty, now, buyer_maker)
    state.tapes[order.symbol].add_trade(public)
    state.market_trade(order.symbol, public, moved=False)
    income.record(state, order.account_id, order.symbol, "REALIZED_PNL", pnl, str(trade.trade_id))
    income.record(state, order.account_id, order.symbol, "COMMISSION", -fee, str(trade.trade_id))
    state.emit(order.account_id, events.trade_lite(order, trade, now))
    publish(state, order, "TRADE", trade)
    state.emit(order.account_id, events.account_update(account, now, [position], state.marks()))


def close(state: State, order: Order, status: Status, reason: int = 0) -> None:
    """End an open order as CANCELED or EXPIRED (with expiry reason ``er``)."""
    order.status = status
    order.expire_reason = reason
    order.update_time = state.now_ms()
    publish(state, order, status.value)


def take(state: State, order: Order, limit: Decimal) -> None:
    """Walk the synthetic book as taker for the order's remaining (capped) quantity."""
    market = state.markets[order.symbol]
    for price, qty in book.walk(market, order.side, _cap(state, order), limit):
        fill(state, order, price, qty, maker=False)


def execute(state: State, order: Order) -> None:
    """Run a (working) MARKET or LIMIT order against the book right after it goes live."""
    market = state.markets[order.symbol]
    if order.type is OrderType.MARKET:
        take(state, order, book.market_band(market, order.side))
        if order.is_open:
            reduce_only = order.reduce_only or order.close_position
            close(state, order, Status.EXPIRED, ER_REDUCE_ONLY if reduce_only else ER_MARKET)
        return
    if book.within(order.side, book.best(market, order.side), order.price):
        take(state, order, order.price)
    reason = _REMAINDER_REASON.get(order.time_in_force)
    if order.is_open and reason is not None:
        close(state, order, Status.EXPIRED, reason)


def start(state: State, order: Order) -> None:
    """A freshly accepted order: NEW event, then execution unless it awaits a trigger."""
    publish(state, order, "NEW")
    if not order.waiting_trigger:
        execute(state, order)


def activate(state: State, order: Order) -> None:
    """A legacy conditional order fires: same orderId, working type, ``ot`` = original."""
    order.type = WORKING_TYPE[order.orig_type]
    order.update_time = state.now_ms()
    if order.close_position:
        order.orig_qty = reducible(state, order)
        if order.orig_qty == 0:
            close(state, order, Status.EXPIRED, ER_REDUCE_ONLY)
            return
    publish(state, order, "NEW")
    execute(state, order)


def _crossed(order: Order, market: Market) -> bool:
    return market.last <= order.price if order.side is Side.BUY else market.last >= order.price


def rest_fills(state: State, symbol: str) -> None:
    """Resting LIMIT orders the last price reached fill as maker, ≤ liquidity per update."""
    market = state.markets[symbol]
    resting = [o for o in state.live_orders() if o.symbol == symbol and o.type is OrderType.LIMIT]
    for order in sorted(resting, key=lambda o: o.seq):
        if not _crossed(order, market):
            continue
        qty = min(_cap(state, order), market.liquidity)
        if qty > 0:
            fill(state, order, order.price, qty, maker=True)
        elif order.reduce_only:
            close(state, order, Status.EXPIRED, ER_REDUCE_ONLY)


def fire_triggers(state: State, symbol: str) -> None:
    """Observe the new prices on every waiting conditional order; activate those that fire."""
    market = state.markets[symbol]
    waiting = [o for o in state.live_orders() if o.symbol == symbol and o.waiting_trigger]
    for order in sorted(waiting, key=lambda o: o.seq):
        assert order.trigger is not None
        if observe(order.trigger, market.last, market.mark, market.spec.trigger_protect):
            activate(state, order)


def expire_due(state: State) -> None:
    """GTD orders past goodTillDate expire; elapsed countdownCancelAll timers cancel all."""
    now = state.now_ms()
    for order in state.live_orders():
        gtd = order.time_in_force is TimeInForce.GTD and order.good_till_date
        if order.is_open and gtd and order.good_till_date <= now:
            close(state, order, Status.EXPIRED)
    for key, deadline in list(state.countdowns.items()):
        if deadline <= now:
            del state.countdowns[key]
            for order in state.open_orders(*key):
                close(state, order, Status.CANCELED)
