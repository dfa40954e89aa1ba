"""``GET /fapi/v1/exchangeInfo`` (reference §D, §E.1) → ``ExchangeInfo``.

Every symbol becomes a ``SymbolRules`` carrying all filters of §D.3, exact Decimals from
the venue's strings. Each filter type is read by one small function in a table, so a new
filter is one row. Unknown filter types, order types and TIFs are ignored (the venue adds
them over time); unknown rate-limit intervals are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from oexec.models import ExchangeInfo, OrderType, RateLimitRule, SymbolRules, TimeInForce
from oexec.venue.binance.parsing import ZERO, VenueParseError, dec, integer, text

#: Seconds per ``interval`` unit of a rateLimits row.
INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}

_T = TypeVar("_T", OrderType, TimeInForce)
FilterReader = Callable[[Mapping[str, Any]], dict[str, Any]]


def _price_filter(f: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "min_price": dec(f, "minPrice", ZERO),
        "max_price": dec(f, "maxPrice", ZERO),
        "tick_size": dec(f, "tickSize", ZERO),
    }


def _lot_size(f: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "min_qty": dec(f, "minQty", ZERO),
        "max_qty": dec(f, "maxQty", ZERO),
        "step_size": dec(f, "stepSize", ZERO),
    }


def _market_lot_size(f: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "market_min_qty": dec(f, "minQty", ZERO),
        "market_max_qty": dec(f, "maxQty", ZERO),
        "market_step_size": dec(f, "stepSize", ZERO),
    }


def _min_notional(f: Mapping[str, Any]) -> dict[str, Any]:
    # USDⓈ-M names the field ``notional`` (spot: ``minNotional``); accept either.
    key = "notional" if "notional" in f else "minNotional"
    return {"min_notional": dec(f, key, ZERO)}


def _percent_price(f: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "multiplier_up": dec(f, "multiplierUp", ZERO),
        "multiplier_down": dec(f, "multiplierDown", ZERO),
    }


def _max_num_orders(f: Mapping[str, Any]) -> dict[str, Any]:
    return {"max_num_orders": integer(f, "limit", 0)}


def _max_num_algo_orders(f: Mapping[str, Any]) -> dict[str, Any]:
    return {"max_num_algo_orders": integer(f, "limit", 0)}


FILTER_READERS: dict[str, FilterReader] = {
    "PRICE_FILTER": _price_filter,
    "LOT_SIZE": _lot_size,
    "MARKET_LOT_SIZE": _market_lot_size,
    "MIN_NOTIONAL": _min_notional,
    "PERCENT_PRICE": _percent_price,
    "MAX_NUM_ORDERS": _max_num_orders,
    "MAX_NUM_ALGO_ORDERS": _max_num_algo_orders,
}


def _known(cls: type[_T], values: object) -> frozenset[_T]:
    if not isinstance(values, list):
        return frozenset()
    return frozenset(cls(v) for v in values if isinstance(v, str) and v in cls.__members__)


def parse_symbol(data: Mapping[str, Any]) -> SymbolRules:
    fields: dict[str, Any] = {}
    filters = data.get("filters", [])
    if not isinstance(filters, list):
        raise VenueParseError("symbol filters is not a list")
    for item in filters:
        if isinstance(item, Mapping):
            reader = FILTER_READERS.get(str(item.get("filterType")))
            if reader is not None:
                fields.update(reader(item))
    order_types = data.get("orderTypes", data.get("OrderType"))
    return SymbolRules(
        symbol=text(data, "symbol"),
        status=str(data.get("status") or ""),
        base_asset=str(data.get("baseAsset") or ""),
        quote_asset=str(data.get("quoteAsset") or ""),
        order_types=_known(OrderType, order_types),
        time_in_force=_known(TimeInForce, data.get("timeInForce")),
        trigger_protect=dec(data, "triggerProtect", ZERO),
        market_take_bound=dec(data, "marketTakeBound", ZERO),
        price_precision=integer(data, "pricePrecision", 8),
        quantity_precision=integer(data, "quantityPrecision", 8),
        **fields,
    )


def parse_rate_limit(data: Mapping[str, Any]) -> RateLimitRule | None:
    unit = INTERVAL_SECONDS.get(str(data.get("interval")))
    if unit is None:
        return None
    return RateLimitRule(
        kind=text(data, "rateLimitType"),
        interval_s=unit * integer(data, "intervalNum", 1),
        limit=integer(data, "limit"),
    )


def parse_exchange_info(data: Any) -> ExchangeInfo:
    """Raises VenueParseError when the answer is not an exchangeInfo object."""
    if not isinstance(data, Mapping):
        raise VenueParseError("exchangeInfo is not an object")
    symbols = data.get("symbols")
    limits = data.get("rateLimits") or []
    if not isinstance(symbols, list) or not isinstance(limits, list):
        raise VenueParseError("exchangeInfo lacks symbols or rateLimits lists")
    rules = [parse_symbol(s) for s in symbols if isinstance(s, Mapping)]
    rate_limits = [parse_rate_limit(r) for r in limits if isinstance(r, Mapping)]
    return ExchangeInfo(
        server_time=integer(data, "serverTime", 0),
        symbols={r.symbol: r for r in rules},
        rate_limits=tuple(r for r in rate_limits if r is not None),
    )
