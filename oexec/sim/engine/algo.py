"""Algo (conditional) orders of ``/fapi/v1/algoOrder``: placement, trigger, ALGO_UPDATE.

An algo order waits outside the book; when its trigger fires the venue places a fresh
engine order (new orderId, ``ai`` in ALGO_UPDATE) of the working type, whose life then
follows ordinary ORDER_TRADE_UPDATE events (§C.3 "Algo service migration", §H.9).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

import attrs

from oexec.sim.engine import matching, placement
from oexec.sim.engine import params as p
from oexec.sim.engine.accounts import Account
from oexec.sim.engine.errors import SimError
from oexec.sim.engine.numbers import ZERO, fmt, money
from oexec.sim.engine.orders import Order, Status
from oexec.sim.engine.params import OrderType
from oexec.sim.engine.state import State
from oexec.sim.engine.triggers import CONDITIONAL, WORKING_TYPE, Trigger, observe

Json = dict[str, Any]


class AlgoStatus(StrEnum):
    NEW = "NEW"
    CANCELED = "CANCELED"
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    EXPIRED = "EXPIRED"


@attrs.define
class AlgoOrder:
    """One conditional algo order; ``draft`` holds the validated order it will place."""

    algo_id: int
    draft: Order
    status: AlgoStatus = AlgoStatus.NEW
    update_time: int = 0
    trigger_time: int = 0
    order_id: int = 0
    actual_price: Decimal = ZERO  # average price of the placed order once it ended

    @property
    def account_id(self) -> str:
        return self.draft.account_id

    @property
    def symbol(self) -> str:
        return self.draft.symbol

    @property
    def client_algo_id(self) -> str:
        return self.draft.client_order_id

    @property
    def is_open(self) -> bool:
        return self.status is AlgoStatus.NEW

    def to_json(self) -> Json:
        d, trigger = self.draft, self.draft.trigger
        assert trigger is not None
        return {
            "algoId": self.algo_id,
            "clientAlgoId": d.client_order_id,
            "algoType": "CONDITIONAL",
            "orderType": d.orig_type.value,
            "symbol": d.symbol,
            "side": d.side.value,
            "positionSide": d.position_side.value,
            "timeInForce": d.time_in_force.value,
            "quantity": fmt(d.orig_qty),
            "algoStatus": self.status.value,
            "actualOrderId": str(self.order_id) if self.order_id else "",
            "actualPrice": fmt(money(self.actual_price)),
            "triggerPrice": fmt(money(trigger.stop_price)),
            "price": fmt(d.price),
            "icebergQuantity": None,
            "tpTriggerPrice": "0",
            "tpPrice": "0",
            "slTriggerPrice": "0",
            "slPrice": "0",
            "tpOrderType": "",
            "selfTradePreventionMode": d.stp_mode.value,
            "workingType": trigger.working_type.value,
            "priceMatch": "NONE",
            "closePosition": d.close_position,
            "priceProtect": trigger.price_protect,
            "reduceOnly": d.reduce_only,
            "createTime": d.time,
            "updateTime": self.update_time,
            "triggerTime": self.trigger_time,
            "goodTillDate": d.good_till_date,
        } | self._trailing(trigger)

    @staticmethod
    def _trailing(trigger: Trigger) -> Json:
        """``activatePrice``/``callbackRate``: TRAILING_STOP_MARKET orders only."""
        if trigger.callback_rate is None:
            return {}
        activate = trigger.activate_price
        return {
            "activatePrice": fmt(activate) if activate else "",
            "callbackRate": fmt(trigger.callback_rate),
        }

    def event(self, now: int) -> Json:
        """ALGO_UPDATE (§G.7)."""
        d, trigger = self.draft, self.draft.trigger
        assert trigger is not None
        return {
            "e": "ALGO_UPDATE",
            "E": now,
            "T": now,
            "o": {
                "caid": d.client_order_id,
                "aid": self.algo_id,
                "at": "CONDITIONAL",
                "o": d.orig_type.value,
                "s": d.symbol,
                "S": d.side.value,
                "ps": d.position_side.value,
                "f": d.time_in_force.value,
                "q": fmt(d.orig_qty),
                "X": self.status.value,
                "ai": str(self.order_id) if self.order_id else "",
                "ap": "0",
                "aq": "0",
                "act": "0",
                "tp": fmt(money(trigger.stop_price)),
                "p": fmt(d.price),
                "V": d.stp_mode.value,
                "wt": trigger.working_type.value,
                "pm": "NONE",
                "cp": d.close_position,
                "pP": trigger.price_protect,
                "R": d.reduce_only,
                "tt": self.trigger_time,
                "gtd": d.good_till_date,
                "rm": "",
                "ia": trigger.activated,
            },
        }


def _publish(state: State, algo: AlgoOrder) -> None:
    algo.update_time = state.now_ms()
    state.emit(algo.account_id, algo.event(algo.update_time))


def place(state: State, account: Account, params: p.Params) -> AlgoOrder:
    """Validate and register a CONDITIONAL algo order (emits ALGO_UPDATE NEW)."""
    algo_type = p.required(params, "algoType")
    if algo_type != "CONDITIONAL":
        raise SimError(-1130, "Data sent for parameter 'algoType' is not valid.")
    kind = p.required_enum(params, "type", OrderType)
    if kind not in CONDITIONAL:
        raise SimError(-1116, "Invalid orderType.")
    draft = placement.build(state, account, params, placement.ALGO_NAMES)
    if any(a.is_open and a.client_algo_id == draft.client_order_id for a in state.algos.values()):
        raise SimError(-4116, "ClientOrderId is duplicated.")
    algo = AlgoOrder(algo_id=state.new_algo_id(), draft=draft, update_time=draft.time)
    state.algos[algo.algo_id] = algo
    _publish(state, algo)
    return algo


def find(state: State, account_id: str, params: p.Params) -> AlgoOrder | None:
    algo_id = p.integer(params, "algoId")
    client = p.text(params, "clientAlgoId")
    if algo_id is None and client is None:
        raise SimError(
            -1102, "Param 'algoId' or 'clientAlgoId' must be sent, but both were empty/null!"
        )
    mine = [a for a in state.algos.values() if a.account_id == account_id]
    if algo_id is not None:
        return next((a for a in mine if a.algo_id == algo_id), None)
    return next((a for a in reversed(mine) if a.client_algo_id == client), None)


def cancel(state: State, algo: AlgoOrder) -> None:
    algo.status = AlgoStatus.CANCELED
    _publish(state, algo)


def on_price(state: State, symbol: str) -> None:
    """Fire the symbol's waiting algo orders; mark those whose engine order ended FINISHED."""
    market = state.markets[symbol]
    for algo in [a for a in state.algos.values() if a.symbol == symbol]:
        if algo.status is AlgoStatus.TRIGGERED and not state.orders[algo.order_id].is_open:
            algo.status = AlgoStatus.FINISHED
            algo.actual_price = state.orders[algo.order_id].avg_price
            _publish(state, algo)
            continue
        trigger = algo.draft.trigger
        assert trigger is not None
        if algo.is_open and observe(trigger, market.last, market.mark, market.spec.trigger_protect):
            _fire(state, algo)


def _fire(state: State, algo: AlgoOrder) -> None:
    draft, now = algo.draft, state.now_ms()
    working = WORKING_TYPE[draft.orig_type]
    child = attrs.evolve(
        draft,
        order_id=state.new_order_id(),
        type=working,
        orig_type=working,
        trigger=None,
        time=now,
        update_time=now,
        seq=state.new_seq(),
        fills=[],
        stop_price=draft.stop_price,
    )
    if child.close_position:
        child.orig_qty = matching.reducible(state, child)
    state.add_order(child)
    algo.order_id, algo.trigger_time, algo.status = child.order_id, now, AlgoStatus.TRIGGERED
    _publish(state, algo)
    if child.orig_qty == 0:
        matching.close(state, child, Status.EXPIRED, matching.ER_REDUCE_ONLY)
    else:
        matching.start(state, child)
    if not child.is_open:
        algo.status = AlgoStatus.FINISHED
        algo.actual_price = child.avg_price
        _publish(state, algo)
