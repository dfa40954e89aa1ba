"""The order record, the request to place one, and fills. Decimals throughout."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from oexec.models.enums import OrderState, OrderType, PositionSide, Side, TimeInForce, WorkingType


@attrs.frozen(slots=True)
class OrderTerms:
    """What an order is: the terms a strategy asks for and the venue is sent.

    One record carried from the wire's intent through the stored order to the venue
    request, so the terms are named once (the wire keeps its flat shape; ``Order``
    stores them flat for the stores' indexes and the order's wire/event map, and
    converts with ``Order.terms`` / ``Order.from_terms``, generically over these fields).
    """

    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    stop_price: Decimal | None = None
    reduce_only: bool = False
    position_side: PositionSide = PositionSide.BOTH
    working_type: WorkingType | None = None
    callback_rate: Decimal | None = None
    activation_price: Decimal | None = None
    good_till_date: int | None = None  # ms since epoch, GTD only


#: The names of the terms, in order (what ``Order`` copies from and to ``OrderTerms``).
TERM_NAMES: tuple[str, ...] = tuple(a.name for a in attrs.fields(OrderTerms))


@attrs.frozen(slots=True)
class OrderIntent:
    """What a strategy asked for, after wire decoding (types checked, decimals parsed).

    Pre-trade rules judge its terms; nothing about it has touched the venue yet.
    ``deadline_ms``: how long (ms, from when the daemon starts on it) the order may take
    to be sent; past it the answer is DEADLINE_EXCEEDED and nothing is sent.
    """

    request_id: str
    terms: OrderTerms
    deadline_ms: int | None = None


@attrs.define(slots=True)
class Order:
    """The daemon's record of one order (plan §4.2 fields plus what the venue returns).

    ``version`` increments on every stored change so subscribers and optimistic
    writers can order updates. Times are ms since epoch (UTC).
    """

    id: str
    request_id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    state: OrderState
    created_at: int
    updated_at: int
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    stop_price: Decimal | None = None
    reduce_only: bool = False
    position_side: PositionSide = PositionSide.BOTH
    working_type: WorkingType | None = None
    callback_rate: Decimal | None = None
    activation_price: Decimal | None = None
    good_till_date: int | None = None
    exchange_order_id: str | None = None
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    cumulative_quote: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    commission_asset: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    venue_status: str | None = None
    venue_update_time: int | None = None  # venue's T/updateTime; orders stream updates
    version: int = 0

    @property
    def terms(self) -> OrderTerms:
        """The order's terms as one record (what the venue request carries)."""
        return OrderTerms(**{name: getattr(self, name) for name in TERM_NAMES})

    @classmethod
    def from_terms(cls, terms: OrderTerms, **record: Any) -> Order:
        """A new order of ``terms``; ``record`` holds the rest (ids, state, times)."""
        return cls(**{name: getattr(terms, name) for name in TERM_NAMES}, **record)

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity


@attrs.frozen(slots=True)
class Fill:
    """One execution (a venue trade) of one order. Applied once, keyed by (symbol, trade_id)."""

    order_id: str
    exchange_order_id: str
    client_order_id: str
    symbol: str
    side: Side
    trade_id: int
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    realized_pnl: Decimal
    time: int  # ms
