"""Market history, funding, income and the connect-time account reads of the engine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oexec.sim.engine import Exchange, tape

from .conftest import START_MS, Clock
from .helpers import market

MIN = 60_000


def _walk(ex: Exchange, clock: Clock, steps: int, every_ms: int) -> None:
    for _ in range(steps):
        clock.ms += every_ms
        ex.advance()


def test_klines_follow_the_price_path_and_repeat_under_the_seed() -> None:
    runs = []
    for _ in range(2):
        clock = Clock()
        ex = Exchange(now_ms=clock, seed=11)
        _walk(ex, clock, 30, 10_000)  # 5 minutes of 10 s steps
        runs.append(ex.klines({"symbol": "BTCUSDT", "interval": "1m"}))
    assert runs[0] == runs[1]
    rows = runs[0]
    assert [row[0] for row in rows] == [
        START_MS - START_MS % MIN + i * MIN for i in range(len(rows))
    ]
    for row in rows:
        opened, o, h, lo, c, volume, closes, quote, count, *_ = row
        assert closes == opened + MIN - 1
        assert Decimal(lo) <= min(Decimal(o), Decimal(c)) and Decimal(h) >= max(
            Decimal(o), Decimal(c)
        )
        assert isinstance(count, int) and isinstance(volume, str) and isinstance(quote, str)
    assert sum(row[8] for row in rows) == 30  # one market trade per step


def test_klines_window_limit_and_quiet_minutes() -> None:
    clock = Clock()
    ex = Exchange(now_ms=clock, seed=3)
    clock.ms += 5 * MIN  # five quiet minutes: flat at the initial price, volume 0
    rows = ex.klines({"symbol": "ETHUSDT", "interval": "1m", "limit": "2"})
    assert len(rows) == 2 and rows[-1][1] == rows[-1][4] and rows[-1][5] == "0"
    start = START_MS - START_MS % MIN + MIN
    rows = ex.klines({"symbol": "ETHUSDT", "interval": "1m", "startTime": str(start)})
    assert rows[0][0] == start and len(rows) == 5
    marks = ex.klines({"symbol": "ETHUSDT", "interval": "1m"}, "mark")
    index = ex.klines({"pair": "ETHUSDT", "interval": "1m"}, "index")
    assert [r[4] for r in marks] == [r[4] for r in index]


def test_agg_trades_and_trades_include_account_fills(ex: Exchange, clock: Clock) -> None:
    _walk(ex, clock, 3, 1000)
    ex.new_order("acct", market(quantity="0.01"))
    rows = ex.agg_trades({"symbol": "BTCUSDT"})
    fills = ex.user_trades("acct", {"symbol": "BTCUSDT"})
    assert {f["id"] for f in fills} <= {r["a"] for r in rows}
    own = next(r for r in rows if r["a"] == fills[0]["id"])
    assert own["m"] is False  # the account bought as taker: the buyer is not the maker
    recent = ex.recent_trades({"symbol": "BTCUSDT", "limit": "2"})
    assert [t["id"] for t in recent] == [r["a"] for r in rows[-2:]]
    assert ex.agg_trades({"symbol": "BTCUSDT", "fromId": str(rows[1]["a"]), "limit": "1"}) == [
        rows[1]
    ]


def test_funding_settles_each_interval_with_income_and_account_update(clock: Clock) -> None:
    ex = Exchange(now_ms=clock, seed=1, funding_interval_ms=8 * 3_600_000)
    ex.add_account("acct")
    log: list[dict[str, Any]] = []
    ex.subscribe("acct", log.append)
    ex.new_order("acct", market(quantity="0.1"))
    wallet = Decimal(ex.balance("acct")[0]["balance"])
    mark = Decimal(ex.premium_index("BTCUSDT")["markPrice"])  # type: ignore[index]
    due = ex.premium_index("BTCUSDT")["nextFundingTime"]  # type: ignore[index]
    assert due % (8 * 3_600_000) == 0
    clock.ms = due - 1
    ex.tick()
    assert ex.funding_rate_history({"symbol": "BTCUSDT"}) == []
    clock.ms = due
    ex.tick()
    expected = -(Decimal("0.1") * mark * Decimal("0.0001"))
    assert Decimal(ex.balance("acct")[0]["balance"]) == wallet + expected
    rows = ex.income("acct", {"incomeType": "FUNDING_FEE"})
    assert [(r["symbol"], Decimal(r["income"]), r["tradeId"]) for r in rows] == [
        ("BTCUSDT", expected, "")
    ]
    update = log[-1]
    assert update["e"] == "ACCOUNT_UPDATE" and update["a"]["m"] == "FUNDING_FEE"
    assert update["a"]["P"] == []
    history = ex.funding_rate_history({"symbol": "BTCUSDT"})
    assert history == [
        {"symbol": "BTCUSDT", "fundingRate": "0.00010000", "fundingTime": due,
         "markPrice": format(mark.quantize(Decimal("0.00000001")), "f")}
    ]  # fmt: skip
    ex.tick()  # once per funding time
    assert len(ex.income("acct", {"incomeType": "FUNDING_FEE"})) == 1


def test_income_rows_sum_to_the_wallet_change(ex: Exchange) -> None:
    start = Decimal(ex.balance("acct")[0]["balance"])
    ex.new_order("acct", market(quantity="0.05"))
    ex.set_price("BTCUSDT", Decimal("51000"))
    ex.new_order("acct", market(side="SELL", quantity="0.05"))
    rows = ex.income("acct", {})
    kinds = {r["incomeType"] for r in rows}
    assert kinds == {"COMMISSION", "REALIZED_PNL"}
    assert all(isinstance(r["tranId"], int) and isinstance(r["tradeId"], str) for r in rows)
    total = sum((Decimal(r["income"]) for r in rows), Decimal(0))
    assert Decimal(ex.balance("acct")[0]["balance"]) == start + total
    fills = ex.user_trades("acct", {"symbol": "BTCUSDT"})
    commissions = [r for r in rows if r["incomeType"] == "COMMISSION"]
    assert sorted(Decimal(r["income"]) for r in commissions) == sorted(
        -Decimal(f["commission"]) for f in fills
    )


def test_connect_time_reads(ex: Exchange) -> None:
    ex.change_leverage("acct", {"symbol": "ETHUSDT", "leverage": "7"})
    ex.change_margin_type("acct", {"symbol": "ETHUSDT", "marginType": "ISOLATED"})
    rows = {r["symbol"]: r for r in ex.symbol_config("acct", {})}
    assert rows["ETHUSDT"] == {
        "symbol": "ETHUSDT", "marginType": "ISOLATED", "isAutoAddMargin": False,
        "leverage": 7, "maxNotionalValue": rows["ETHUSDT"]["maxNotionalValue"],
    }  # fmt: skip
    assert rows["BTCUSDT"]["marginType"] == "CROSSED"
    config = ex.account_config("acct")
    assert config["dualSidePosition"] is False and config["tradeGroupId"] == -1
    rate = ex.commission_rate("acct", {"symbol": "BTCUSDT"})
    assert (rate["makerCommissionRate"], rate["takerCommissionRate"]) == ("0.0002", "0.0005")


def test_account_versions_keep_their_own_fields(ex: Exchange) -> None:
    ex.new_order("acct", market(quantity="0.01"))
    v2, v3 = ex.account("acct", 2), ex.account("acct", 3)
    assert v2["feeTier"] == 0 and "feeTier" not in v3 and "canTrade" not in v3
    assert len(v2["positions"]) == 4 and len(v3["positions"]) == 1
    for row in v2["positions"] + v3["positions"]:
        assert "unrealizedProfit" in row and "unRealizedProfit" not in row
    assert {"leverage", "isolated", "entryPrice", "maxNotional"} <= set(v2["positions"][0])
    assert not {"leverage", "isolated", "entryPrice", "maxNotional"} & set(v3["positions"][0])
    assert "marginAvailable" not in v3["assets"][0]
    risk = ex.position_risk("acct", {}, 3)
    assert "unRealizedProfit" in risk[0]


def test_open_interest_counts_long_exposure(ex: Exchange) -> None:
    ex.add_account("other")
    ex.new_order("acct", market(quantity="0.02"))
    ex.new_order("other", market(side="SELL", quantity="0.01"))
    assert ex.open_interest({"symbol": "BTCUSDT"})["openInterest"] == "0.02"


def test_klines_start_at_the_oldest_kept_record_once_history_falls_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tape, "MAX_RECORDS", 5)
    clock = Clock()
    ex = Exchange(now_ms=clock, seed=2)
    _walk(ex, clock, 12, MIN)  # 12 minutes, one trade a minute; only the last 5 kept
    rows = ex.klines({"symbol": "BTCUSDT", "interval": "1m"})
    assert len(rows) == 5 and all(row[8] == 1 for row in rows)
