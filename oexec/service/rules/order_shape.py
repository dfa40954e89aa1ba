"""Rules on how an order is put together: position side, stop parameters, GTD expiry.

These are not exchangeInfo filters but the venue's parameter rules (reference §C.2,
§C.3, §C.6): which fields a type needs or refuses, what the account's position mode
allows, and the good-till-date window.
"""

from __future__ import annotations

from typing import ClassVar

from oexec.errors import ErrorCode
from oexec.models import OrderTerms, SymbolRules
from oexec.models.enums import OrderType, PositionSide, TimeInForce
from oexec.service.rules.base import ZERO, fail
from oexec.service.rules.context import MarketContext

#: goodTillDate must be later than now + 600 s (venue -5040) …
GTD_MIN_AHEAD_MS = 600_000
#: … and earlier than this (9999-12-31T23:59:59Z).
GTD_MAX_MS = 253_402_300_799_000


class PositionSideConsistency:
    """positionSide matches the account mode; reduceOnly only in one-way mode and only
    against the position (a known non-zero one: zero also means "unknown")."""

    name: ClassVar[str] = "position_side"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        side = terms.position_side
        hedge = ctx.dual_side_position
        if hedge == (side is PositionSide.BOTH):
            wanted = "LONG|SHORT" if hedge else "BOTH"
            fail(
                self.name,
                ErrorCode.POSITION_SIDE_MISMATCH,
                "position_side",
                side,
                wanted,
                f"position side {side.value} does not fit the account mode ({wanted})",
            )
        if not terms.reduce_only:
            return
        if hedge:
            fail(
                self.name,
                ErrorCode.REDUCE_ONLY_CONFLICT,
                "reduce_only",
                True,
                "hedge mode",
                "reduce-only is not accepted in hedge mode; close with the opposite side",
            )
        if ctx.position != ZERO and (ctx.position > ZERO) == (terms.side.sign > 0):
            fail(
                self.name,
                ErrorCode.REDUCE_ONLY_CONFLICT,
                "reduce_only",
                True,
                ctx.position,
                f"reduce-only {terms.side.value} would increase position {ctx.position}",
            )


class StopPricePresence:
    """Conditional types need their trigger; others refuse a stop price; trailing stops
    need a callback rate."""

    name: ClassVar[str] = "stop_price"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        kind = terms.type
        if kind.needs_stop_price and terms.stop_price is None:
            fail(
                self.name,
                ErrorCode.STOP_PRICE_REQUIRED,
                "stop_price",
                None,
                "required",
                f"{kind.value} orders need a stop price",
            )
        if not kind.needs_stop_price and terms.stop_price is not None:
            fail(
                self.name,
                ErrorCode.STOP_PRICE_NOT_ALLOWED,
                "stop_price",
                terms.stop_price,
                "none",
                f"{kind.value} orders take no stop price",
            )
        if kind is OrderType.TRAILING_STOP_MARKET and terms.callback_rate is None:
            fail(
                self.name,
                ErrorCode.CALLBACK_RATE_REQUIRED,
                "callback_rate",
                None,
                "required",
                "TRAILING_STOP_MARKET orders need a callback rate",
            )


class GoodTillDate:
    """GTD needs good_till_date in (now + 600 s, 9999-12-31); other TIFs refuse one.

    The venue keeps whole seconds only, so the check runs on the truncated value.
    Skipped when ``ctx.now_ms`` is unknown (0).
    """

    name: ClassVar[str] = "good_till_date"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        gtd = terms.good_till_date
        if terms.time_in_force is not TimeInForce.GTD:
            if gtd is not None:
                fail(
                    self.name,
                    ErrorCode.GOOD_TILL_DATE_INVALID,
                    "good_till_date",
                    gtd,
                    "none",
                    "good_till_date is only for time in force GTD",
                )
            return
        if gtd is None:
            fail(
                self.name,
                ErrorCode.GOOD_TILL_DATE_INVALID,
                "good_till_date",
                None,
                "required",
                "GTD orders need a good_till_date",
            )
        seconds = gtd - gtd % 1000
        earliest = ctx.now_ms + GTD_MIN_AHEAD_MS
        if ctx.now_ms > 0 and seconds <= earliest:
            fail(
                self.name,
                ErrorCode.GOOD_TILL_DATE_INVALID,
                "good_till_date",
                gtd,
                earliest,
                "good_till_date must be more than 600 s ahead",
            )
        if seconds >= GTD_MAX_MS:
            fail(
                self.name,
                ErrorCode.GOOD_TILL_DATE_INVALID,
                "good_till_date",
                gtd,
                GTD_MAX_MS,
                "good_till_date is too far ahead",
            )
