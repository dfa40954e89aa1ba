"""The desk's own limits on top of the venue's: notional, position, open orders, price band,
the kill switch, and an optional external risk service.

Unlike validation, risk fails closed: a rule that needs a price it does not have refuses
the order. Orders that can only reduce exposure (reduce-only, or the closing leg in hedge
mode) are never stopped by the kill switch, the size limits or the external service, so
a desk can always get flat; the price band still applies to them (a fat-fingered exit
price is still a fat finger). Zero in RiskConfig disables a rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from oexec.config import RiskConfig
from oexec.errors import ErrorCode, RiskError
from oexec.models import OrderIntent, OrderTerms
from oexec.models.enums import PositionSide, Side
from oexec.service.rules.base import ZERO, as_detail, multiply, reference_price
from oexec.service.rules.context import MarketContext
from oexec.service.rules.external_risk import ExternalRiskClient

log = logging.getLogger("oexec.risk")

RiskRule = Callable[[OrderTerms, MarketContext, RiskConfig], None]


def _refuse(code: ErrorCode, rule: str, value: object, limit: object, message: str) -> RiskError:
    return RiskError(
        message,
        code=code,
        details={"rule": rule, "value": as_detail(value), "limit": as_detail(limit)},
    )


def is_reducing(terms: OrderTerms, ctx: MarketContext) -> bool:
    """True for orders that can only shrink a position: reduce-only, or in hedge mode the
    closing side of a leg (SELL on LONG, BUY on SHORT)."""
    if terms.reduce_only:
        return True
    if not ctx.dual_side_position:
        return False
    closing = {Side.SELL: PositionSide.LONG, Side.BUY: PositionSide.SHORT}
    return closing[terms.side] is terms.position_side


def check_max_notional(terms: OrderTerms, ctx: MarketContext, config: RiskConfig) -> None:
    limit = config.max_order_notional
    if limit <= ZERO:
        return
    price = reference_price(terms, ctx.mark_price)
    if price is None:
        raise _refuse(
            ErrorCode.RISK_MAX_NOTIONAL,
            "max_order_notional",
            None,
            limit,
            "order notional cannot be judged: no price and no mark price",
        )
    notional = multiply(terms.quantity, price)
    if notional > limit:
        raise _refuse(
            ErrorCode.RISK_MAX_NOTIONAL,
            "max_order_notional",
            notional,
            limit,
            f"order notional {notional} exceeds the limit {limit}",
        )


def check_max_position(terms: OrderTerms, ctx: MarketContext, config: RiskConfig) -> None:
    """The position after a full fill stays within ±limit, unless the order only shrinks
    it (towards zero, without crossing to the other side)."""
    limit = config.max_position
    if limit <= ZERO:
        return
    before = ctx.position
    after = before + terms.side.sign * terms.quantity
    shrinking = abs(after) <= abs(before) and after * before >= ZERO
    if abs(after) > limit and not shrinking:
        raise _refuse(
            ErrorCode.RISK_MAX_POSITION,
            "max_position",
            after,
            limit,
            f"position would reach {after}, beyond the limit {limit}",
        )


def check_max_open_orders(terms: OrderTerms, ctx: MarketContext, config: RiskConfig) -> None:
    """Per symbol, plain and conditional orders together."""
    limit = config.max_open_orders
    total = ctx.open_orders + ctx.open_algo_orders
    if limit > 0 and total >= limit:
        raise _refuse(
            ErrorCode.RISK_MAX_OPEN_ORDERS,
            "max_open_orders",
            total,
            limit,
            f"{total} open orders on {terms.symbol}: the limit is {limit}",
        )


def check_price_band(terms: OrderTerms, ctx: MarketContext, config: RiskConfig) -> None:
    """A limit price within ±band of the mark price (band is a fraction, 0.05 = 5 %)."""
    band, price, mark = config.price_band, terms.price, ctx.mark_price
    if band <= ZERO or price is None:
        return
    if mark is None or mark <= ZERO:
        raise _refuse(
            ErrorCode.RISK_PRICE_BAND,
            "price_band",
            price,
            None,
            "price band cannot be judged: no mark price",
        )
    low, high = multiply(mark, 1 - band), multiply(mark, 1 + band)
    if not low <= price <= high:
        raise _refuse(
            ErrorCode.RISK_PRICE_BAND,
            "price_band",
            price,
            f"{as_detail(low)}..{as_detail(high)}",
            f"price {price} is outside {band} of mark {mark}",
        )


#: Rules for orders that may add exposure, in order.
EXPOSURE_RULES: tuple[RiskRule, ...] = (
    check_max_notional,
    check_max_position,
    check_max_open_orders,
)
#: Rules for every order.
ALWAYS_RULES: tuple[RiskRule, ...] = (check_price_band,)


class RiskManager:
    """Pre-trade risk: the kill switch, the configured limits, the external service."""

    def __init__(self, config: RiskConfig, *, external: ExternalRiskClient | None = None) -> None:
        self.config = config
        if external is None and config.external_endpoint:
            external = ExternalRiskClient(
                config.external_endpoint, timeout_ms=config.external_timeout_ms
            )
        self.external = external
        self._halted = False

    @property
    def halted(self) -> bool:
        return self._halted

    def halt(self) -> None:
        """Kill switch: refuse every new order that could add exposure."""
        if not self._halted:
            log.warning("risk: trading halted (only reducing orders pass)")
        self._halted = True

    def resume(self) -> None:
        if self._halted:
            log.warning("risk: trading resumed")
        self._halted = False

    async def check(self, intent: OrderIntent, ctx: MarketContext) -> None:
        """Raise RiskError if the order breaks a limit (codes RISK_*)."""
        terms = intent.terms
        reducing = is_reducing(terms, ctx)
        if self._halted and not reducing:
            raise _refuse(
                ErrorCode.RISK_HALTED,
                "kill_switch",
                None,
                None,
                "trading is halted; only reduce-only orders are accepted",
            )
        for rule in ALWAYS_RULES if reducing else ALWAYS_RULES + EXPOSURE_RULES:
            rule(terms, ctx, self.config)
        if self.external is not None and not reducing:
            await self.external.check(intent)

    async def close(self) -> None:
        if self.external is not None:
            await self.external.close()


__all__ = ["ExternalRiskClient", "RiskManager", "is_reducing"]
