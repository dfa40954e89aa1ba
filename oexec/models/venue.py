"""Venue-neutral records of what the venue reports: orders, trades, account updates.

Adapters parse venue JSON into these once, at the boundary; nothing inward sees venue
field names. ``raw`` keeps the venue's own payload for the audit journal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from oexec.models.enums import OrderType, PositionSide, Side, TimeInForce, VenueOrderStatus


@attrs.frozen(slots=True)
class VenueOrder:
    symbol: str
    exchange_order_id: str
    client_order_id: str
    status: VenueOrderStatus
    side: Side
    type: OrderType
    quantity: Decimal
    executed_quantity: Decimal
    price: Decimal
    average_price: Decimal
    cumulative_quote: Decimal
    update_time: int
    time_in_force: TimeInForce | None = None
    stop_price: Decimal | None = None
    reduce_only: bool = False
    position_side: PositionSide = PositionSide.BOTH
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(slots=True)
class VenueTrade:
    """One execution as the venue reports it (userTrades row or stream TRADE event)."""

    symbol: str
    trade_id: int
    exchange_order_id: str
    client_order_id: str | None
    side: Side
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    realized_pnl: Decimal
    time: int
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(slots=True)
class OrderUpdate:
    """A user-stream order event: the order's new venue state plus the trade, if any."""

    order: VenueOrder
    execution_type: str  # NEW, TRADE, CANCELED, EXPIRED, AMENDMENT, CALCULATED
    event_time: int
    transaction_time: int
    trade: VenueTrade | None = None


@attrs.frozen(slots=True)
class PositionUpdate:
    symbol: str
    position_side: PositionSide
    amount: Decimal  # signed
    entry_price: Decimal
    unrealized_pnl: Decimal
    break_even_price: Decimal | None = None  # None: the event did not carry it
    margin_type: str | None = None  # "cross" | "isolated"; None: not carried


@attrs.frozen(slots=True)
class BalanceUpdate:
    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal


@attrs.frozen(slots=True)
class AccountUpdate:
    event_time: int
    reason: str
    balances: tuple[BalanceUpdate, ...] = ()
    positions: tuple[PositionUpdate, ...] = ()


@attrs.frozen(slots=True)
class AccountConfigUpdate:
    """ACCOUNT_CONFIG_UPDATE: a symbol's leverage changed (``symbol`` and ``leverage``),
    or the multi-assets mode (``multi_assets``)."""

    event_time: int
    symbol: str | None = None
    leverage: int | None = None
    multi_assets: bool | None = None


@attrs.frozen(slots=True)
class MarginCallLeg:
    symbol: str
    position_side: PositionSide
    amount: Decimal  # signed
    margin_type: str | None  # "cross" | "isolated"
    mark_price: Decimal
    unrealized_pnl: Decimal
    maintenance_margin: Decimal


@attrs.frozen(slots=True)
class MarginCall:
    """MARGIN_CALL: the legs at risk and the cross wallet balance (None when absent)."""

    event_time: int
    cross_wallet_balance: Decimal | None
    positions: tuple[MarginCallLeg, ...] = ()


@attrs.frozen(slots=True)
class StreamGap:
    """Stream events may have been missed before this point: recover by polling, then go on.

    ``reason``: "connected" (first connection), "reconnected", "key_renewed",
    "rotated" (24 h rotation) or "unparseable_event".
    """

    reason: str
    at_ms: int
