"""The income ledger behind ``GET /fapi/v1/income``: realized PnL, commission, funding.

Rows are written where the money moves (a fill in ``matching.fill``, a funding settlement
in ``funding``), so the ledger always sums to the wallet's change. ``tranId`` is one
counter for all types (unique within a type, as the venue promises); ``tradeId`` is a
string, ``""`` when not applicable.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from oexec.sim.engine.errors import SimError
from oexec.sim.engine.numbers import fmt
from oexec.sim.engine.state import State

Json = dict[str, Any]
WEEK_MS = 7 * 86_400_000
INCOME_TYPES = frozenset(
    {
        "TRANSFER", "WELCOME_BONUS", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION",
        "INSURANCE_CLEAR", "REFERRAL_KICKBACK", "COMMISSION_REBATE", "API_REBATE",
        "CONTEST_REWARD", "CROSS_COLLATERAL_TRANSFER", "OPTIONS_PREMIUM_FEE",
        "OPTIONS_SETTLE_PROFIT", "INTERNAL_TRANSFER", "AUTO_EXCHANGE",
        "DELIVERED_SETTELMENT", "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW",
        "POSITION_LIMIT_INCREASE_FEE", "STRATEGY_UMFUTURES_TRANSFER", "FEE_RETURN",
        "BFUSD_REWARD",
    }
)  # fmt: skip


@attrs.frozen
class Income:
    account_id: str
    symbol: str
    income_type: str
    amount: Decimal
    asset: str
    time: int
    tran_id: int
    trade_id: str = ""

    def to_json(self) -> Json:
        return {
            "symbol": self.symbol,
            "incomeType": self.income_type,
            "income": fmt(self.amount),
            "asset": self.asset,
            "info": self.income_type,
            "time": self.time,
            "tranId": self.tran_id,
            "tradeId": self.trade_id,
        }


def record(
    state: State, account_id: str, symbol: str, kind: str, amount: Decimal, trade_id: str = ""
) -> None:
    """One ledger row (zero amounts are not written, like the venue)."""
    if amount.is_zero():
        return
    state.next_tran_id += 1
    row = Income(
        account_id, symbol, kind, amount, "USDT", state.now_ms(), state.next_tran_id, trade_id
    )
    state.income.append(row)


def query(state: State, account_id: str, params: Mapping[str, str]) -> list[Json]:
    """GET /fapi/v1/income: symbol, incomeType, startTime/endTime (default: last 7 days),
    page, limit (default 100, max 1000); ascending by time."""
    kind = params.get("incomeType") or None
    if kind is not None and kind not in INCOME_TYPES:
        raise SimError(-1130, "Data sent for parameter 'incomeType' is not valid.")
    symbol = params.get("symbol") or None
    limit = _number(params, "limit", 100)
    if not 1 <= limit <= 1000:
        raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
    page = max(1, _number(params, "page", 1))
    now = state.now_ms()
    start = _number(params, "startTime", -1)
    end = _number(params, "endTime", -1)
    if start < 0 and end < 0:
        start, end = now - WEEK_MS, now
    rows = [
        row
        for row in state.income
        if row.account_id == account_id
        and (symbol is None or row.symbol == symbol)
        and (kind is None or row.income_type == kind)
        and (start < 0 or row.time >= start)
        and (end < 0 or row.time <= end)
    ]
    offset = (page - 1) * limit
    return [row.to_json() for row in rows[offset : offset + limit]]


def _number(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if not text:
        return default
    if not text.isdigit():
        raise SimError(-1100, f"Illegal characters found in parameter '{name}'.")
    return int(text)
