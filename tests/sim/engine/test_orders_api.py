"""Query, cancel, modify, batch, countdown and market-data operations."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from oexec.sim.engine import DEFAULT_SYMBOLS, Exchange, SimError

from .conftest import Clock
from .helpers import kinds, market, order

BTC = {"symbol": "BTCUSDT"}


def raises(code: int, call: Any, *args: Any) -> None:
    with pytest.raises(SimError) as info:
        call(*args)
    assert info.value.code == code


def test_query_by_either_id_and_order_ids_increase(ex: Exchange) -> None:
    first = ex.new_order("acct", order(newClientOrderId="one"))
    second = ex.new_order("acct", order())
    assert second["orderId"] > first["orderId"]
    by_client = ex.query_order("acct", BTC | {"origClientOrderId": "one"})
    assert by_client["orderId"] == first["orderId"]
    raises(-1102, ex.query_order, "acct", BTC)
    raises(-2013, ex.query_order, "acct", BTC | {"orderId": "1"})
    assert len(ex.open_orders("acct", {})) == 2
    assert [o["orderId"] for o in ex.all_orders("acct", BTC)] == [
        first["orderId"],
        second["orderId"],
    ]
    assert (
        ex.all_orders("acct", BTC | {"orderId": str(second["orderId"])})[0]["orderId"]
        == (second["orderId"])
    )


def test_cancel_and_cancel_again(ex: Exchange, events: list[dict[str, Any]]) -> None:
    placed = ex.new_order("acct", order())
    ref = BTC | {"orderId": str(placed["orderId"])}
    assert ex.cancel_order("acct", ref)["status"] == "CANCELED"
    assert kinds(events) == ["ORDER_TRADE_UPDATE:NEW", "ORDER_TRADE_UPDATE:CANCELED"]
    raises(-2011, ex.cancel_order, "acct", ref)
    raises(-2013, ex.open_order, "acct", ref)
    assert ex.query_order("acct", ref)["status"] == "CANCELED"


def test_modify_rules(ex: Exchange, events: list[dict[str, Any]]) -> None:
    placed = ex.new_order("acct", order(quantity="0.01", price="49000"))
    ref = BTC | {"orderId": str(placed["orderId"]), "side": "BUY"}
    raises(-5027, ex.modify_order, "acct", ref | {"quantity": "0.01", "price": "49000"})
    raises(-4014, ex.modify_order, "acct", ref | {"quantity": "0.01", "price": "49000.05"})
    amended = ex.modify_order("acct", ref | {"quantity": "0.02", "price": "49500"})
    assert (amended["origQty"], amended["price"], amended["pair"]) == ("0.02", "49500", "BTCUSDT")
    assert kinds(events)[-1] == "ORDER_TRADE_UPDATE:AMENDMENT"
    # Amending to a crossing price trades at once.
    crossed = ex.modify_order("acct", ref | {"quantity": "0.02", "price": "50000.1"})
    assert crossed["status"] == "FILLED"
    stop = ex.new_order("acct", order(type="STOP", stopPrice="51000", price="51000"))
    raises(
        -5025,
        ex.modify_order,
        "acct",
        BTC | {"orderId": str(stop["orderId"]), "side": "BUY", "quantity": "1", "price": "51000"},
    )


def test_modify_to_quantity_at_or_below_executed_cancels(ex: Exchange) -> None:
    placed = ex.new_order("acct", order(side="SELL", quantity="2", price="50100"))
    ex.set_price("BTCUSDT", Decimal("50100"))
    ref = BTC | {"orderId": str(placed["orderId"]), "side": "SELL"}
    reply = ex.modify_order("acct", ref | {"quantity": "1", "price": "50200"})
    assert reply["status"] == "CANCELED" and reply["executedQty"] == "1"


def test_batch_orders_keep_request_order(ex: Exchange) -> None:
    batch = [order(), order(price="1"), market(quantity="0.01")]
    replies = ex.batch_new_orders("acct", {"batchOrders": json.dumps(batch)})
    assert replies[0]["status"] == "NEW"
    assert replies[1] == {"code": -4013, "msg": "Price less than min price."}
    assert replies[2]["type"] == "MARKET"
    raises(-4082, ex.batch_new_orders, "acct", {"batchOrders": json.dumps([order()] * 6)})
    raises(-1130, ex.batch_new_orders, "acct", {"batchOrders": "not json"})
    ids = json.dumps([replies[0]["orderId"], 12345])
    cancelled = ex.batch_cancel_orders("acct", BTC | {"orderIdList": ids})
    assert cancelled[0]["status"] == "CANCELED" and cancelled[1]["code"] == -2011
    modify = [
        BTC
        | {"orderId": str(replies[0]["orderId"]), "side": "BUY", "quantity": "1", "price": "49000"}
    ]
    assert ex.batch_modify_orders("acct", {"batchOrders": json.dumps(modify)})[0]["code"] == (-2013)


def test_cancel_all_and_countdown(ex: Exchange, clock: Clock) -> None:
    ex.new_order("acct", order())
    ex.new_order("acct", order(symbol="ETHUSDT", price="2900"))
    ex.cancel_all_open_orders("acct", BTC)
    assert [o["symbol"] for o in ex.open_orders("acct", {})] == ["ETHUSDT"]
    reply = ex.countdown_cancel_all("acct", {"symbol": "ETHUSDT", "countdownTime": "1000"})
    assert reply == {"symbol": "ETHUSDT", "countdownTime": "1000"}
    clock.ms += 999
    ex.tick()
    assert ex.open_orders("acct", {"symbol": "ETHUSDT"})
    clock.ms += 1
    ex.advance()
    assert ex.open_orders("acct", {}) == []


def test_market_data_shapes(ex: Exchange) -> None:
    info = ex.exchange_info([{"rateLimitType": "ORDERS"}])
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    price_filter = next(f for f in btc["filters"] if f["filterType"] == "PRICE_FILTER")
    assert price_filter["tickSize"] == "0.10"
    assert {s["symbol"] for s in info["symbols"]} == {s.symbol for s in DEFAULT_SYMBOLS}
    assert ex.ticker_price("BTCUSDT")["price"] == "50000"
    assert len(ex.ticker_price(None)) == 4
    assert ex.premium_index("BTCUSDT")["markPrice"] == "50000"
    book = ex.book_ticker("BTCUSDT")
    assert (book["bidPrice"], book["askPrice"]) == ("49999.9", "50000.1")
    depth = ex.depth("BTCUSDT", 5)
    assert len(depth["bids"]) == len(depth["asks"]) == 5
    raises(-4021, ex.depth, "BTCUSDT", 7)
    raises(-1121, ex.ticker_price, "NOPE")
    ex.new_order("acct", market(quantity="0.5"))
    assert ex.ticker_24hr("BTCUSDT")["volume"] == "0.5"


def test_advance_is_seeded_and_reset_restores(clock: Clock) -> None:
    def path(seed: int) -> list[str]:
        exchange = Exchange(now_ms=clock, seed=seed)
        prices = []
        for _ in range(5):
            exchange.advance()
            prices.append(exchange.ticker_price("BTCUSDT")["price"])
        return prices

    assert path(3) == path(3)
    assert path(3) != path(4)
    exchange = Exchange(now_ms=clock, seed=3)
    exchange.add_account("acct", {"USDT": Decimal("500")})
    exchange.new_order("acct", market(quantity="0.002"))
    exchange.advance()
    exchange.reset()
    assert exchange.ticker_price("BTCUSDT")["price"] == "50000"
    assert exchange.balance("acct", 3)[0]["balance"] == "500"
    assert exchange.ground_truth() == [] and exchange.stats()["orders_accepted"] == 0


def test_ground_truth_lists_fills(ex: Exchange) -> None:
    ex.new_order("acct", market(quantity="1.5"))
    truth = ex.ground_truth()
    assert truth[0]["status"] == "FILLED"
    assert [f["qty"] for f in truth[0]["fills"]] == ["1", "0.5"]


def test_unsubscribe_stops_events(ex: Exchange) -> None:
    got: list[dict[str, Any]] = []
    stop = ex.subscribe("acct", got.append)
    ex.new_order("acct", order())
    stop()
    ex.new_order("acct", order())
    assert len(got) == 1
