"""Every validation rule, with its boundaries: exact limits pass, one tick/step off fails."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oexec.errors import ErrorCode, RejectError, ValidationError
from oexec.models import OrderIntent, SymbolRules
from oexec.models.enums import OrderType, PositionSide, Side, TimeInForce
from oexec.service.rules.context import MarketContext
from oexec.service.rules.order_shape import GTD_MAX_MS, GTD_MIN_AHEAD_MS
from oexec.service.rules.validation import DEFAULT_RULES, ValidationPipeline

from .helpers import NOW_MS, ctx, limit, market, rules

D = Decimal
PIPELINE = ValidationPipeline()


def check(
    intent: OrderIntent,
    symbol_rules: SymbolRules | None = None,
    context: MarketContext | None = None,
) -> None:
    PIPELINE.check(
        intent.terms, symbol_rules if symbol_rules is not None else rules(), context or ctx()
    )


def refused(intent: OrderIntent, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        check(intent, **kwargs)
    return caught.value


def code_of(intent: OrderIntent, **kwargs: Any) -> ErrorCode:
    return refused(intent, **kwargs).code


# -- pipeline ---------------------------------------------------------------------------
def test_a_valid_limit_order_passes() -> None:
    check(limit())


def test_unknown_symbol() -> None:
    with pytest.raises(ValidationError) as caught:
        PIPELINE.check(limit(symbol="NOPEUSDT").terms, None, ctx())
    assert caught.value.code is ErrorCode.SYMBOL_UNKNOWN
    assert caught.value.details["value"] == "NOPEUSDT"


def test_failure_details_carry_rule_field_value_limit_as_strings() -> None:
    err = refused(limit(quantity=D("1E+5")))
    assert isinstance(err, RejectError)
    assert err.details == {
        "rule": "quantity",
        "field": "quantity",
        "value": "100000",
        "limit": "1000",
    }


def test_rules_run_in_the_documented_order() -> None:
    names = [rule.name for rule in DEFAULT_RULES]
    assert names == [
        "symbol_tradable",
        "order_type",
        "quantity",
        "price",
        "min_notional",
        "percent_price",
        "max_num_orders",
        "position_side",
        "stop_price",
        "good_till_date",
    ]
    # breaks both the quantity step and the tick: the quantity rule speaks first
    assert code_of(limit(quantity=D("0.0015"), price=D("50000.05"))) is ErrorCode.QTY_STEP


def test_a_custom_rule_list_is_honoured() -> None:
    only_types = ValidationPipeline([DEFAULT_RULES[1]])
    only_types.check(limit(quantity=D("99999")).terms, rules(), ctx())  # no quantity rule
    with pytest.raises(ValidationError):
        only_types.check(limit(time_in_force=None).terms, rules(), ctx())


# -- symbol tradable --------------------------------------------------------------------
@pytest.mark.parametrize("status", ["BREAK", "SETTLING", "PENDING_TRADING", "CLOSE"])
def test_symbol_not_trading(status: str) -> None:
    assert code_of(limit(), symbol_rules=rules(status=status)) is ErrorCode.SYMBOL_NOT_TRADING


# -- order type and time in force -------------------------------------------------------
def test_order_type_not_listed() -> None:
    symbol = rules(order_types=frozenset({OrderType.LIMIT}))
    assert code_of(market(), symbol_rules=symbol) is ErrorCode.ORDER_TYPE_NOT_ALLOWED


def test_limit_needs_a_time_in_force() -> None:
    assert code_of(limit(time_in_force=None)) is ErrorCode.TIME_IN_FORCE_REQUIRED


def test_market_takes_no_time_in_force() -> None:
    err = refused(market(time_in_force=TimeInForce.GTC))
    assert err.code is ErrorCode.TIME_IN_FORCE_NOT_ALLOWED
    assert err.details["limit"] == "none"


def test_time_in_force_not_listed_for_symbol() -> None:
    symbol = rules(time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC}))
    assert code_of(limit(time_in_force=TimeInForce.GTX), symbol_rules=symbol) is (
        ErrorCode.TIME_IN_FORCE_NOT_ALLOWED
    )


def test_stop_limit_time_in_force_is_optional() -> None:
    check(limit(type=OrderType.STOP, stop_price=D("51000.0"), time_in_force=None))


# -- quantity: LOT_SIZE / MARKET_LOT_SIZE -----------------------------------------------
@pytest.mark.parametrize(
    ("quantity", "code"),
    [
        ("0.1", None),  # plenty of notional
        ("1000", None),  # exact max
        ("1000.001", ErrorCode.QTY_ABOVE_MAX),
        ("1E+5", ErrorCode.QTY_ABOVE_MAX),
        ("0.0015", ErrorCode.QTY_STEP),
        ("0.0100001", ErrorCode.QTY_STEP),
        ("0.000999", ErrorCode.QTY_BELOW_MIN),
        ("1E-8", ErrorCode.QTY_BELOW_MIN),
        ("0", ErrorCode.QTY_BELOW_MIN),
    ],
)
def test_lot_size(quantity: str, code: ErrorCode | None) -> None:
    intent = limit(quantity=D(quantity))
    if code is None:
        check(intent)
    else:
        assert code_of(intent) is code


def test_exact_min_quantity_passes_its_own_rule() -> None:
    # 0.001 @ 100000 = 100 notional: exactly the minimum of both filters
    check(limit(quantity=D("0.001"), price=D("100000")), context=ctx(mark_price=D("100000")))


def test_decimal_sums_are_exact() -> None:
    quantity = D("0.1") + D("0.2")  # 0.3 exactly, unlike 0.1 + 0.2 in floats
    check(limit(quantity=quantity))
    check(limit(quantity=D("0.30000000000000000")))


def test_step_is_measured_from_the_minimum() -> None:
    symbol = rules(min_qty=D("0.005"), step_size=D("0.010"), min_notional=D(0))
    check(limit(quantity=D("0.015")), symbol_rules=symbol)
    assert code_of(limit(quantity=D("0.010")), symbol_rules=symbol) is ErrorCode.QTY_STEP


def test_zero_limits_disable_checks() -> None:
    symbol = rules(min_qty=D(0), max_qty=D(0), step_size=D(0), min_notional=D(0))
    check(limit(quantity=D("1E-8")), symbol_rules=symbol)
    check(limit(quantity=D("123456.789")), symbol_rules=symbol)


def test_huge_and_tiny_exponents_do_not_overflow_the_step_check() -> None:
    symbol = rules(min_qty=D(0), max_qty=D(0), step_size=D("1E-18"), min_notional=D(0))
    check(limit(quantity=D("123456789012345678.000000000000000001")), symbol_rules=symbol)
    symbol = rules(min_qty=D(0), max_qty=D(0), step_size=D("1E+5"), min_notional=D(0))
    check(limit(quantity=D("1E+17")), symbol_rules=symbol)
    assert code_of(limit(quantity=D("1E+17") + 1), symbol_rules=symbol) is ErrorCode.QTY_STEP


def test_market_orders_use_market_lot_size() -> None:
    check(limit(quantity=D("500")))
    err = refused(market(quantity=D("500")))
    assert err.code is ErrorCode.QTY_ABOVE_MAX
    assert err.details["limit"] == "120"
    check(market(quantity=D("120")))


def test_market_falls_back_to_lot_size_without_market_filter() -> None:
    symbol = rules(market_min_qty=D(0), market_max_qty=D(0), market_step_size=D(0))
    check(market(quantity=D("500")), symbol_rules=symbol)
    assert code_of(market(quantity=D("1000.001")), symbol_rules=symbol) is ErrorCode.QTY_ABOVE_MAX


# -- price: PRICE_FILTER ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("price", "code"),
    [
        ("50000.1", None),
        ("50000.10", None),
        ("50000.05", ErrorCode.PRICE_TICK),
        ("50000.01", ErrorCode.PRICE_TICK),
        ("99.9", ErrorCode.PRICE_BELOW_MIN),
        ("1E-8", ErrorCode.PRICE_BELOW_MIN),
        ("1000000.1", ErrorCode.PRICE_ABOVE_MAX),
    ],
)
def test_price_filter(price: str, code: ErrorCode | None) -> None:
    band_free = ctx(mark_price=None)
    intent = limit(price=D(price), quantity=D("1"))
    if code is None:
        check(intent, context=band_free)
    else:
        assert code_of(intent, context=band_free) is code


def test_exact_min_and_max_price() -> None:
    free = ctx(mark_price=None)
    check(limit(price=D("100"), quantity=D("1")), context=free)
    check(limit(price=D("1000000"), quantity=D("1")), context=free)
    check(limit(price=D("1E+6"), quantity=D("1")), context=free)


def test_tick_is_measured_from_min_price() -> None:
    symbol = rules(min_price=D("0.05"), tick_size=D("0.10"), min_notional=D(0))
    free = ctx(mark_price=None)
    check(limit(price=D("0.15")), symbol_rules=symbol, context=free)
    assert code_of(limit(price=D("0.10")), symbol_rules=symbol, context=free) is (
        ErrorCode.PRICE_TICK
    )


def test_price_presence() -> None:
    assert code_of(limit(price=None)) is ErrorCode.PRICE_REQUIRED
    assert code_of(market(price=D("50000"))) is ErrorCode.PRICE_NOT_ALLOWED


def test_stop_price_is_checked_against_price_filter() -> None:
    err = refused(market(type=OrderType.STOP_MARKET, stop_price=D("51000.05")))
    assert err.code is ErrorCode.PRICE_TICK
    assert err.details["field"] == "stop_price"


def test_activation_price_is_checked_against_price_filter() -> None:
    trailing = market(
        type=OrderType.TRAILING_STOP_MARKET, callback_rate=D("1"), activation_price=D("50")
    )
    err = refused(trailing)
    assert (err.code, err.details["field"]) == (ErrorCode.PRICE_BELOW_MIN, "activation_price")


# -- MIN_NOTIONAL -----------------------------------------------------------------------
def test_min_notional_exact_boundary() -> None:
    check(limit(quantity=D("0.002"), price=D("50000")))  # 100 exactly
    err = refused(limit(quantity=D("0.001"), price=D("99999.9")))
    assert err.code is ErrorCode.MIN_NOTIONAL
    assert err.details["value"] == "99.9999"


def test_min_notional_market_uses_mark_price() -> None:
    assert code_of(market(quantity=D("0.001"))) is ErrorCode.MIN_NOTIONAL  # 50 at mark
    check(market(quantity=D("0.002")))


def test_min_notional_market_without_mark_defers_to_venue() -> None:
    check(market(quantity=D("0.001")), context=ctx(mark_price=None))


def test_min_notional_reduce_only_is_exempt() -> None:
    check(limit(side=Side.SELL, quantity=D("0.001"), reduce_only=True), context=ctx(position=D(1)))


def test_min_notional_stop_market_uses_stop_price() -> None:
    intent = market(type=OrderType.STOP_MARKET, stop_price=D("51000.0"), quantity=D("0.001"))
    assert code_of(intent) is ErrorCode.MIN_NOTIONAL


# -- PERCENT_PRICE ----------------------------------------------------------------------
def test_percent_price_buy_cap() -> None:
    check(limit(price=D("52500.0")))  # mark 50000 × 1.05 exactly
    err = refused(limit(price=D("52500.1")))
    assert err.code is ErrorCode.PERCENT_PRICE_ABOVE
    assert err.details["limit"] == "52500.0000"


def test_percent_price_sell_floor() -> None:
    check(limit(side=Side.SELL, price=D("47500.0")))
    assert code_of(limit(side=Side.SELL, price=D("47499.9"))) is ErrorCode.PERCENT_PRICE_BELOW


def test_percent_price_only_bounds_the_side_that_matters() -> None:
    check(limit(side=Side.BUY, price=D("1000.0"), quantity=D("1")))  # a low bid is fine
    check(limit(side=Side.SELL, price=D("90000.0")))


def test_percent_price_skipped_without_mark_or_multiplier() -> None:
    check(limit(price=D("60000.0")), context=ctx(mark_price=None))
    check(limit(price=D("60000.0")), symbol_rules=rules(multiplier_up=D(0)))


# -- MAX_NUM_ORDERS / MAX_NUM_ALGO_ORDERS -----------------------------------------------
def test_max_num_orders_counts_plain_and_conditional() -> None:
    check(limit(), context=ctx(open_orders=199))
    assert code_of(limit(), context=ctx(open_orders=200)) is ErrorCode.MAX_NUM_ORDERS
    assert code_of(limit(), context=ctx(open_orders=195, open_algo_orders=5)) is (
        ErrorCode.MAX_NUM_ORDERS
    )


def test_max_num_algo_orders_only_for_conditional_types() -> None:
    stop = market(type=OrderType.STOP_MARKET, stop_price=D("51000.0"))
    check(stop, context=ctx(open_algo_orders=9))
    assert code_of(stop, context=ctx(open_algo_orders=10)) is ErrorCode.MAX_NUM_ALGO_ORDERS
    check(limit(), context=ctx(open_algo_orders=10))


# -- reduceOnly / positionSide ----------------------------------------------------------
def test_one_way_mode_takes_position_side_both_only() -> None:
    assert code_of(limit(position_side=PositionSide.LONG)) is ErrorCode.POSITION_SIDE_MISMATCH


def test_hedge_mode_needs_long_or_short() -> None:
    hedge = ctx(dual_side_position=True)
    assert code_of(limit(), context=hedge) is ErrorCode.POSITION_SIDE_MISMATCH
    check(limit(position_side=PositionSide.LONG), context=hedge)
    check(limit(side=Side.SELL, position_side=PositionSide.LONG), context=hedge)


def test_hedge_mode_refuses_reduce_only() -> None:
    hedge = ctx(dual_side_position=True)
    intent = limit(side=Side.SELL, position_side=PositionSide.LONG, reduce_only=True)
    assert code_of(intent, context=hedge) is ErrorCode.REDUCE_ONLY_CONFLICT


@pytest.mark.parametrize(
    ("side", "position", "ok"),
    [
        (Side.SELL, "1", True),
        (Side.BUY, "-1", True),
        (Side.BUY, "1", False),
        (Side.SELL, "-0.5", False),
        (Side.BUY, "0", True),  # unknown or flat: the venue decides
    ],
)
def test_reduce_only_must_face_the_position(side: Side, position: str, ok: bool) -> None:
    intent = limit(side=side, reduce_only=True, price=D("50000.0"))
    context = ctx(position=D(position))
    if ok:
        check(intent, context=context)
    else:
        assert code_of(intent, context=context) is ErrorCode.REDUCE_ONLY_CONFLICT


# -- stop price presence ----------------------------------------------------------------
@pytest.mark.parametrize(
    "kind", [OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.STOP]
)
def test_conditional_types_need_a_stop_price(kind: OrderType) -> None:
    price = D("50000.0") if kind.needs_price else None
    tif = TimeInForce.GTC if kind.needs_price else None
    intent = limit(type=kind, price=price, time_in_force=tif)
    assert code_of(intent) is ErrorCode.STOP_PRICE_REQUIRED


def test_plain_types_refuse_a_stop_price() -> None:
    assert code_of(limit(stop_price=D("51000.0"))) is ErrorCode.STOP_PRICE_NOT_ALLOWED


def test_trailing_stop_needs_a_callback_rate() -> None:
    trailing = market(type=OrderType.TRAILING_STOP_MARKET)
    assert code_of(trailing) is ErrorCode.CALLBACK_RATE_REQUIRED
    check(market(type=OrderType.TRAILING_STOP_MARKET, callback_rate=D("0.5")))


# -- GTD --------------------------------------------------------------------------------
def gtd(at: int | None) -> OrderIntent:
    return limit(time_in_force=TimeInForce.GTD, good_till_date=at)


def test_gtd_window() -> None:
    check(gtd(NOW_MS + GTD_MIN_AHEAD_MS + 1000))
    assert code_of(gtd(NOW_MS + GTD_MIN_AHEAD_MS)) is ErrorCode.GOOD_TILL_DATE_INVALID
    # the venue keeps whole seconds: 600.999 s ahead is 600 s ahead
    assert code_of(gtd(NOW_MS + GTD_MIN_AHEAD_MS + 999)) is ErrorCode.GOOD_TILL_DATE_INVALID
    check(gtd(GTD_MAX_MS - 1000))
    assert code_of(gtd(GTD_MAX_MS)) is ErrorCode.GOOD_TILL_DATE_INVALID


def test_gtd_needs_a_date_and_others_refuse_one() -> None:
    err = refused(gtd(None))
    assert (err.code, err.details["limit"]) == (ErrorCode.GOOD_TILL_DATE_INVALID, "required")
    assert code_of(limit(good_till_date=NOW_MS + 10_000_000)) is ErrorCode.GOOD_TILL_DATE_INVALID


def test_gtd_lower_bound_skipped_when_time_unknown() -> None:
    check(gtd(1_000), context=ctx(now_ms=0))


@pytest.mark.parametrize(
    "kind", [OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.TRAILING_STOP_MARKET]
)
def test_conditional_market_types_use_market_lot_size(kind: OrderType) -> None:
    extra: dict[str, Any] = (
        {"callback_rate": D("1")}
        if kind is OrderType.TRAILING_STOP_MARKET
        else {"stop_price": D("51000.0")}
    )
    intent = market(type=kind, quantity=D("500"), **extra)
    assert code_of(intent) is ErrorCode.QTY_ABOVE_MAX


def test_trailing_stop_notional_is_judged_at_the_mark() -> None:
    trailing = market(
        type=OrderType.TRAILING_STOP_MARKET,
        callback_rate=D("1"),
        activation_price=D("100000.0"),
        quantity=D("0.001"),
    )
    assert code_of(trailing) is ErrorCode.MIN_NOTIONAL  # 0.001 × mark 50000 = 50
