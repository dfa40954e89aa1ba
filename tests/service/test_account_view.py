"""The account view's pure folds: stream updates, venue reads, settings, and their order."""

from __future__ import annotations

from decimal import Decimal

import attrs

from oexec.models import PositionSide
from oexec.models.account import AccountSettingChange, Balance, Position
from oexec.models.venue import AccountUpdate, BalanceUpdate, PositionUpdate
from oexec.service.account import (
    AccountSnapshot,
    apply_account_update,
    apply_setting,
    apply_venue_read,
    open_positions,
)

D = Decimal
BOTH = PositionSide.BOTH


def venue_leg(amount: str, at: int, **changes: object) -> Position:
    leg = Position(
        "BTCUSDT",
        BOTH,
        D(amount),
        entry_price=D("50000"),
        break_even_price=D("50020"),
        unrealized_pnl=D("1.5"),
        liquidation_price=D("41000"),
        mark_price=D("50150"),
        leverage=20,
        margin_type="cross",
        update_time=at,
    )
    return attrs.evolve(leg, **changes)


def stream(amount: str, at: int, wallet: str = "9990") -> AccountUpdate:
    return AccountUpdate(
        event_time=at,
        reason="ORDER",
        balances=(BalanceUpdate("USDT", D(wallet), D(wallet)),),
        positions=(
            PositionUpdate(
                "BTCUSDT",
                BOTH,
                D(amount),
                D("50100"),
                D("-2"),
                break_even_price=D("50120"),
                margin_type="cross",
            ),
        ),
    )


def read(amount: str, at: int, wallet: str = "10000") -> AccountSnapshot:
    balance = Balance("USDT", D(wallet), D("9000"), D("10001"), D(wallet), D("1"), at)
    return apply_venue_read(AccountSnapshot(), [venue_leg(amount, at)], [balance], at)


def test_stream_update_keeps_what_only_the_venue_read_carries() -> None:
    snapshot = apply_account_update(read("0.010", 100), stream("0.020", 200))
    (leg,) = open_positions(snapshot)
    assert (leg.amount, leg.entry_price, leg.break_even_price) == (
        D("0.020"),
        D("50100"),
        D("50120"),
    )
    assert (leg.leverage, leg.liquidation_price, leg.margin_type) == (20, D("41000"), "cross")
    assert leg.update_time == 200
    usdt = snapshot.balances["USDT"]
    assert (usdt.wallet_balance, usdt.available_balance) == (D("9990"), D("9000"))
    assert snapshot.updated_at == 200 and not snapshot.stale


def test_older_stream_event_changes_nothing() -> None:
    fresh = apply_account_update(read("0.010", 300), stream("0.020", 200))
    assert open_positions(fresh)[0].amount == D("0.010")
    assert fresh.balances["USDT"].wallet_balance == D("10000")


def test_a_venue_read_older_than_the_stream_does_not_roll_a_leg_back() -> None:
    after_fill = apply_account_update(read("0", 100), stream("0.020", 200))
    balance = Balance("USDT", D("10000"), D("8000"), D("9999"), D("10000"), D("0"), 150)
    merged = apply_venue_read(after_fill, [venue_leg("0", 150)], [balance], 250)
    (leg,) = open_positions(merged)
    assert leg.amount == D("0.020") and leg.liquidation_price == D("41000")
    usdt = merged.balances["USDT"]
    assert usdt.wallet_balance == D("9990") and usdt.available_balance == D("8000")
    assert merged.refreshed_at == 250 and not merged.stale


def test_a_newer_venue_read_wins_and_unlisted_legs_go() -> None:
    after_fill = apply_account_update(read("0", 100), stream("0.020", 200))
    merged = apply_venue_read(after_fill, [venue_leg("0.030", 300)], [], 300)
    assert open_positions(merged)[0].amount == D("0.030")
    assert merged.balances == {}
    assert open_positions(apply_venue_read(merged, [], [], 400)) == []


def test_flat_legs_are_not_open_positions_and_symbol_filter() -> None:
    snapshot = apply_venue_read(
        AccountSnapshot(),
        [venue_leg("0", 1), venue_leg("-0.5", 1, symbol="ETHUSDT")],
        [],
        1,
    )
    assert [p.symbol for p in open_positions(snapshot)] == ["ETHUSDT"]
    assert open_positions(snapshot, "BTCUSDT") == []


def test_settings_land_on_every_leg_of_their_symbol() -> None:
    snapshot = read("0.010", 100)
    snapshot = apply_setting(snapshot, AccountSettingChange("BTCUSDT", leverage=7))
    snapshot = apply_setting(snapshot, AccountSettingChange("BTCUSDT", margin_type="isolated"))
    snapshot = apply_setting(snapshot, AccountSettingChange("ETHUSDT", leverage=3))
    (leg,) = open_positions(snapshot)
    assert (leg.leverage, leg.margin_type) == (7, "isolated")
