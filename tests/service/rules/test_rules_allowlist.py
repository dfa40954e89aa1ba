"""[validation] symbols: an order for a symbol outside the list is refused first."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from oexec.config import ValidationConfig
from oexec.config_loader import load_config
from oexec.errors import ErrorCode, ValidationError
from oexec.models import OrderTerms
from oexec.models.enums import OrderType, Side, TimeInForce
from oexec.service.rules.allowlist import SymbolAllowList
from oexec.service.rules.context import MarketContext
from tests.service.rules.helpers import RULES


def terms(symbol: str) -> OrderTerms:
    return OrderTerms(
        symbol=symbol,
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal("50000"),
        time_in_force=TimeInForce.GTC,
    )


def test_empty_list_allows_every_symbol() -> None:
    allow = SymbolAllowList()
    assert allow.allows("BTCUSDT") and allow.allows("DOGEUSDT")
    allow.check_symbol("ANYUSDT")


def test_symbol_outside_the_list_is_refused_with_its_code_and_details() -> None:
    allow = SymbolAllowList(["BTCUSDT", "ethusdt"])
    allow.check_symbol("BTCUSDT")
    allow.check_symbol("ETHUSDT")  # the list is upper-cased as the venue's symbols are
    with pytest.raises(ValidationError) as caught:
        allow.check_symbol("SOLUSDT")
    err = caught.value
    assert err.code is ErrorCode.SYMBOL_NOT_ALLOWED
    assert err.details == {
        "rule": "symbol_allowed",
        "field": "symbol",
        "value": "SOLUSDT",
        "limit": ["BTCUSDT", "ETHUSDT"],
    }


def test_rule_protocol_and_reload() -> None:
    allow = SymbolAllowList(["BTCUSDT"])
    ctx = MarketContext(mark_price=Decimal("50000"))
    allow.check(terms("BTCUSDT"), RULES, ctx)
    with pytest.raises(ValidationError):
        allow.check(terms("ETHUSDT"), RULES, ctx)
    allow.set_symbols(["ETHUSDT"])
    allow.check(terms("ETHUSDT"), RULES, ctx)
    with pytest.raises(ValidationError):
        allow.check(terms("BTCUSDT"), RULES, ctx)
    allow.set_symbols([])
    allow.check(terms("BTCUSDT"), RULES, ctx)


def test_config_reads_the_list(tmp_path: Path) -> None:
    assert ValidationConfig().symbols == ()
    path = tmp_path / "oexec.toml"
    path.write_text('[validation]\nsymbols = ["BTCUSDT", "ETHUSDT"]\n')
    config = load_config(path)
    assert config.validation.symbols == ("BTCUSDT", "ETHUSDT")
