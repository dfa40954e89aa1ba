"""The open-order index: scans see every open order and forget closed ones."""

from __future__ import annotations

from decimal import Decimal

from oexec.sim.engine import Exchange

from .helpers import market, order

BTC = {"symbol": "BTCUSDT"}


def live_ids(ex: Exchange) -> list[int]:
    return list(ex._state.live)


def test_closed_orders_leave_the_index_and_open_ones_stay(ex: Exchange) -> None:
    resting = ex.new_order("acct", order(price="49000"))
    for _ in range(20):
        ex.new_order("acct", market(quantity="0.003"))
        ex.new_order("acct", market(side="SELL", quantity="0.003"))
    open_now = ex.open_orders("acct", BTC)
    assert [o["orderId"] for o in open_now] == [resting["orderId"]]
    assert live_ids(ex) == [resting["orderId"]]
    ex.cancel_order("acct", BTC | {"orderId": str(resting["orderId"])})
    assert ex.open_orders("acct", BTC) == []
    assert live_ids(ex) == []


def test_resting_orders_still_fill_on_a_price_move_in_acceptance_order(ex: Exchange) -> None:
    first = ex.new_order("acct", order(price="49900", quantity="0.5"))
    second = ex.new_order("acct", order(price="49900", quantity="0.5"))
    ex.new_order("acct", market(quantity="0.003"))  # closed at once; must not matter
    ex.set_price("BTCUSDT", Decimal("49800"))
    states = {
        o["orderId"]: o["status"]
        for o in (
            ex.query_order("acct", BTC | {"orderId": str(first["orderId"])}),
            ex.query_order("acct", BTC | {"orderId": str(second["orderId"])}),
        )
    }
    assert states[first["orderId"]] == "FILLED"
    assert states[second["orderId"]] in {"FILLED", "PARTIALLY_FILLED"}
    assert all(ex._state.orders[i].is_open for i in live_ids(ex))
