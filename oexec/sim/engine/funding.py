"""Funding: every ``interval_ms`` of simulated time each open position pays or receives
``position notional x funding rate`` at the mark price (longs pay a positive rate).

Funding times are multiples of the interval since the epoch (the venue's 8 h interval gives
00:00, 08:00 and 16:00 UTC). A settlement writes one ``fundingRate`` history row per
symbol, one FUNDING_FEE income row per paying position, and pushes ACCOUNT_UPDATE with
reason ``FUNDING_FEE`` carrying only the balance (cross margin, as the venue's user-data
docs describe). A simulator that slept over several funding times settles once, at the
latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from oexec.sim.engine import events, income
from oexec.sim.engine.errors import SimError
from oexec.sim.engine.numbers import ZERO, money
from oexec.sim.engine.state import State

Json = dict[str, Any]
DEFAULT_INTERVAL_MS = 8 * 3_600_000


def next_time(interval_ms: int, now: int) -> int:
    return now - now % interval_ms + interval_ms


def due(state: State) -> bool:
    return state.now_ms() >= state.next_funding_ms


def settle_due(state: State) -> bool:
    """Settle funding when a funding time has passed; True when it did."""
    now = state.now_ms()
    if now < state.next_funding_ms:
        return False
    at = now - now % state.funding_interval_ms
    state.next_funding_ms = at + state.funding_interval_ms
    settle(state, at)
    return True


def settle(state: State, at: int) -> None:
    rate = state.funding_rate
    for symbol, market in state.markets.items():
        state.funding_history.append(
            {
                "symbol": symbol,
                "fundingRate": format(rate.quantize(Decimal("0.00000001")), "f"),
                "fundingTime": at,
                "markPrice": format(market.mark.quantize(Decimal("0.00000001")), "f"),
            }
        )
    marks = state.marks()
    for account in state.accounts.values():
        paid = ZERO
        for position in account.open_positions():
            fee = -money(position.amount * marks[position.symbol] * rate)
            if fee.is_zero():
                continue
            account.balances["USDT"] = account.wallet + fee
            income.record(state, account.account_id, position.symbol, "FUNDING_FEE", fee)
            paid += fee
        if not paid.is_zero():
            account.update_time = state.now_ms()
            update = events.account_update(account, state.now_ms(), [], marks, "FUNDING_FEE")
            state.emit(account.account_id, update)


def history(state: State, params: Mapping[str, str]) -> list[Json]:
    """GET /fapi/v1/fundingRate: ascending; with startTime the first ``limit`` from it,
    else the latest ``limit`` (default 100, max 1000)."""
    symbol = params.get("symbol") or None
    limit = _int(params, "limit", 100)
    if not 1 <= limit <= 1000:
        raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
    start, end = _int(params, "startTime", -1), _int(params, "endTime", -1)
    rows = [
        row
        for row in state.funding_history
        if (symbol is None or row["symbol"] == symbol)
        and (start < 0 or row["fundingTime"] >= start)
        and (end < 0 or row["fundingTime"] <= end)
    ]
    return rows[:limit] if start >= 0 else rows[-limit:]


def info(state: State) -> list[Json]:
    """GET /fapi/v1/fundingInfo: every symbol (the venue lists only adjusted ones)."""
    hours = max(1, state.funding_interval_ms // 3_600_000)
    return [
        {
            "symbol": symbol,
            "adjustedFundingRateCap": "0.02000000",
            "adjustedFundingRateFloor": "-0.02000000",
            "fundingIntervalHours": hours,
            "disclaimer": False,
        }
        for symbol in state.markets
    ]


def rate_text(state: State) -> str:
    return format(state.funding_rate.quantize(Decimal("0.00000001")), "f")


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if not text:
        return default
    if not text.isdigit():
        raise SimError(-1100, f"Illegal characters found in parameter '{name}'.")
    return int(text)
