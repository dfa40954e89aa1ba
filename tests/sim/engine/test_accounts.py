"""Positions, PnL, fees, margin, reduce-only, position modes, leverage, margin type."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oexec.sim.engine import Exchange, SimError

from .helpers import market, order

BTC = {"symbol": "BTCUSDT"}


def wallet(ex: Exchange) -> Decimal:
    return Decimal(ex.balance("acct", 3)[0]["balance"])


def test_round_trip_pnl_and_fees(ex: Exchange, events: list[dict[str, Any]]) -> None:
    ex.new_order("acct", market(quantity="1"))  # taker at 50000.1
    ex.new_order("acct", order(side="SELL", quantity="1", price="50100"))
    ex.set_price("BTCUSDT", Decimal("50100"))  # maker at 50100
    taker_fee = Decimal("50000.1") * Decimal("0.0005")
    maker_fee = Decimal("50100") * Decimal("0.0002")
    pnl = Decimal("99.9")
    assert wallet(ex) == Decimal("100000") + pnl - taker_fee - maker_fee
    trades = ex.user_trades("acct", BTC)
    assert [Decimal(t["realizedPnl"]) for t in trades] == [0, pnl]
    assert [Decimal(t["commission"]) for t in trades] == [taker_fee, maker_fee]
    last_update = [e for e in events if e["e"] == "ACCOUNT_UPDATE"][-1]["a"]
    assert last_update["m"] == "ORDER"
    assert last_update["P"][0]["pa"] == "0"
    assert Decimal(last_update["B"][0]["wb"]) == wallet(ex)


def test_entry_price_averages_and_flip(ex: Exchange) -> None:
    ex.new_order("acct", order(quantity="1", price="50100"))  # taker at 50000.1
    ex.set_price("BTCUSDT", Decimal("49000"))
    ex.new_order("acct", market(quantity="1"))  # at 49000.1
    position = ex.position_risk("acct", BTC, 3)[0]
    assert position["positionAmt"] == "2" and position["entryPrice"] == "49500.1"
    ex.new_order(
        "acct", market(side="SELL", quantity="3")
    )  # levels 48999.9, .8, .7; the last flips
    position = ex.position_risk("acct", BTC, 3)[0]
    assert position["positionAmt"] == "-1" and position["entryPrice"] == "48999.7"


def test_reduce_only_cannot_open_or_flip(ex: Exchange) -> None:
    with pytest.raises(SimError) as info:
        ex.new_order("acct", market(side="SELL", reduceOnly="true"))
    assert info.value.code == -2022
    ex.new_order("acct", market(quantity="0.01"))
    with pytest.raises(SimError) as info:
        ex.new_order("acct", market(side="SELL", quantity="0.02", reduceOnly="true"))
    assert info.value.code == -2022


def test_margin_insufficient(ex: Exchange) -> None:
    poor = "poor"
    ex.add_account(poor, {"USDT": Decimal("100")})
    with pytest.raises(SimError) as info:
        ex.new_order(poor, market(quantity="0.05"))  # 2500 notional / 20x = 125 > 100
    assert info.value.code == -2019
    ex.new_order(poor, market(quantity="0.03"))


def test_hedge_mode(ex: Exchange) -> None:
    assert ex.position_side_dual("acct") == {"dualSidePosition": False}
    ex.position_side_dual("acct", {"dualSidePosition": "true"})
    with pytest.raises(SimError) as info:
        ex.new_order("acct", market())
    assert info.value.code == -4061
    with pytest.raises(SimError) as info:
        ex.new_order("acct", market(positionSide="LONG", reduceOnly="true"))
    assert info.value.code == -1106
    ex.new_order("acct", market(positionSide="LONG", quantity="0.01"))
    ex.new_order("acct", market(positionSide="SHORT", side="SELL", quantity="0.02"))
    rows = {r["positionSide"]: r["positionAmt"] for r in ex.position_risk("acct", BTC, 2)}
    assert rows == {"LONG": "0.01", "SHORT": "-0.02"}
    with pytest.raises(SimError) as info:
        ex.position_side_dual("acct", {"dualSidePosition": "false"})
    assert info.value.code == -4068


def test_position_mode_change_rules(ex: Exchange) -> None:
    with pytest.raises(SimError) as info:
        ex.position_side_dual("acct", {"dualSidePosition": "false"})
    assert info.value.code == -4059
    ex.new_order("acct", order())
    with pytest.raises(SimError) as info:
        ex.position_side_dual("acct", {"dualSidePosition": "true"})
    assert info.value.code == -4067


def test_leverage_and_margin_type(ex: Exchange, events: list[dict[str, Any]]) -> None:
    reply = ex.change_leverage("acct", BTC | {"leverage": "10"})
    assert reply == {"leverage": 10, "maxNotionalValue": "80000000", "symbol": "BTCUSDT"}
    assert events[-1]["e"] == "ACCOUNT_CONFIG_UPDATE"
    with pytest.raises(SimError) as info:
        ex.change_leverage("acct", BTC | {"leverage": "126"})
    assert info.value.code == -4028
    assert ex.change_margin_type("acct", BTC | {"marginType": "ISOLATED"})["code"] == 200
    with pytest.raises(SimError) as info:
        ex.change_margin_type("acct", BTC | {"marginType": "ISOLATED"})
    assert info.value.code == -4046
    ex.new_order("acct", order())
    with pytest.raises(SimError) as info:
        ex.change_margin_type("acct", BTC | {"marginType": "CROSSED"})
    assert info.value.code == -4047
    brackets = ex.leverage_bracket("acct", BTC)
    assert brackets[0]["symbol"] == "BTCUSDT" and brackets[0]["brackets"][0]["bracket"] == 1


def test_account_shapes(ex: Exchange) -> None:
    ex.new_order("acct", market(quantity="0.1"))
    v3 = ex.account("acct", 3)
    v2 = ex.account("acct", 2)
    assert v3["totalWalletBalance"] == v3["assets"][0]["walletBalance"]
    assert "feeTier" in v2 and "feeTier" not in v3
    assert [p["symbol"] for p in v3["positions"]] == ["BTCUSDT"]
    assert len(ex.position_risk("acct", {}, 2)) == 4  # every symbol in v2
    assert Decimal(v3["totalPositionInitialMargin"]) == Decimal("0.1") * 50000 / 20
