"""SymbolRulesBook: exchangeInfo as loaded, typed overrides on top, refresh replaces."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oexec.models import ExchangeInfo, SymbolRules
from oexec.models.enums import OrderType, TimeInForce
from oexec.service.rules.symbol_book import SymbolRulesBook, parse_overrides

from .helpers import RULES

D = Decimal


def info(*symbols: SymbolRules) -> ExchangeInfo:
    return ExchangeInfo(server_time=0, symbols={s.symbol: s for s in symbols})


def test_unknown_before_load_and_after() -> None:
    book = SymbolRulesBook()
    assert book.get("BTCUSDT") is None
    book.load(info(RULES))
    assert book.get("BTCUSDT") == RULES
    assert book.get("ETHUSDT") is None
    assert list(book.symbols()) == ["BTCUSDT"]
    assert len(book) == 1


def test_overrides_win_and_are_typed() -> None:
    book = SymbolRulesBook(
        {
            "BTCUSDT": {
                "max_qty": "5",
                "max_num_orders": "50",
                "status": "BREAK",
                "order_types": "LIMIT, MARKET",
                "time_in_force": "GTC,IOC",
            }
        }
    )
    book.load(info(RULES))
    rules = book.get("BTCUSDT")
    assert rules is not None
    assert rules.max_qty == D("5")
    assert rules.max_num_orders == 50
    assert rules.status == "BREAK"
    assert rules.order_types == frozenset({OrderType.LIMIT, OrderType.MARKET})
    assert rules.time_in_force == frozenset({TimeInForce.GTC, TimeInForce.IOC})
    assert rules.min_qty == RULES.min_qty  # untouched fields stay the venue's


def test_overrides_for_unlisted_symbols_do_not_invent_them() -> None:
    book = SymbolRulesBook({"ETHUSDT": {"max_qty": "5"}})
    book.load(info(RULES))
    assert book.get("ETHUSDT") is None


def test_refresh_replaces_everything() -> None:
    book = SymbolRulesBook()
    book.load(info(RULES, SymbolRules(symbol="ETHUSDT")))
    book.load(info(SymbolRules(symbol="ETHUSDT", min_qty=D("0.01"))))
    assert book.get("BTCUSDT") is None
    eth = book.get("ETHUSDT")
    assert eth is not None and eth.min_qty == D("0.01")


@pytest.mark.parametrize(
    "fields",
    [
        {"no_such_field": "1"},
        {"symbol": "ETHUSDT"},
        {"max_qty": "lots"},
        {"max_qty": "-1"},
        {"max_qty": "NaN"},
        {"max_num_orders": "1.5"},
        {"order_types": "LIMIT,ICEBERG"},
    ],
)
def test_bad_overrides_fail_at_construction(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="BTCUSDT"):
        SymbolRulesBook({"BTCUSDT": fields})


def test_parse_overrides_keeps_decimals_exact() -> None:
    parsed = parse_overrides({"X": {"tick_size": "0.00000001"}})
    assert parsed["X"]["tick_size"] == D("1E-8")
    assert str(parsed["X"]["tick_size"]) == "1E-8"
