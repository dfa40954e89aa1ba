"""User-stream event builders: ORDER_TRADE_UPDATE, TRADE_LITE, ACCOUNT_UPDATE (§G.3–G.7)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from oexec.sim.engine.accounts import MARGIN_ASSET, Account, Position
from oexec.sim.engine.numbers import ZERO, fmt, money
from oexec.sim.engine.orders import Fill, Order

Json = dict[str, Any]


def order_trade_update(
    order: Order, now: int, execution: str, fill: Fill | None, notional: tuple[Decimal, Decimal]
) -> Json:
    """One ORDER_TRADE_UPDATE; ``fill`` given for x=TRADE; ``notional`` = (bids, asks)."""
    trigger = order.trigger
    body: Json = {
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side.value,
        "o": order.type.value,
        "f": order.time_in_force.value,
        "q": fmt(order.orig_qty),
        "p": fmt(order.price),
        "ap": fmt(money(order.avg_price)),
        "sp": fmt(money(order.stop_price)),
        "x": execution,
        "X": order.status.value,
        "i": order.order_id,
        "l": fmt(fill.qty) if fill else "0",
        "z": fmt(order.executed_qty),
        "L": fmt(fill.price) if fill else "0",
        "N": fill.commission_asset if fill else MARGIN_ASSET,
        "n": fmt(fill.commission) if fill else "0",
        "T": now,
        "t": fill.trade_id if fill else 0,
        "b": fmt(notional[0]),
        "a": fmt(notional[1]),
        "m": fill.maker if fill else False,
        "R": order.reduce_only,
        "wt": order.working_type.value,
        "ot": order.orig_type.value,
        "ps": order.position_side.value,
        "cp": order.close_position,
        "pP": order.price_protect,
        "si": 0,
        "ss": 0,
        "rp": fmt(fill.realized_pnl) if fill else "0",
        "V": order.stp_mode.value,
        "pm": "NONE",
        "gtd": order.good_till_date,
        "er": str(order.expire_reason),
    }
    if trigger is not None and trigger.callback_rate is not None:
        body["AP"] = fmt(trigger.activate_price or ZERO)
        body["cr"] = fmt(trigger.callback_rate)
    return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": body}


def trade_lite(order: Order, fill: Fill, now: int) -> Json:
    """The low-latency fill summary that precedes the full update."""
    return {
        "e": "TRADE_LITE",
        "E": now,
        "T": now,
        "s": order.symbol,
        "q": fmt(order.orig_qty),
        "p": fmt(order.price),
        "m": fill.maker,
        "c": order.client_order_id,
        "S": order.side.value,
        "L": fmt(fill.price),
        "l": fmt(fill.qty),
        "t": fill.trade_id,
        "i": order.order_id,
    }


def account_update(
    account: Account,
    now: int,
    positions: Iterable[Position],
    marks: Mapping[str, Decimal],
    reason: str = "ORDER",
) -> Json:
    """ACCOUNT_UPDATE after a balance/position change; ``P`` only the changed legs."""
    wallet = fmt(account.wallet)
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now,
        "T": now,
        "a": {
            "m": reason,
            "B": [{"a": MARGIN_ASSET, "wb": wallet, "cw": wallet, "bc": "0"}],
            "P": [
                {
                    "s": p.symbol,
                    "pa": fmt(p.amount),
                    "ep": fmt(p.entry_price),
                    "bep": fmt(p.entry_price),
                    "cr": fmt(p.realized),
                    "up": fmt(p.unrealized(marks[p.symbol])),
                    "mt": "isolated" if p.symbol in account.isolated else "cross",
                    "iw": "0",
                    "ps": p.side.value,
                }
                for p in positions
            ],
        },
    }


def leverage_update(symbol: str, leverage: int, now: int) -> Json:
    """ACCOUNT_CONFIG_UPDATE after a leverage change."""
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, "ac": {"s": symbol, "l": leverage}}
