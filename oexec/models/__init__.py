"""Core records and enums. Everything else imports inward to here; this imports only errors."""

from oexec.models.decimals import format_decimal, is_multiple, parse_decimal
from oexec.models.enums import (
    OrderState,
    OrderType,
    PositionSide,
    Side,
    TimeInForce,
    VenueOrderStatus,
    WorkingType,
)
from oexec.models.market import ExchangeInfo, RateLimitRule, SymbolRules
from oexec.models.order import Fill, Order, OrderIntent, OrderTerms
from oexec.models.venue import AccountUpdate, OrderUpdate, VenueOrder, VenueTrade

__all__ = [
    "AccountUpdate",
    "ExchangeInfo",
    "Fill",
    "Order",
    "OrderIntent",
    "OrderState",
    "OrderTerms",
    "OrderType",
    "OrderUpdate",
    "PositionSide",
    "RateLimitRule",
    "Side",
    "SymbolRules",
    "TimeInForce",
    "VenueOrder",
    "VenueOrderStatus",
    "VenueTrade",
    "WorkingType",
    "format_decimal",
    "is_multiple",
    "parse_decimal",
]
