"""Execution against the synthetic book: takers, makers, partial fills, TIF rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oexec.sim.engine import Exchange, SimError

from .conftest import Clock
from .helpers import kinds, market, order

BTC = {"symbol": "BTCUSDT"}


def status(ex: Exchange, order_id: int) -> dict[str, Any]:
    return ex.query_order("acct", BTC | {"orderId": str(order_id)})


def test_market_walks_levels_with_slippage(ex: Exchange, events: list[dict[str, Any]]) -> None:
    reply = ex.new_order("acct", market(quantity="2.5", newOrderRespType="RESULT"))
    assert reply["status"] == "FILLED" and reply["executedQty"] == "2.5"
    trades = ex.user_trades("acct", BTC)
    assert [(t["price"], t["qty"]) for t in trades] == [
        ("50000.1", "1"),
        ("50000.2", "1"),
        ("50000.3", "0.5"),
    ]
    assert [t["id"] for t in trades] == sorted(t["id"] for t in trades)
    assert all(not t["maker"] for t in trades)
    assert kinds(events)[:4] == [
        "ORDER_TRADE_UPDATE:NEW",
        "TRADE_LITE",
        "ORDER_TRADE_UPDATE:TRADE",
        "ACCOUNT_UPDATE",
    ]
    # cumQuote = 50000.1 + 50000.2 + 0.5 * 50000.3, exactly
    assert reply["cumQuote"] == "125000.45"


def test_ack_reports_new_even_when_filled(ex: Exchange) -> None:
    reply = ex.new_order("acct", market(quantity="0.01"))
    assert reply["status"] == "NEW" and reply["executedQty"] == "0"
    assert status(ex, reply["orderId"])["status"] == "FILLED"


def test_market_remainder_expires_at_take_bound(ex: Exchange, events: list[Any]) -> None:
    thin = Exchange(now_ms=lambda: 1, liquidity_per_level=Decimal("0.001"))
    thin.add_account("acct")
    got: list[dict[str, Any]] = []
    thin.subscribe("acct", got.append)
    thin.set_price("ETHUSDT", Decimal("3000"))
    # 5% band over 0.01 ticks = 15000 levels of 0.001 = 15 ETH; ask for more.
    reply = thin.new_order(
        "acct", market(symbol="ETHUSDT", quantity="20", newOrderRespType="RESULT")
    )
    assert reply["status"] == "EXPIRED"
    assert reply["executedQty"] == "15"
    assert got[-1]["o"]["x"] == "EXPIRED" and got[-1]["o"]["er"] == "9"


def test_market_rejected_when_best_price_breaks_band(ex: Exchange) -> None:
    ex.set_price("BTCUSDT", Decimal("50000"), mark=Decimal("40000"))
    with pytest.raises(SimError) as info:
        ex.new_order("acct", market(quantity="0.01"))
    assert info.value.code == -4131


def test_limit_rests_then_fills_partially_per_update(ex: Exchange) -> None:
    placed = ex.new_order("acct", order(side="SELL", quantity="2.5", price="50100"))
    assert status(ex, placed["orderId"])["status"] == "NEW"
    ex.set_price("BTCUSDT", Decimal("50050"))
    assert status(ex, placed["orderId"])["executedQty"] == "0"
    ex.set_price("BTCUSDT", Decimal("50100"))
    assert status(ex, placed["orderId"])["status"] == "PARTIALLY_FILLED"
    ex.set_price("BTCUSDT", Decimal("50150"))
    ex.set_price("BTCUSDT", Decimal("50150"))
    final = status(ex, placed["orderId"])
    assert final["status"] == "FILLED" and final["avgPrice"] == "50100"
    assert all(t["maker"] for t in ex.user_trades("acct", BTC))


def test_marketable_limit_takes_then_rests(ex: Exchange) -> None:
    placed = ex.new_order("acct", order(quantity="3", price="50000.2", newOrderRespType="RESULT"))
    assert placed["status"] == "PARTIALLY_FILLED" and placed["executedQty"] == "2"
    assert ex.open_order("acct", BTC | {"orderId": str(placed["orderId"])})["price"] == "50000.2"


def test_ioc_remainder_expires(ex: Exchange, events: list[dict[str, Any]]) -> None:
    reply = ex.new_order(
        "acct", order(quantity="3", price="50000.2", timeInForce="IOC", newOrderRespType="RESULT")
    )
    assert reply["status"] == "EXPIRED" and reply["executedQty"] == "2"
    assert events[-1]["o"]["er"] == "2"


def test_fok_rejected_when_not_fully_fillable(ex: Exchange) -> None:
    with pytest.raises(SimError) as info:
        ex.new_order("acct", order(quantity="3", price="50000.2", timeInForce="FOK"))
    assert info.value.code == -5021
    reply = ex.new_order(
        "acct", order(quantity="2", price="50000.2", timeInForce="FOK", newOrderRespType="RESULT")
    )
    assert reply["status"] == "FILLED"


def test_gtx_rejected_when_it_would_take(ex: Exchange) -> None:
    with pytest.raises(SimError) as info:
        ex.new_order("acct", order(price="50000.1", timeInForce="GTX"))
    assert info.value.code == -5022
    assert ex.new_order("acct", order(price="50000", timeInForce="GTX"))["status"] == "NEW"


def test_gtd_expires_at_its_date(ex: Exchange, clock: Clock, events: list[Any]) -> None:
    gtd = clock.ms + 700_000
    placed = ex.new_order("acct", order(timeInForce="GTD", goodTillDate=str(gtd)))
    clock.ms = gtd - 1
    ex.tick()
    assert status(ex, placed["orderId"])["status"] == "NEW"
    clock.ms = gtd
    ex.tick()
    assert status(ex, placed["orderId"])["status"] == "EXPIRED"
    assert kinds(events)[-1] == "ORDER_TRADE_UPDATE:EXPIRED"


def test_decimal_exactness(ex: Exchange) -> None:
    ex.new_order("acct", order(symbol="ETHUSDT", quantity="0.1", price="3000.1"))
    ex.new_order("acct", order(symbol="ETHUSDT", quantity="0.2", price="3000.2"))
    ex.set_price("ETHUSDT", Decimal("2999"))
    position = ex.position_risk("acct", {"symbol": "ETHUSDT"}, 3)[0]
    assert position["positionAmt"] == "0.3"  # 0.1 + 0.2, not 0.30000000000000004
    trades = ex.user_trades("acct", {"symbol": "ETHUSDT"})
    assert {t["quoteQty"] for t in trades} == {"300.001", "600.002"}  # taker at the 3000.01 ask
    assert all("E" not in t["price"] and "e" not in t["qty"] for t in trades)


def test_no_float_leaks_in_json(ex: Exchange, events: list[dict[str, Any]]) -> None:
    ex.new_order("acct", market(quantity="0.5"))

    def walk(value: Any) -> None:
        assert not isinstance(value, float)
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(events)
    walk(ex.account("acct", 3))
    walk(ex.account("acct", 2))
    walk(ex.position_risk("acct", {}, 2))
    walk(ex.exchange_info([]))
