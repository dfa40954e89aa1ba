"""The live dashboard's positions and balances panels, from the daemon's account view.

The interface is small on purpose: an :data:`AccountSource` returns the account view's
current snapshot (oexec/service/account.py ``AccountSnapshot``: ``positions`` and
``balances`` mappings of records, ``stale``, ``refreshed_at``), or None while the
daemon has no view. :func:`account_panel` turns it into the snapshot's ``account``
section, JSON-safe (decimals as strings, as on the wire). Nothing here asks the venue:
the panels show what a strategy would be told by ``positions`` / ``balances``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol


class PositionRecord(Protocol):
    @property
    def symbol(self) -> str: ...
    @property
    def position_side(self) -> Any: ...  # a PositionSide (StrEnum)
    @property
    def amount(self) -> Decimal: ...
    @property
    def entry_price(self) -> Decimal: ...
    @property
    def break_even_price(self) -> Decimal: ...
    @property
    def unrealized_pnl(self) -> Decimal: ...
    @property
    def liquidation_price(self) -> Decimal: ...
    @property
    def mark_price(self) -> Decimal: ...
    @property
    def leverage(self) -> int: ...
    @property
    def margin_type(self) -> str: ...


class BalanceRecord(Protocol):
    @property
    def asset(self) -> str: ...
    @property
    def wallet_balance(self) -> Decimal: ...
    @property
    def available_balance(self) -> Decimal: ...
    @property
    def margin_balance(self) -> Decimal: ...
    @property
    def unrealized_pnl(self) -> Decimal: ...


class AccountSnapshotLike(Protocol):
    @property
    def positions(self) -> Mapping[Any, PositionRecord]: ...
    @property
    def balances(self) -> Mapping[str, BalanceRecord]: ...
    @property
    def stale(self) -> bool: ...
    @property
    def refreshed_at(self) -> int: ...


AccountSource = Callable[[], AccountSnapshotLike | None]


def account_panel(snapshot: AccountSnapshotLike | None) -> dict[str, Any] | None:
    """Open positions (amount not zero) and balances (any non-zero figure), sorted."""
    if snapshot is None:
        return None
    positions = [
        {
            "symbol": leg.symbol,
            "position_side": str(leg.position_side),
            "amount": str(leg.amount),
            "entry_price": str(leg.entry_price),
            "break_even_price": str(leg.break_even_price),
            "mark_price": str(leg.mark_price),
            "unrealized_pnl": str(leg.unrealized_pnl),
            "liquidation_price": str(leg.liquidation_price),
            "leverage": leg.leverage,
            "margin_type": leg.margin_type,
        }
        for leg in sorted(snapshot.positions.values(), key=lambda p: (p.symbol, p.position_side))
        if leg.amount
    ]
    balances = [
        {
            "asset": bal.asset,
            "wallet_balance": str(bal.wallet_balance),
            "available_balance": str(bal.available_balance),
            "margin_balance": str(bal.margin_balance),
            "unrealized_pnl": str(bal.unrealized_pnl),
        }
        for bal in sorted(snapshot.balances.values(), key=lambda b: b.asset)
        if bal.wallet_balance or bal.margin_balance or bal.available_balance
    ]
    return {
        "positions": positions,
        "balances": balances,
        "stale": snapshot.stale,
        "refreshed_at": snapshot.refreshed_at,
    }
