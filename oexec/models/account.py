"""The account as the daemon sees it: positions per (symbol, position side), balances per
asset. Venue-neutral records; the adapter parses the venue's JSON into them once.

Fields the venue's user stream does not carry (liquidation price, leverage, available
balance) are as of the last REST refresh; ``update_time`` is the venue's time of the
newest fact in the record.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from oexec.models.enums import PositionSide

ZERO = Decimal(0)


@attrs.frozen(slots=True)
class Position:
    """One position leg. ``amount`` is signed (negative = short in one-way mode)."""

    symbol: str
    position_side: PositionSide
    amount: Decimal
    entry_price: Decimal = ZERO
    break_even_price: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    liquidation_price: Decimal = ZERO
    mark_price: Decimal = ZERO
    leverage: int = 0  # 0 = not known yet
    margin_type: str = ""  # "cross" | "isolated"; "" = not known yet
    update_time: int = 0


@attrs.frozen(slots=True)
class Balance:
    """One margin asset of the account."""

    asset: str
    wallet_balance: Decimal
    available_balance: Decimal = ZERO
    margin_balance: Decimal = ZERO
    cross_wallet_balance: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    update_time: int = 0


@attrs.frozen(slots=True)
class AccountSettingChange:
    """The venue's answer to a leverage or margin type change."""

    symbol: str
    leverage: int | None = None
    margin_type: str | None = None
    max_notional: Decimal | None = None
