"""``[validation] symbols``: the symbols this deployment may trade (plan §4).

Why a rule of its own, checked first: a desk pins a daemon to the instruments its risk
limits were written for; an order for anything else is a configuration or strategy bug,
refused before a mark price is fetched or anything is recorded (no I/O at all). An empty
list allows every symbol the venue lists (then the venue's filters decide).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from oexec.errors import ErrorCode
from oexec.models import OrderTerms, SymbolRules
from oexec.service.rules.base import fail
from oexec.service.rules.context import MarketContext


class SymbolAllowList:
    """Refuses symbols outside the configured list (SYMBOL_NOT_ALLOWED)."""

    name: ClassVar[str] = "symbol_allowed"

    def __init__(self, symbols: Iterable[str] = ()) -> None:
        self.symbols: frozenset[str] = frozenset()
        self.set_symbols(symbols)

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Replace the list (config reload); symbols are upper-cased as the venue's are."""
        self.symbols = frozenset(symbol.upper() for symbol in symbols)

    def allows(self, symbol: str) -> bool:
        return not self.symbols or symbol in self.symbols

    def check_symbol(self, symbol: str) -> None:
        """Raise ValidationError(SYMBOL_NOT_ALLOWED) for a symbol outside the list."""
        if not self.allows(symbol):
            fail(
                self.name,
                ErrorCode.SYMBOL_NOT_ALLOWED,
                "symbol",
                symbol,
                sorted(self.symbols),
                f"symbol {symbol} is not in [validation] symbols",
            )

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        """The Rule protocol, for a ValidationPipeline that lists it too."""
        self.check_symbol(terms.symbol)
