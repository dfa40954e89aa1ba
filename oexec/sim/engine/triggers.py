"""When conditional orders fire: stop/take-profit thresholds and trailing stops (§C.3, §H.8).

The rules are pure functions over a small mutable ``Trigger`` record shared by the legacy
conditional orders of ``/fapi/v1/order`` and the algo orders of ``/fapi/v1/algoOrder``.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from oexec.sim.engine.params import OrderType, Side, WorkingType

#: Conditional types and the working type they become when triggered.
WORKING_TYPE: dict[OrderType, OrderType] = {
    OrderType.STOP: OrderType.LIMIT,
    OrderType.TAKE_PROFIT: OrderType.LIMIT,
    OrderType.STOP_MARKET: OrderType.MARKET,
    OrderType.TAKE_PROFIT_MARKET: OrderType.MARKET,
    OrderType.TRAILING_STOP_MARKET: OrderType.MARKET,
}
CONDITIONAL = frozenset(WORKING_TYPE)
_STOPS = frozenset({OrderType.STOP, OrderType.STOP_MARKET})
HUNDRED = Decimal(100)


@attrs.define
class Trigger:
    """The trigger condition of one conditional order, plus trailing-stop memory."""

    kind: OrderType
    side: Side
    stop_price: Decimal
    working_type: WorkingType
    price_protect: bool
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None
    activated: bool = False
    extreme: Decimal | None = None


def reference_price(trigger: Trigger, last: Decimal, mark: Decimal) -> Decimal:
    """The price the trigger watches: mark price or last contract price."""
    return mark if trigger.working_type is WorkingType.MARK_PRICE else last


def threshold_met(kind: OrderType, side: Side, price: Decimal, stop: Decimal) -> bool:
    """STOP*: BUY fires at price ≥ stop, SELL at ≤; TAKE_PROFIT*: the reverse."""
    rising = (kind in _STOPS) == (side is Side.BUY)
    return price >= stop if rising else price <= stop


def protect_blocks(trigger: Trigger, last: Decimal, mark: Decimal, limit: Decimal) -> bool:
    """priceProtect: no trigger while |mark − last| / mark exceeds ``triggerProtect``."""
    return trigger.price_protect and abs(mark - last) > mark * limit


def would_trigger_now(trigger: Trigger, last: Decimal, mark: Decimal) -> bool:
    """Submission check behind -2021."""
    price = reference_price(trigger, last, mark)
    if trigger.kind is OrderType.TRAILING_STOP_MARKET:
        activation = trigger.activate_price
        if activation is None:
            return False
        return price >= activation if trigger.side is Side.SELL else price <= activation
    return threshold_met(trigger.kind, trigger.side, price, trigger.stop_price)


def observe(trigger: Trigger, last: Decimal, mark: Decimal, protect_limit: Decimal) -> bool:
    """Feed one price observation; True when the order fires now."""
    if protect_blocks(trigger, last, mark, protect_limit):
        return False
    price = reference_price(trigger, last, mark)
    if trigger.kind is not OrderType.TRAILING_STOP_MARKET:
        return threshold_met(trigger.kind, trigger.side, price, trigger.stop_price)
    return _observe_trailing(trigger, price)


def _observe_trailing(trigger: Trigger, price: Decimal) -> bool:
    """SELL: track the high once price ≥ activation, fire at high × (1 − rate); BUY mirrored."""
    selling = trigger.side is Side.SELL
    activation = trigger.activate_price
    if not trigger.activated:
        reached = activation is None or (price >= activation if selling else price <= activation)
        if not reached:
            return False
        trigger.activated = True
        trigger.extreme = price
    assert trigger.extreme is not None and trigger.callback_rate is not None
    rate = trigger.callback_rate / HUNDRED
    if selling:
        trigger.extreme = max(trigger.extreme, price)
        trigger.stop_price = trigger.extreme * (1 - rate)
        return price <= trigger.stop_price
    trigger.extreme = min(trigger.extreme, price)
    trigger.stop_price = trigger.extreme * (1 + rate)
    return price >= trigger.stop_price
