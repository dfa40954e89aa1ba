"""Turning new-order parameters into an accepted ``Order``, or the venue's rejection.

Checks run in the venue's order (§H.2): symbol → parameter presence and combinations →
PRICE_FILTER → LOT_SIZE → PERCENT_PRICE → MIN_NOTIONAL → open-order counts → reduce-only
→ margin → immediate trigger → execution pre-checks (-4131, -5021, -5022). The same
builder serves ``/fapi/v1/order`` and the algo path, which spells a few parameters
differently (``Names``).
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from oexec.sim.engine import book, filters
from oexec.sim.engine import params as p
from oexec.sim.engine.accounts import Account, opening_qty
from oexec.sim.engine.errors import SimError, invalid_value, missing, not_required
from oexec.sim.engine.numbers import ZERO
from oexec.sim.engine.orders import Order
from oexec.sim.engine.params import OrderType, PositionSide, Side, TimeInForce
from oexec.sim.engine.state import Market, State
from oexec.sim.engine.triggers import CONDITIONAL, Trigger, reference_price, would_trigger_now

GTD_MIN_AHEAD_MS = 600_000
GTD_MAX = 253_402_300_799_000
CALLBACK_RANGE = (Decimal("0.1"), Decimal("10"))


@attrs.frozen
class Names:
    """Parameter spellings: the order path vs the algo path (§C.3)."""

    stop: str = "stopPrice"
    activation: str = "activationPrice"
    client: str = "newClientOrderId"


ORDER_NAMES = Names()
ALGO_NAMES = Names(stop="triggerPrice", activation="activatePrice", client="clientAlgoId")

_LIMIT_PRICED = frozenset({OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT})
_STOPPED = CONDITIONAL - {OrderType.TRAILING_STOP_MARKET}
_CLOSABLE = frozenset({OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET})


def build(state: State, account: Account, params: p.Params, names: Names = ORDER_NAMES) -> Order:
    """Validate a new order fully; returns it unregistered (``order_id`` 0), or raises."""
    spec = state.spec(p.required(params, "symbol"))
    market = state.markets[spec.symbol]
    side = p.required_enum(params, "side", Side)
    kind = p.required_enum(params, "type", OrderType)
    position_side = _position_side(account, params, side)
    reduce_only = _reduce_only(account, params)
    close_position = _close_position(params, kind, reduce_only)
    qty, price, stop = _amounts(params, kind, close_position, names)
    tif = _time_in_force(params, kind)
    gtd = _good_till_date(state, params, tif)
    client_id = p.client_id(params, names.client) or f"sim-{state.rng.getrandbits(64):016x}"
    _check_duplicate(state, account, spec.symbol, client_id)
    trigger = _trigger(params, kind, side, stop, names)
    order = Order(
        order_id=0,
        account_id=account.account_id,
        symbol=spec.symbol,
        client_order_id=client_id,
        side=side,
        position_side=position_side,
        type=kind,
        orig_type=kind,
        time_in_force=tif,
        orig_qty=qty,
        price=price,
        time=state.now_ms(),
        seq=0,
        stop_price=stop,
        working_type=trigger.working_type if trigger else p.WorkingType.CONTRACT_PRICE,
        price_protect=trigger.price_protect if trigger else False,
        reduce_only=reduce_only,
        close_position=close_position,
        good_till_date=gtd,
        trigger=trigger,
        stp_mode=p.enum(params, "selfTradePreventionMode", p.StpMode) or p.StpMode.EXPIRE_MAKER,
    )
    _check_filters(state, market, order)
    _check_exposure(state, account, market, order)
    _check_execution(market, order)
    return order


def _position_side(account: Account, params: p.Params, side: Side) -> PositionSide:
    chosen = p.enum(params, "positionSide", PositionSide) or PositionSide.BOTH
    if account.dual_side == (chosen is PositionSide.BOTH):
        raise SimError(-4061, "Order's position side does not match user's setting.")
    return chosen


def _reduce_only(account: Account, params: p.Params) -> bool:
    value = p.boolean(params, "reduceOnly")
    if value and account.dual_side:
        raise not_required("reduceOnly")
    return bool(value)


def _close_position(params: p.Params, kind: OrderType, reduce_only: bool) -> bool:
    close = bool(p.boolean(params, "closePosition"))
    if close and kind not in _CLOSABLE:
        raise not_required("closePosition")
    if close and p.text(params, "quantity") is not None:
        raise SimError(-4137, "Quantity must be zero with closePosition equals true.")
    if close and reduce_only:
        raise not_required("reduceOnly")
    return close


def _amounts(
    params: p.Params, kind: OrderType, close_position: bool, names: Names
) -> tuple[Decimal, Decimal, Decimal]:
    """(quantity, price, stop price) with presence rules per type (-1102 / -1106)."""
    qty = ZERO if close_position else p.required_decimal(params, "quantity")
    if kind in _LIMIT_PRICED:
        price = p.required_decimal(params, "price")
    elif p.text(params, "price") is not None:
        raise not_required("price")
    else:
        price = ZERO
    if kind in _STOPPED:
        stop = p.required_decimal(params, names.stop)
    elif p.text(params, names.stop) is not None:
        raise not_required(names.stop)
    else:
        stop = ZERO
    return qty, price, stop


def _time_in_force(params: p.Params, kind: OrderType) -> TimeInForce:
    tif = p.enum(params, "timeInForce", TimeInForce)
    if kind is OrderType.LIMIT and tif is None:
        raise missing("timeInForce")
    return tif if tif is not None and kind in _LIMIT_PRICED else TimeInForce.GTC


def _good_till_date(state: State, params: p.Params, tif: TimeInForce) -> int:
    if tif is not TimeInForce.GTD:
        return 0
    gtd = p.required_int(params, "goodTillDate")
    if gtd <= state.now_ms() + GTD_MIN_AHEAD_MS or gtd >= GTD_MAX:
        raise SimError(
            -5040,
            "The goodTillDate timestamp must be greater than the current time plus "
            "600 seconds and smaller than 253402300799000.",
        )
    return gtd - gtd % 1000


def _check_duplicate(state: State, account: Account, symbol: str, client_id: str) -> None:
    if any(o.client_order_id == client_id for o in state.open_orders(account.account_id, symbol)):
        raise SimError(-4116, "ClientOrderId is duplicated.")


def _trigger(
    params: p.Params, kind: OrderType, side: Side, stop: Decimal, names: Names
) -> Trigger | None:
    trailing = kind is OrderType.TRAILING_STOP_MARKET
    for name in ("callbackRate", names.activation):
        if not trailing and p.text(params, name) is not None:
            raise not_required(name)
    if kind not in CONDITIONAL:
        return None
    rate = p.required_decimal(params, "callbackRate") if trailing else None
    if rate is not None and not CALLBACK_RANGE[0] <= rate <= CALLBACK_RANGE[1]:
        raise invalid_value("callbackRate")
    return Trigger(
        kind=kind,
        side=side,
        stop_price=stop,
        working_type=p.enum(params, "workingType", p.WorkingType) or p.WorkingType.CONTRACT_PRICE,
        price_protect=bool(p.boolean(params, "priceProtect")),
        activate_price=p.decimal(params, names.activation) if trailing else None,
        callback_rate=rate,
    )


def _check_filters(state: State, market: Market, order: Order) -> None:
    spec = market.spec
    if order.type in _LIMIT_PRICED:
        filters.check_price(spec, order.price)
    for value in (order.stop_price, order.trigger.activate_price if order.trigger else None):
        if value:
            filters.check_price(spec, value, stop=True)
    if not order.close_position:
        filters.check_quantity(spec, order.type, order.orig_qty)
    if order.type in _LIMIT_PRICED:
        filters.check_percent_price(spec, order.side, order.price, market.mark)
    exempt = order.reduce_only or order.close_position
    filters.check_notional(spec, reference(market, order), order.orig_qty, exempt)
    open_orders = state.open_orders(order.account_id, spec.symbol)
    algos = [
        a
        for a in state.algos.values()
        if a.is_open and a.account_id == order.account_id and a.symbol == spec.symbol
    ]
    waiting = sum(1 for o in open_orders if o.waiting_trigger) + len(algos)
    filters.check_open_counts(
        spec, len(open_orders) + len(algos), waiting, order.type in CONDITIONAL
    )


def reference(market: Market, order: Order) -> Decimal:
    """Price used for notional and margin: limit price, else stop price, else mark."""
    return order.price or order.stop_price or market.mark


def _check_exposure(state: State, account: Account, market: Market, order: Order) -> None:
    """Reduce-only -2022, margin -2019, immediate trigger -2021."""
    position = account.position(order.symbol, order.position_side).amount
    if order.reduce_only:
        closes = position < 0 if order.side is Side.BUY else position > 0
        if not closes or order.orig_qty > abs(position):
            raise SimError(-2022, "ReduceOnly Order is rejected.")
    elif not order.close_position:
        opening = opening_qty(
            account, order.symbol, order.position_side, order.side, order.orig_qty
        )
        needed = opening * reference(market, order) / account.leverage_of(order.symbol)
        if needed > account.available(state.marks(), state.order_margin(account.account_id)):
            raise SimError(-2019, "Margin is insufficient.")
    trigger = order.trigger
    if trigger is not None and would_trigger_now(trigger, market.last, market.mark):
        raise SimError(-2021, "Order would immediately trigger.")
    if trigger is not None and trigger.activate_price is None and trigger.callback_rate:
        trigger.activated = True
        trigger.extreme = reference_price(trigger, market.last, market.mark)


def _check_execution(market: Market, order: Order) -> None:
    """Rejections decided by the matching engine: -4131, -5022 (GTX), -5021 (FOK)."""
    if order.waiting_trigger:
        return
    best = book.best(market, order.side)
    if order.type is OrderType.MARKET:
        if not book.within(order.side, best, book.market_band(market, order.side)):
            raise SimError(
                -4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit."
            )
        return
    crosses = book.within(order.side, best, order.price)
    if order.time_in_force is TimeInForce.GTX and crosses:
        raise SimError(
            -5022,
            "Due to the order could not be executed as maker, the Post Only "
            "order will be rejected.",
        )
    fok = order.time_in_force is TimeInForce.FOK
    if fok and book.fillable(market, order.side, order.orig_qty, order.price) < order.orig_qty:
        raise SimError(
            -5021,
            "Due to the order could not be filled immediately, the FOK order has been rejected.",
        )
