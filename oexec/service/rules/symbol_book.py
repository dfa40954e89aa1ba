"""The current SymbolRules per symbol: exchangeInfo as loaded, static overrides on top.

exchangeInfo is the source of truth and is reloaded periodically; a desk may pin a
stricter value per symbol in config (``[validation.overrides.BTCUSDT] max_qty = "5"``).
Override keys are SymbolRules field names, values strings (decimals stay exact; type and
time-in-force sets are comma separated). Bad overrides fail at construction, so a typo
stops the daemon at start rather than silently doing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import attrs

from oexec.models import ExchangeInfo, SymbolRules
from oexec.models.enums import OrderType, TimeInForce

Converter = Callable[[str], Any]


def _enum_set(enum: Any) -> Converter:
    def convert(text: str) -> frozenset[Any]:
        return frozenset(enum(part.strip()) for part in text.split(",") if part.strip())

    return convert


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a finite non-negative decimal: {text!r}")
    return value


#: How to read an override for each SymbolRules field, by the field's default type.
_BY_TYPE: dict[type, Converter] = {Decimal: _decimal, int: int, str: str}
_SPECIAL: dict[str, Converter] = {
    "order_types": _enum_set(OrderType),
    "time_in_force": _enum_set(TimeInForce),
}
_NOT_OVERRIDABLE = frozenset({"symbol"})
NO_OVERRIDES: Mapping[str, Mapping[str, str]] = MappingProxyType({})


def _converter(field: attrs.Attribute[Any]) -> Converter | None:
    if field.name in _NOT_OVERRIDABLE:
        return None
    return _SPECIAL.get(field.name) or _BY_TYPE.get(type(field.default))


CONVERTERS: dict[str, Converter] = {
    field.name: conv
    for field in attrs.fields(SymbolRules)
    if (conv := _converter(field)) is not None
}


def parse_overrides(raw: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Typed overrides per symbol. Raises ValueError naming the bad symbol/field."""
    parsed: dict[str, dict[str, Any]] = {}
    for symbol, fields in raw.items():
        parsed[symbol] = {}
        for name, text in fields.items():
            conv = CONVERTERS.get(name)
            if conv is None:
                raise ValueError(f"validation override {symbol}.{name}: unknown field")
            try:
                parsed[symbol][name] = conv(str(text))
            except (ValueError, InvalidOperation) as exc:
                raise ValueError(f"validation override {symbol}.{name}: {exc}") from None
    return parsed


class SymbolRulesBook:
    """Symbol rules as last loaded, with overrides applied. Reads are plain dict lookups."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] = NO_OVERRIDES) -> None:
        self._overrides = parse_overrides(overrides)
        self._rules: dict[str, SymbolRules] = {}
        self._info: ExchangeInfo | None = None

    def set_overrides(self, overrides: Mapping[str, Mapping[str, str]]) -> None:
        """Swap the overrides (SIGHUP) and re-apply them to the rules last loaded.

        Raises ValueError before changing anything when an override is bad.
        """
        self._overrides = parse_overrides(overrides)
        if self._info is not None:
            self.load(self._info)

    def load(self, info: ExchangeInfo) -> None:
        """Replace every symbol's rules at once (a refresh never leaves a mix)."""
        self._info = info
        self._rules = {
            symbol: attrs.evolve(rules, **self._overrides.get(symbol, {}))
            for symbol, rules in info.symbols.items()
        }

    def get(self, symbol: str) -> SymbolRules | None:
        """The symbol's rules, or None when the venue does not list it."""
        return self._rules.get(symbol)

    def symbols(self) -> Iterator[str]:
        return iter(list(self._rules))

    def __len__(self) -> int:
        return len(self._rules)
