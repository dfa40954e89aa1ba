"""The synthetic order book around the last price, and taker walks through it.

Asks sit at every tick above the last price and bids at every tick below, each level
holding ``liquidity`` contracts. A taker walks levels best-first, so a large order pays
slippage and a limit price or the MARKET band stops it part-way (partial fills). Resting
orders are filled by ``matching`` when the last price reaches them, at most ``liquidity``
per price update, so partial fills over several updates happen too.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from itertools import islice

from oexec.sim.engine.numbers import ZERO, fmt
from oexec.sim.engine.params import Side
from oexec.sim.engine.state import Market

#: Hard cap on levels a single taker walks (keeps one request bounded in time).
MAX_LEVELS = 100_000
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


def levels(market: Market, side: Side) -> Iterator[Decimal]:
    """Counter-side level prices for a taker on ``side``, best first."""
    tick = market.spec.tick_size
    if side is Side.BUY:
        price = market.on_grid(market.last, up=False) + tick
        step = tick
    else:
        price = market.on_grid(market.last, up=True) - tick
        step = -tick
    for _ in range(MAX_LEVELS):
        if price <= 0:
            return
        yield price
        price += step


def best(market: Market, side: Side) -> Decimal:
    """Best counter price for a taker on ``side``."""
    return next(levels(market, side))


def market_band(market: Market, side: Side) -> Decimal:
    """The worst price a MARKET order may reach: marketTakeBound and PERCENT_PRICE."""
    spec, mark = market.spec, market.mark
    if side is Side.BUY:
        return min(mark * (1 + spec.market_take_bound), mark * spec.multiplier_up)
    return max(mark * (1 - spec.market_take_bound), mark * spec.multiplier_down)


def within(side: Side, price: Decimal, limit: Decimal) -> bool:
    """True when ``price`` is no worse than ``limit`` for a taker on ``side``."""
    return price <= limit if side is Side.BUY else price >= limit


def walk(market: Market, side: Side, qty: Decimal, limit: Decimal) -> list[tuple[Decimal, Decimal]]:
    """(price, qty) slices a taker gets for up to ``qty`` at prices no worse than ``limit``."""
    slices: list[tuple[Decimal, Decimal]] = []
    left = qty
    for price in levels(market, side):
        if left <= 0 or not within(side, price, limit):
            break
        take = min(left, market.liquidity)
        slices.append((price, take))
        left -= take
    return slices


def fillable(market: Market, side: Side, qty: Decimal, limit: Decimal) -> Decimal:
    """How much of ``qty`` a taker could fill at once (FOK check)."""
    return sum((q for _, q in walk(market, side, qty, limit)), ZERO)


def depth(market: Market, limit: int, now: int) -> dict[str, object]:
    """GET /fapi/v1/depth body."""
    qty = fmt(market.liquidity)

    def side_levels(side: Side) -> list[list[str]]:
        return [[fmt(price), qty] for price in islice(levels(market, side), limit)]

    return {
        "lastUpdateId": market.update_id,
        "E": now,
        "T": market.time,
        "bids": side_levels(Side.SELL),
        "asks": side_levels(Side.BUY),
    }
