"""Parameter validation and filter checks, with the venue's codes and order (§H.2)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oexec.sim.engine import Exchange, SimError

from .helpers import market, order


def code_of(ex: Exchange, params: dict[str, str]) -> int:
    with pytest.raises(SimError) as info:
        ex.new_order("acct", params)
    assert info.value.http_status == 400
    return info.value.code


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (order(symbol=""), -1102),
        (order(symbol="NOPEUSDT"), -1121),
        (order(side=""), -1102),
        (order(side="HOLD"), -1117),
        (order(type="ICEBERG"), -1116),
        (order(timeInForce="FOREVER"), -1115),
        (order(timeInForce=""), -1102),
        (order(quantity=""), -1102),
        (order(quantity="1e-3"), -1100),
        (order(quantity="-1"), -1100),
        (order(price="abc"), -1100),
        (market(price="50000"), -1106),
        (order(stopPrice="48000"), -1106),
        (order(reduceOnly="maybe"), -1130),
        (order(positionSide="LONG"), -4061),
        (order(positionSide="UP"), -4060),
        (order(newOrderRespType="FULL"), -1136),
        (order(newClientOrderId="has space"), -4015),
        (order(newClientOrderId="x" * 37), -4015),
        (order(price="49000.05"), -4014),
        (order(price="49000.123"), -1111),
        (order(price="500"), -4013),
        (order(price="5000000"), -4002),
        (order(quantity="0.0001"), -1111),
        (order(quantity="0"), -4004),
        (order(quantity="1001"), -4005),
        (market(quantity="121"), -4005),
        (order(side="BUY", price="52600"), -4016),
        (order(side="SELL", price="47400"), -4024),
        (order(quantity="0.001"), -4164),
        (market(quantity="0.001"), -4164),
        (order(quantity="100"), -2019),
        (order(type="TRAILING_STOP_MARKET", price="", callbackRate="11"), -1130),
        (order(timeInForce="GTD"), -1102),
    ],
)
def test_rejections_carry_the_venue_code(ex: Exchange, params: dict[str, str], code: int) -> None:
    assert code_of(ex, params) == code


def test_filter_order_price_before_lot_before_notional(ex: Exchange) -> None:
    # Bad tick AND bad step AND tiny notional: PRICE_FILTER wins, then LOT_SIZE.
    assert code_of(ex, order(price="49000.05", quantity="0.0015")) == -4014
    assert code_of(ex, order(quantity="0.0015")) == -1111
    assert code_of(ex, order(price="60000", quantity="0.001")) == -4016


def test_workingtype_on_a_plain_limit_is_not_required_but_enum_checked(ex: Exchange) -> None:
    params = order(type="STOP", stopPrice="51000", price="51000", workingType="INDEX")
    assert code_of(ex, params) == -4031


def test_reduce_only_is_exempt_from_min_notional(ex: Exchange) -> None:
    ex.new_order("acct", market(quantity="0.01"))
    reply = ex.new_order("acct", market(side="SELL", quantity="0.001", reduceOnly="true"))
    assert reply["status"] == "NEW" and reply["reduceOnly"] is True


def test_client_id_unique_among_open_orders_only(ex: Exchange) -> None:
    first = ex.new_order("acct", order(newClientOrderId="abc.:/_-9"))
    assert code_of(ex, order(newClientOrderId="abc.:/_-9")) == -4116
    ex.cancel_order("acct", {"symbol": "BTCUSDT", "orderId": str(first["orderId"])})
    again = ex.new_order("acct", order(newClientOrderId="abc.:/_-9"))
    assert again["orderId"] > first["orderId"]


def test_auto_client_ids_are_unique_and_valid(ex: Exchange) -> None:
    ids = {ex.new_order("acct", order())["clientOrderId"] for _ in range(5)}
    assert len(ids) == 5
    assert all(1 <= len(i) <= 36 for i in ids)


def test_max_num_orders(ex: Exchange) -> None:
    ex.add_account("rich", {"USDT": Decimal("10000000")})
    for _ in range(200):
        ex.new_order("rich", order())
    with pytest.raises(SimError) as info:
        ex.new_order("rich", order())
    assert info.value.code == -2025


def test_max_num_algo_orders(ex: Exchange) -> None:
    for _ in range(10):
        ex.new_order(
            "acct",
            order(type="STOP_MARKET", price="", timeInForce="", stopPrice="51000", quantity="0.01"),
        )
    params = order(type="STOP_MARKET", price="", timeInForce="", stopPrice="51000")
    assert code_of(ex, params) == -4045


def test_gtd_needs_ten_minutes_ahead(ex: Exchange, clock: object) -> None:
    now = 1_700_000_000_000
    assert code_of(ex, order(timeInForce="GTD", goodTillDate=str(now + 600_000))) == -5040
    reply = ex.new_order("acct", order(timeInForce="GTD", goodTillDate=str(now + 601_500)))
    assert reply["goodTillDate"] == now + 601_000


def test_rejections_are_counted_and_not_streamed(ex: Exchange, events: list[object]) -> None:
    code_of(ex, order(price="1"))
    assert ex.stats()["orders_rejected"] == 1
    assert ex.stats()["orders_accepted"] == 0
    assert events == []
    assert ex.ground_truth() == []


def test_test_order_validates_without_placing(ex: Exchange) -> None:
    assert ex.test_order("acct", order()) == {}
    assert ex.open_orders("acct", {}) == []
    with pytest.raises(SimError):
        ex.test_order("acct", order(price="1"))


def test_unknown_account_is_rejected(ex: Exchange) -> None:
    with pytest.raises(SimError) as info:
        ex.new_order("ghost", order())
    assert info.value.code == -2015
