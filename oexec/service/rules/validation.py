"""The validation pipeline: the venue's filters and parameter rules, in a fixed order.

Order matters only for which failure a client sees first; it follows the plan (symbol,
type and time in force, quantity, price, notional, price band, order counts, position
side, stop price, GTD). Every rule is synchronous and does no I/O; the first failure
raises ValidationError with the rule's code and ``{rule, field, value, limit}``.
"""

from __future__ import annotations

from collections.abc import Sequence

from oexec.errors import ErrorCode
from oexec.models import OrderTerms, SymbolRules
from oexec.service.rules.base import Rule, fail
from oexec.service.rules.context import MarketContext
from oexec.service.rules.filters import (
    MaxNumOrders,
    MinNotional,
    OrderTypeAllowed,
    PercentPrice,
    PriceFilter,
    QuantityFilter,
    SymbolTradable,
)
from oexec.service.rules.order_shape import (
    GoodTillDate,
    PositionSideConsistency,
    StopPricePresence,
)
from oexec.service.rules.symbol_book import SymbolRulesBook

DEFAULT_RULES: tuple[Rule, ...] = (
    SymbolTradable(),
    OrderTypeAllowed(),
    QuantityFilter(),
    PriceFilter(),
    MinNotional(),
    PercentPrice(),
    MaxNumOrders(),
    PositionSideConsistency(),
    StopPricePresence(),
    GoodTillDate(),
)


class ValidationPipeline:
    """Runs the rules in order; the first failure wins."""

    def __init__(self, rules: Sequence[Rule] = DEFAULT_RULES) -> None:
        self.rules = tuple(rules)

    def check(
        self, terms: OrderTerms, symbol_rules: SymbolRules | None, ctx: MarketContext
    ) -> None:
        """Raise ValidationError if any rule refuses ``terms``.

        An unknown symbol (``symbol_rules`` None) fails as SYMBOL_UNKNOWN before any rule.
        """
        if symbol_rules is None:
            fail(
                SymbolTradable.name,
                ErrorCode.SYMBOL_UNKNOWN,
                "symbol",
                terms.symbol,
                "listed",
                f"unknown symbol {terms.symbol}",
            )
        for rule in self.rules:
            rule.check(terms, symbol_rules, ctx)


__all__ = ["DEFAULT_RULES", "Rule", "SymbolRulesBook", "ValidationPipeline"]
