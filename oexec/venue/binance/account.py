"""Binance account JSON -> oexec.models.account records (positions, balances, settings).

Sources (reference addendum §3.6-§3.8): ``GET /fapi/v2/positionRisk`` is the position
shape that carries ``leverage``, ``marginType`` (lower-case ``cross``/``isolated``) and
``liquidationPrice`` (v3 dropped the first two); ``GET /fapi/v2/account`` ``assets[]``
carries wallet, available and margin balance per asset (``/balance`` lacks the margin
balance). ``POST /fapi/v1/leverage`` answers ``{leverage, maxNotionalValue, symbol}``;
``POST /fapi/v1/marginType`` answers ``{code: 200, msg: "success"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oexec.models import PositionSide
from oexec.models.account import AccountSettingChange, Balance, Position
from oexec.venue.binance.parsing import ZERO, VenueParseError, dec, integer, text

_POSITION_SIDES = {m.value: m for m in PositionSide}
#: positionRisk v2 and ACCOUNT_UPDATE say cross/isolated; symbolConfig and the
#: marginType endpoint say CROSSED/ISOLATED. oexec uses the lower-case pair.
MARGIN_TYPES = {"cross": "cross", "crossed": "cross", "isolated": "isolated"}


def margin_type(value: object) -> str:
    if not isinstance(value, str) or value.lower() not in MARGIN_TYPES:
        raise VenueParseError(f"unknown margin type {value!r}")
    return MARGIN_TYPES[value.lower()]


def _rows(data: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(row, Mapping) for row in data):
        raise VenueParseError(f"{what} answer is not a list of objects")
    return data


def parse_position_row(row: Mapping[str, Any]) -> Position:
    side = _POSITION_SIDES.get(str(row.get("positionSide", "BOTH")))
    if side is None:
        raise VenueParseError(f"unknown position side {row.get('positionSide')!r}")
    raw_margin = row.get("marginType")
    return Position(
        symbol=text(row, "symbol"),
        position_side=side,
        amount=dec(row, "positionAmt"),
        entry_price=dec(row, "entryPrice", ZERO),
        break_even_price=dec(row, "breakEvenPrice", ZERO),
        unrealized_pnl=dec(row, "unRealizedProfit", ZERO),
        liquidation_price=dec(row, "liquidationPrice", ZERO),
        mark_price=dec(row, "markPrice", ZERO),
        leverage=integer(row, "leverage", 0),
        margin_type="" if raw_margin is None else margin_type(raw_margin),
        update_time=integer(row, "updateTime", 0),
    )


def parse_position_risk(data: Any) -> list[Position]:
    """Every row of ``/fapi/v2/positionRisk`` (flat legs included: they carry leverage
    and margin type, which the user stream does not)."""
    return [parse_position_row(row) for row in _rows(data, "positionRisk")]


def parse_account_balances(data: Any) -> list[Balance]:
    """``assets[]`` of ``/fapi/v2/account``."""
    if not isinstance(data, Mapping):
        raise VenueParseError("account answer is not an object")
    return [
        Balance(
            asset=text(row, "asset"),
            wallet_balance=dec(row, "walletBalance"),
            available_balance=dec(row, "availableBalance", ZERO),
            margin_balance=dec(row, "marginBalance", ZERO),
            cross_wallet_balance=dec(row, "crossWalletBalance", ZERO),
            unrealized_pnl=dec(row, "unrealizedProfit", ZERO),
            update_time=integer(row, "updateTime", 0),
        )
        for row in _rows(data.get("assets"), "account assets")
    ]


def parse_leverage_change(data: Any) -> AccountSettingChange:
    if not isinstance(data, Mapping):
        raise VenueParseError("leverage answer is not an object")
    return AccountSettingChange(
        symbol=text(data, "symbol"),
        leverage=integer(data, "leverage"),
        max_notional=dec(data, "maxNotionalValue", ZERO),
    )
