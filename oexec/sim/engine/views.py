"""Account, balance, position and leverage-bracket JSON (§B.4, §B.5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from oexec.sim.engine.accounts import MARGIN_ASSET, Account, Position
from oexec.sim.engine.numbers import ZERO, fmt, money
from oexec.sim.engine.params import PositionSide
from oexec.sim.engine.state import State

Json = dict[str, Any]
#: (max initial leverage, notional cap, maintenance rate) per bracket, for every symbol.
BRACKETS: tuple[tuple[int, int, str], ...] = (
    (125, 50_000, "0.004"),
    (100, 250_000, "0.005"),
    (50, 3_000_000, "0.01"),
    (20, 15_000_000, "0.025"),
    (10, 80_000_000, "0.05"),
    (5, 100_000_000, "0.1"),
    (4, 200_000_000, "0.125"),
    (2, 300_000_000, "0.25"),
    (1, 500_000_000, "0.5"),
)


def max_notional(leverage: int) -> int:
    """The notional cap of the largest bracket that still allows ``leverage``."""
    return max(cap for lev, cap, _ in BRACKETS if lev >= leverage)


def brackets(symbol: str) -> Json:
    floor = 0
    rows = []
    for index, (lev, cap, rate) in enumerate(BRACKETS, start=1):
        rows.append(
            {
                "bracket": index,
                "initialLeverage": lev,
                "notionalCap": cap,
                "notionalFloor": floor,
                "maintMarginRatio": float(rate),
                "cum": 0.0,
            }
        )
        floor = cap
    return {"symbol": symbol, "brackets": rows}


def _figures(state: State, account: Account) -> dict[str, Decimal]:
    marks = state.marks()
    unrealized = account.unrealized(marks)
    position_im = account.position_margin(marks)
    order_im = money(state.order_margin(account.account_id))
    wallet = account.wallet
    available = wallet + unrealized - position_im - order_im
    return {
        "wallet": wallet,
        "unrealized": unrealized,
        "position_im": position_im,
        "order_im": order_im,
        "margin": wallet + unrealized,
        "available": available,
        "maint": sum(
            (
                money(abs(p.amount) * marks[p.symbol] * Decimal("0.004"))
                for p in account.open_positions()
            ),
            ZERO,
        ),
    }


def balance(state: State, account: Account) -> list[Json]:
    f = _figures(state, account)
    return [
        {
            "accountAlias": "SgsR",
            "asset": MARGIN_ASSET,
            "balance": fmt(f["wallet"]),
            "crossWalletBalance": fmt(f["wallet"]),
            "crossUnPnl": fmt(f["unrealized"]),
            "availableBalance": fmt(f["available"]),
            "maxWithdrawAmount": fmt(f["available"]),
            "marginAvailable": True,
            "updateTime": account.update_time,
        }
    ]


def position_row(state: State, account: Account, pos: Position, version: int) -> Json:
    mark = state.markets[pos.symbol].mark
    lev = account.leverage_of(pos.symbol)
    notional = money(pos.amount * mark)
    initial = money(abs(notional) / lev)
    row: Json = {
        "symbol": pos.symbol,
        "positionSide": pos.side.value,
        "positionAmt": fmt(pos.amount),
        "entryPrice": fmt(pos.entry_price),
        "breakEvenPrice": fmt(pos.entry_price),
        "markPrice": fmt(mark),
        "unRealizedProfit": fmt(pos.unrealized(mark)),
        "liquidationPrice": "0",
        "isolatedMargin": "0",
        "notional": fmt(notional),
        "isolatedWallet": "0",
        "updateTime": pos.update_time,
    }
    if version >= 3:
        row.update(
            {
                "marginAsset": MARGIN_ASSET,
                "initialMargin": fmt(initial),
                "maintMargin": fmt(money(abs(notional) * Decimal("0.004"))),
                "positionInitialMargin": fmt(initial),
                "openOrderInitialMargin": "0",
                "adl": 0,
                "bidNotional": "0",
                "askNotional": "0",
            }
        )
    else:
        row.update(
            {
                "marginType": "isolated" if pos.symbol in account.isolated else "cross",
                "isAutoAddMargin": "false",
                "leverage": str(lev),
                "maxNotionalValue": str(max_notional(lev)),
            }
        )
    return row


def positions(state: State, account: Account, symbol: str | None, version: int) -> list[Json]:
    """v2: every symbol (both legs in hedge mode); v3: only non-zero positions/open orders."""
    sides = [PositionSide.LONG, PositionSide.SHORT] if account.dual_side else [PositionSide.BOTH]
    rows = []
    for name in state.markets:
        if symbol is not None and name != symbol:
            continue
        active = bool(state.open_orders(account.account_id, name))
        for side in sides:
            pos = account.position(name, side)
            if version >= 3 and pos.amount == 0 and not active:
                continue
            rows.append(position_row(state, account, pos, version))
    return rows


def symbol_config(account: Account, symbol: str) -> Json:
    """A ``GET /fapi/v1/symbolConfig`` row: ``CROSSED``/``ISOLATED``, bool, int."""
    lev = account.leverage_of(symbol)
    return {
        "symbol": symbol,
        "marginType": "ISOLATED" if symbol in account.isolated else "CROSSED",
        "isAutoAddMargin": False,
        "leverage": lev,
        "maxNotionalValue": str(max_notional(lev)),
    }


def account_config(account: Account) -> Json:
    """``GET /fapi/v1/accountConfig``."""
    return {
        "feeTier": 0,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "dualSidePosition": account.dual_side,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
    }


def _account_position(state: State, account: Account, pos: Position, version: int) -> Json:
    """A position of the account object: v2 and v3 have their own field sets (both spell
    ``unrealizedProfit`` with a small r, unlike positionRisk)."""
    mark = state.markets[pos.symbol].mark
    lev = account.leverage_of(pos.symbol)
    notional = money(pos.amount * mark)
    initial = money(abs(notional) / lev)
    order_im = money(
        sum(
            (
                o.remaining * (o.price or mark) / lev
                for o in state.open_orders(account.account_id, pos.symbol)
                if o.position_side is pos.side and not o.reduce_only and not o.close_position
            ),
            ZERO,
        )
    )
    maint = money(abs(notional) * Decimal("0.004"))
    if version >= 3:
        return {
            "symbol": pos.symbol,
            "positionSide": pos.side.value,
            "positionAmt": fmt(pos.amount),
            "unrealizedProfit": fmt(pos.unrealized(mark)),
            "isolatedMargin": "0",
            "notional": fmt(notional),
            "isolatedWallet": "0",
            "initialMargin": fmt(initial + order_im),
            "maintMargin": fmt(maint),
            "updateTime": pos.update_time,
        }
    bids, asks = state.order_notional(account.account_id, pos.symbol)
    return {
        "symbol": pos.symbol,
        "initialMargin": fmt(initial + order_im),
        "maintMargin": fmt(maint),
        "unrealizedProfit": fmt(pos.unrealized(mark)),
        "positionInitialMargin": fmt(initial),
        "openOrderInitialMargin": fmt(order_im),
        "leverage": str(lev),
        "isolated": pos.symbol in account.isolated,
        "entryPrice": fmt(pos.entry_price),
        "maxNotional": str(max_notional(lev)),
        "bidNotional": fmt(bids),
        "askNotional": fmt(asks),
        "positionSide": pos.side.value,
        "positionAmt": fmt(pos.amount),
        "updateTime": pos.update_time,
    }


def _account_positions(state: State, account: Account, version: int) -> list[Json]:
    """v2: every symbol (both legs in hedge mode); v3: only with a position or open orders."""
    sides = [PositionSide.LONG, PositionSide.SHORT] if account.dual_side else [PositionSide.BOTH]
    rows = []
    for name in state.markets:
        active = bool(state.open_orders(account.account_id, name))
        for side in sides:
            pos = account.position(name, side)
            if version >= 3 and pos.amount == 0 and not active:
                continue
            rows.append(_account_position(state, account, pos, version))
    return rows


def account_info(state: State, account: Account, version: int) -> Json:
    """``GET /fapi/v2/account`` (flags, every symbol) or ``/fapi/v3/account`` (no flags,
    only non-zero assets and active positions, assets without ``marginAvailable``)."""
    f = _figures(state, account)
    asset: Json = {
        "asset": MARGIN_ASSET,
        "walletBalance": fmt(f["wallet"]),
        "unrealizedProfit": fmt(f["unrealized"]),
        "marginBalance": fmt(f["margin"]),
        "maintMargin": fmt(f["maint"]),
        "initialMargin": fmt(f["position_im"] + f["order_im"]),
        "positionInitialMargin": fmt(f["position_im"]),
        "openOrderInitialMargin": fmt(f["order_im"]),
        "crossWalletBalance": fmt(f["wallet"]),
        "crossUnPnl": fmt(f["unrealized"]),
        "availableBalance": fmt(f["available"]),
        "maxWithdrawAmount": fmt(f["available"]),
        "marginAvailable": True,
        "updateTime": account.update_time,
    }
    totals: Json = {
        "totalInitialMargin": fmt(f["position_im"] + f["order_im"]),
        "totalMaintMargin": fmt(f["maint"]),
        "totalWalletBalance": fmt(f["wallet"]),
        "totalUnrealizedProfit": fmt(f["unrealized"]),
        "totalMarginBalance": fmt(f["margin"]),
        "totalPositionInitialMargin": fmt(f["position_im"]),
        "totalOpenOrderInitialMargin": fmt(f["order_im"]),
        "totalCrossWalletBalance": fmt(f["wallet"]),
        "totalCrossUnPnl": fmt(f["unrealized"]),
        "availableBalance": fmt(f["available"]),
        "maxWithdrawAmount": fmt(f["available"]),
    }
    if version >= 3:
        del asset["marginAvailable"]
        nonzero = f["wallet"] != 0 or f["unrealized"] != 0 or f["order_im"] != 0
        assets = [asset] if nonzero else []
        return totals | {"assets": assets, "positions": _account_positions(state, account, 3)}
    flags: Json = {
        "feeTier": 0,
        "feeBurn": False,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
    }
    return flags | totals | {"assets": [asset], "positions": _account_positions(state, account, 2)}
