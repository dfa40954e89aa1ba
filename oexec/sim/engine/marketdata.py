"""Market data views and the seeded price path (§B.2, §D)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from oexec.sim.engine.numbers import ZERO, fmt, money
from oexec.sim.engine.state import Market, State

Json = dict[str, Any]
_ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]
_TIFS = ["GTC", "IOC", "FOK", "GTX", "GTD"]


def exchange_info(state: State, rate_limits: list[Json]) -> Json:
    return {
        "timezone": "UTC",
        "serverTime": state.now_ms(),
        "futuresType": "U_MARGINED",
        "rateLimits": rate_limits,
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [_symbol_info(m) for m in state.markets.values()],
    }


def _symbol_info(market: Market) -> Json:
    spec = market.spec
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": spec.status,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.quote_asset,
        "pricePrecision": spec.price_precision,
        "quantityPrecision": spec.quantity_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": format(spec.trigger_protect, "f"),
        "liquidationFee": format(spec.liquidation_fee, "f"),
        "marketTakeBound": format(spec.market_take_bound, "f"),
        "maxMoveOrderLimit": 10000,
        "filters": spec.filters_json(),
        "orderTypes": _ORDER_TYPES,
        "timeInForce": _TIFS,
        "permissionSets": ["GRID", "COPY"],
    }


def ticker_price(market: Market) -> Json:
    return {"symbol": market.spec.symbol, "price": fmt(market.last), "time": market.time}


def ticker_24hr(market: Market, now: int) -> Json:
    change = market.last - market.open
    percent = money(change * 100 / market.open) if market.open else ZERO
    avg = market.quote_volume / market.volume if market.volume else market.last
    return {
        "symbol": market.spec.symbol,
        "priceChange": fmt(change),
        "priceChangePercent": fmt(percent.quantize(Decimal("0.001"))),
        "weightedAvgPrice": fmt(money(avg)),
        "lastPrice": fmt(market.last),
        "lastQty": fmt(market.liquidity),
        "openPrice": fmt(market.open),
        "highPrice": fmt(market.high),
        "lowPrice": fmt(market.low),
        "volume": fmt(market.volume),
        "quoteVolume": fmt(money(market.quote_volume)),
        "openTime": max(0, now - 86_400_000),
        "closeTime": now,
        "firstId": 1,
        "lastId": market.trades,
        "count": market.trades,
    }


def book_ticker(market: Market) -> Json:
    tick = market.spec.tick_size
    return {
        "symbol": market.spec.symbol,
        "bidPrice": fmt(market.on_grid(market.last, up=True) - tick),
        "bidQty": fmt(market.liquidity),
        "askPrice": fmt(market.on_grid(market.last, up=False) + tick),
        "askQty": fmt(market.liquidity),
        "time": market.time,
    }


def premium_index(market: Market, now: int, rate: str, next_funding_ms: int) -> Json:
    return {
        "symbol": market.spec.symbol,
        "markPrice": fmt(market.mark),
        "indexPrice": fmt(market.mark),
        "estimatedSettlePrice": fmt(market.mark),
        "lastFundingRate": rate,
        "interestRate": "0.00010000",
        "nextFundingTime": next_funding_ms,
        "time": now,
    }


def random_step(state: State, market: Market) -> Decimal:
    """Next last price: ± up to ``volatility`` × price, in whole ticks, kept in the filter."""
    spec = market.spec
    reach = int(market.last * state.volatility / spec.tick_size) or 1
    price = market.last + state.rng.randint(-reach, reach) * spec.tick_size
    low = max(spec.min_price, spec.tick_size)
    return min(max(price, low), spec.max_price or price)
