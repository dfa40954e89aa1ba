"""Venue JSON → models: exactness of Decimals, exchangeInfo filters, stream events (§G.3)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oexec.models import OrderType, PositionSide, Side, TimeInForce, VenueOrderStatus
from oexec.venue.binance.filters import parse_exchange_info
from oexec.venue.binance.parsing import (
    VenueParseError,
    dec,
    integer,
    parse_account_update,
    parse_listen_key,
    parse_order,
    parse_order_trade_update,
    parse_orders,
    parse_user_trades,
)
from tests.venue.conftest import load


def test_exchange_info_symbols_and_filters_exact() -> None:
    info = parse_exchange_info(load("exchange_info.json"))
    assert info.server_time == 1700000000000
    assert set(info.symbols) == {"BTCUSDT", "ETHUSDT", "OLDUSDT_230929"}
    btc = info.symbols["BTCUSDT"]
    assert btc.status == "TRADING" and btc.base_asset == "BTC" and btc.quote_asset == "USDT"
    assert str(btc.tick_size) == "0.10"  # trailing zero kept: exact string
    assert btc.min_price == Decimal("556.80") and btc.max_price == Decimal("4529764")
    assert (btc.min_qty, btc.max_qty, btc.step_size) == (
        Decimal("0.001"),
        Decimal("1000"),
        Decimal("0.001"),
    )
    assert btc.market_max_qty == Decimal("120") and btc.market_step_size == Decimal("0.001")
    assert btc.min_notional == Decimal("100")
    assert btc.multiplier_up == Decimal("1.0500") and btc.multiplier_down == Decimal("0.9500")
    assert btc.max_num_orders == 200 and btc.max_num_algo_orders == 10
    assert btc.trigger_protect == Decimal("0.0500") and btc.market_take_bound == Decimal("0.05")
    assert btc.order_types == frozenset(OrderType)
    assert btc.time_in_force == frozenset(TimeInForce)  # RPI (unknown to oexec) skipped
    assert (btc.price_precision, btc.quantity_precision) == (2, 3)
    eth = info.symbols["ETHUSDT"]
    assert eth.order_types == {OrderType.LIMIT, OrderType.MARKET}
    assert eth.tick_size == Decimal("0.01") and eth.min_notional == Decimal("20")
    old = info.symbols["OLDUSDT_230929"]
    assert old.status == "SETTLING" and old.max_price == 0 and old.min_qty == 0


def test_exchange_info_rate_limits() -> None:
    info = parse_exchange_info(load("exchange_info.json"))
    kinds = {(r.kind, r.interval_s, r.limit) for r in info.rate_limits}
    assert kinds == {("REQUEST_WEIGHT", 60, 2400), ("ORDERS", 60, 1200), ("ORDERS", 10, 300)}


@pytest.mark.parametrize("bad", [[], {"symbols": 1, "rateLimits": []}, {"rateLimits": []}])
def test_exchange_info_shape_errors(bad: object) -> None:
    with pytest.raises(VenueParseError):
        parse_exchange_info(bad)


def test_exchange_info_min_notional_spot_key_and_bad_filters() -> None:
    data = {
        "symbols": [
            {"symbol": "X", "filters": [{"filterType": "MIN_NOTIONAL", "minNotional": "5.5"}]}
        ],
        "rateLimits": [],
    }
    assert parse_exchange_info(data).symbols["X"].min_notional == Decimal("5.5")
    with pytest.raises(VenueParseError):
        parse_exchange_info({"symbols": [{"symbol": "X", "filters": {}}], "rateLimits": []})


def test_parse_order_new_limit() -> None:
    order = parse_order(load("order_new_limit.json"))
    assert order.symbol == "BTCUSDT" and order.exchange_order_id == "22542179"
    assert order.client_order_id == "oexec-abc123"
    assert order.status is VenueOrderStatus.NEW and order.side is Side.BUY
    assert order.type is OrderType.LIMIT and order.time_in_force is TimeInForce.GTC
    assert order.quantity == Decimal("0.010") and order.price == Decimal("43000.10")
    assert order.executed_quantity == 0 and order.stop_price is None
    assert order.update_time == 1700000000123
    assert order.raw["selfTradePreventionMode"] == "EXPIRE_MAKER"


def test_parse_order_market_filled_result() -> None:
    order = parse_order(load("order_market_filled.json"))
    assert order.status is VenueOrderStatus.FILLED
    assert order.executed_quantity == Decimal("0.003")
    assert order.average_price == Decimal("43000.10000")
    assert order.cumulative_quote == Decimal("129.0003")
    assert order.reduce_only is True


def test_parse_order_variants() -> None:
    data = dict(load("order_new_limit.json"))
    data.update(
        type="MARKET",
        origType="STOP_MARKET",
        stopPrice="42000",
        timeInForce="GTE_GTC",
        positionSide="LONG",
        time=5,
    )
    del data["executedQty"], data["updateTime"]
    data["cumQty"] = "0.002"
    order = parse_order(data)
    assert order.type is OrderType.STOP_MARKET and order.stop_price == Decimal("42000")
    assert order.time_in_force is None and order.position_side is PositionSide.LONG
    assert order.executed_quantity == Decimal("0.002") and order.update_time == 5
    data["origType"] = "LIQUIDATION"
    assert parse_order(data).type is OrderType.MARKET


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "WEIRD"),
        ("side", "UP"),
        ("origType", "ICEBERG"),
        ("origQty", "abc"),
        ("origQty", None),
        ("orderId", "x1"),
        ("symbol", 5),
        ("positionSide", "DIAGONAL"),
        ("price", "NaN"),
        ("price", True),
    ],
)
def test_parse_order_rejects_bad_fields(field: str, value: object) -> None:
    data = dict(load("order_new_limit.json"))
    data[field] = value
    if field == "origType":
        data["type"] = value
    with pytest.raises(VenueParseError):
        parse_order(data)


def test_parse_order_shape_errors() -> None:
    with pytest.raises(VenueParseError):
        parse_order([1])
    with pytest.raises(VenueParseError):
        parse_orders({})
    with pytest.raises(VenueParseError):
        parse_order({"symbol": "X"})
    assert parse_orders([load("order_new_limit.json")])[0].symbol == "BTCUSDT"


def test_numbers_are_taken_by_their_printed_form() -> None:
    assert dec({"p": 0.1}, "p") == Decimal("0.1")
    assert dec({"p": 3}, "p") == Decimal(3)
    assert integer({"i": "12"}, "i") == 12
    with pytest.raises(VenueParseError):
        dec({"p": [1]}, "p")
    with pytest.raises(VenueParseError):
        integer({"i": 1.5}, "i")


def test_user_trades() -> None:
    trades = parse_user_trades(load("user_trades.json"))
    first, second = trades
    assert first.trade_id == 698759 and first.exchange_order_id == "22542180"
    assert first.client_order_id is None and first.side is Side.SELL
    assert first.commission == Decimal("0.05160012") and first.commission_asset == "USDT"
    assert first.realized_pnl == Decimal("1.23450000") and first.is_maker is False
    assert second.is_maker is True and second.commission == Decimal("-0.00100000")
    with pytest.raises(VenueParseError):
        parse_user_trades({})
    with pytest.raises(VenueParseError):
        parse_user_trades([3])


def test_stream_new_order_reference_example() -> None:
    update = parse_order_trade_update(load("stream_order_new.json"))
    assert update.execution_type == "NEW" and update.trade is None
    assert update.event_time == 1568879465651 and update.transaction_time == 1568879465650
    order = update.order
    assert order.client_order_id == "TEST" and order.exchange_order_id == "8886774"
    assert order.side is Side.SELL and order.status is VenueOrderStatus.NEW
    assert order.quantity == Decimal("0.001") and order.price == Decimal("70000")
    assert order.executed_quantity == 0 and order.stop_price is None


def test_stream_trade_carries_commission_maker_and_realized_pnl() -> None:
    update = parse_order_trade_update(load("stream_order_trade.json"))
    assert update.execution_type == "TRADE"
    assert update.order.status is VenueOrderStatus.FILLED
    assert update.order.executed_quantity == Decimal("0.001")
    assert update.order.cumulative_quote == Decimal("70000.1") * Decimal("0.001")
    trade = update.trade
    assert trade is not None
    assert trade.trade_id == 123456789 and trade.client_order_id == "TEST"
    assert trade.price == Decimal("70000.1") and trade.quantity == Decimal("0.001")
    assert trade.commission == Decimal("0.01400002") and trade.commission_asset == "USDT"
    assert trade.is_maker is True and trade.realized_pnl == Decimal("-0.10000000")
    assert trade.time == 1568879465699


def test_stream_account_update() -> None:
    update = parse_account_update(load("stream_account_update.json"))
    assert update.reason == "ORDER" and update.event_time == 1564745798939
    usdt, busd = update.balances
    assert usdt.asset == "USDT" and usdt.wallet_balance == Decimal("122624.12345678")
    assert usdt.cross_wallet_balance == Decimal("100.12345678") and busd.asset == "BUSD"
    (position,) = update.positions
    assert position.symbol == "BTCUSDT" and position.amount == Decimal("-0.001")
    assert position.entry_price == Decimal("70000.1")
    assert position.unrealized_pnl == Decimal("0.00000100")


def test_stream_shape_errors() -> None:
    with pytest.raises(VenueParseError):
        parse_order_trade_update({"e": "ORDER_TRADE_UPDATE"})
    with pytest.raises(VenueParseError):
        parse_order_trade_update({"e": "ORDER_TRADE_UPDATE", "o": {"s": "X"}})
    with pytest.raises(VenueParseError):
        parse_account_update({"e": "ACCOUNT_UPDATE"})
    with pytest.raises(VenueParseError):
        parse_account_update({"a": {"B": [1]}})
    assert parse_account_update({"a": {"m": "FUNDING_FEE"}}).balances == ()


def test_listen_key() -> None:
    assert parse_listen_key({"listenKey": "abc"}) == "abc"
    with pytest.raises(VenueParseError):
        parse_listen_key([])
