"""Conditional orders: legacy STOP*/TAKE_PROFIT*, trailing stops and the algo path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oexec.sim.engine import Exchange, SimError

from .helpers import kinds, market, order

BTC = {"symbol": "BTCUSDT"}


def stop_market(**params: str) -> dict[str, str]:
    return order(**({"type": "STOP_MARKET", "price": "", "timeInForce": ""} | params))


@pytest.mark.parametrize(
    ("kind", "side", "stop"),
    [
        ("STOP_MARKET", "BUY", "49000"),
        ("STOP_MARKET", "SELL", "51000"),
        ("TAKE_PROFIT_MARKET", "BUY", "51000"),
        ("TAKE_PROFIT_MARKET", "SELL", "49000"),
    ],
)
def test_immediate_trigger_rejected(ex: Exchange, kind: str, side: str, stop: str) -> None:
    with pytest.raises(SimError) as info:
        ex.new_order("acct", stop_market(type=kind, side=side, stopPrice=stop))
    assert info.value.code == -2021


def test_stop_market_triggers_keeping_order_id(ex: Exchange, events: list[dict[str, Any]]) -> None:
    placed = ex.new_order("acct", stop_market(stopPrice="50500"))
    ex.set_price("BTCUSDT", Decimal("50400"))
    assert ex.query_order("acct", BTC | {"orderId": str(placed["orderId"])})["status"] == "NEW"
    ex.set_price("BTCUSDT", Decimal("50500"))
    final = ex.query_order("acct", BTC | {"orderId": str(placed["orderId"])})
    assert final["status"] == "FILLED"
    assert (final["type"], final["origType"]) == ("MARKET", "STOP_MARKET")
    updates = [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
    assert {u["i"] for u in updates} == {placed["orderId"]}
    assert [(u["x"], u["o"], u["ot"]) for u in updates[:2]] == [
        ("NEW", "STOP_MARKET", "STOP_MARKET"),
        ("NEW", "MARKET", "STOP_MARKET"),
    ]


def test_working_type_mark_price(ex: Exchange) -> None:
    placed = ex.new_order("acct", stop_market(stopPrice="50500", workingType="MARK_PRICE"))
    ex.set_price("BTCUSDT", Decimal("50600"), mark=Decimal("50400"))
    assert ex.open_order("acct", BTC | {"orderId": str(placed["orderId"])})["status"] == "NEW"
    ex.set_price("BTCUSDT", Decimal("50600"), mark=Decimal("50500"))
    with pytest.raises(SimError) as info:
        ex.open_order("acct", BTC | {"orderId": str(placed["orderId"])})
    assert info.value.code == -2013


def test_price_protect_blocks_trigger_on_divergence(ex: Exchange) -> None:
    placed = ex.new_order("acct", stop_market(stopPrice="50500", priceProtect="TRUE"))
    ex.set_price("BTCUSDT", Decimal("50600"), mark=Decimal("47000"))
    assert ex.open_order("acct", BTC | {"orderId": str(placed["orderId"])})["status"] == "NEW"


def test_stop_limit_becomes_resting_limit(ex: Exchange) -> None:
    placed = ex.new_order("acct", order(type="STOP", stopPrice="50500", price="50400"))
    ex.set_price("BTCUSDT", Decimal("50500"))
    live = ex.open_order("acct", BTC | {"orderId": str(placed["orderId"])})
    assert (live["type"], live["origType"], live["price"]) == ("LIMIT", "STOP", "50400")


def test_close_position_closes_whole_position(ex: Exchange) -> None:
    ex.new_order("acct", market(quantity="0.7"))
    ex.new_order(
        "acct", stop_market(side="SELL", stopPrice="49000", closePosition="true", quantity="")
    )
    ex.set_price("BTCUSDT", Decimal("49000"))
    assert ex.position_risk("acct", BTC, 3) == []


def test_close_position_with_quantity_rejected(ex: Exchange) -> None:
    with pytest.raises(SimError) as info:
        ex.new_order(
            "acct", stop_market(side="SELL", stopPrice="49000", closePosition="true", quantity="1")
        )
    assert info.value.code == -4137


def test_trailing_stop_sell(ex: Exchange) -> None:
    ex.new_order("acct", market(quantity="0.01"))
    trailing = order(
        type="TRAILING_STOP_MARKET",
        side="SELL",
        price="",
        timeInForce="",
        callbackRate="1",
        activationPrice="51000",
        reduceOnly="true",
    )
    placed = ex.new_order("acct", trailing)
    assert placed["priceRate"] == "1" and placed["activatePrice"] == "51000"
    ref = BTC | {"orderId": str(placed["orderId"])}
    for price in ("50500", "51000", "52000", "51600"):
        ex.set_price("BTCUSDT", Decimal(price))
        assert ex.query_order("acct", ref)["status"] == "NEW"
    ex.set_price("BTCUSDT", Decimal("51480"))  # 52000 * 0.99
    assert ex.query_order("acct", ref)["status"] == "FILLED"


def test_trailing_activation_that_would_trigger_is_rejected(ex: Exchange) -> None:
    params = order(
        type="TRAILING_STOP_MARKET",
        side="SELL",
        price="",
        timeInForce="",
        callbackRate="1",
        activationPrice="49000",
    )
    with pytest.raises(SimError) as info:
        ex.new_order("acct", params)
    assert info.value.code == -2021


def algo(**params: str) -> dict[str, str]:
    base = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "STOP_MARKET",
        "quantity": "0.01",
        "triggerPrice": "49000",
    }
    return base | params


def test_algo_order_triggers_a_new_engine_order(ex: Exchange, events: list[dict[str, Any]]) -> None:
    placed = ex.new_algo_order("acct", algo(clientAlgoId="my-algo"))
    assert placed["algoStatus"] == "NEW" and placed["clientAlgoId"] == "my-algo"
    assert ex.open_algo_orders("acct", {})[0]["algoId"] == placed["algoId"]
    ex.set_price("BTCUSDT", Decimal("48990"))
    algo_events = [e["o"] for e in events if e["e"] == "ALGO_UPDATE"]
    assert [a["X"] for a in algo_events] == ["NEW", "TRIGGERED", "FINISHED"]
    engine_id = int(algo_events[1]["ai"])
    order_events = [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
    assert {o["i"] for o in order_events} == {engine_id}
    assert ex.query_order("acct", BTC | {"orderId": str(engine_id)})["status"] == "FILLED"
    assert ex.query_algo_order("acct", {"clientAlgoId": "my-algo"})["algoStatus"] == "FINISHED"


def test_algo_cancel_and_errors(ex: Exchange) -> None:
    placed = ex.new_algo_order("acct", algo())
    reply = ex.cancel_algo_order("acct", {"algoId": str(placed["algoId"])})
    assert reply["algoId"] == placed["algoId"]
    with pytest.raises(SimError) as info:
        ex.cancel_algo_order("acct", {"algoId": str(placed["algoId"])})
    assert info.value.code == -2011
    with pytest.raises(SimError) as info:
        ex.new_algo_order("acct", algo(algoType="TWAP"))
    assert info.value.code == -1130
    with pytest.raises(SimError) as info:
        ex.new_algo_order("acct", algo(type="LIMIT"))
    assert info.value.code == -1116
    with pytest.raises(SimError) as info:
        ex.new_algo_order("acct", algo(triggerPrice="51000"))
    assert info.value.code == -2021
    ex.new_algo_order("acct", algo())
    ex.cancel_all_algo_orders("acct", BTC)
    assert ex.open_algo_orders("acct", BTC) == []
    assert len(ex.all_algo_orders("acct", BTC)) == 2
    assert kinds([]) == []
