"""The simulated venue's facade: every REST operation as one synchronous method.

Pure and deterministic: no I/O, no asyncio, no wall clock (time comes from ``now_ms``),
randomness only from the seeded generator. Methods take the request parameters exactly as
the venue receives them (query and body merged, all strings) and return the venue's JSON
shapes as Python values, or raise ``SimError`` with the venue's code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from oexec.sim.engine.specs import DEFAULT_SYMBOLS, SymbolSpec

Json = dict[str, Any]
Params = Mapping[str, str]


class Exchange:
    """A Binance USDⓈ-M venue model: symbols, synthetic book, accounts, orders, events."""

    def __init__(
        self,
        symbols: Sequence[SymbolSpec] = DEFAULT_SYMBOLS,
        *,
        now_ms: Callable[[], int],
        seed: int = 0,
        liquidity_per_level: Decimal = Decimal("1"),
        maker_fee: Decimal = Decimal("0.0002"),
        taker_fee: Decimal = Decimal("0.0005"),
        volatility: Decimal = Decimal("0.0005"),
        default_leverage: int = 20,
    ) -> None:
        raise NotImplementedError

    # -- accounts and events -------------------------------------------------------------
    def add_account(self, account_id: str, balances: Mapping[str, Decimal] | None = None) -> None:
        """Create an account (default 100000 USDT); re-adding an existing id is an error."""
        raise NotImplementedError

    def subscribe(self, account_id: str, callback: Callable[[Json], None]) -> Callable[[], None]:
        """Deliver the account's user-stream events, in venue order; returns unsubscribe."""
        raise NotImplementedError

    # -- market data ---------------------------------------------------------------------
    def exchange_info(self, rate_limits: list[Json]) -> Json:
        """GET /fapi/v1/exchangeInfo (§D); ``rate_limits`` comes from the HTTP layer."""
        raise NotImplementedError

    def ticker_price(self, symbol: str | None) -> Json | list[Json]:
        """GET /fapi/v1/ticker/price: one object with a symbol, else a list of all."""
        raise NotImplementedError

    def ticker_24hr(self, symbol: str | None) -> Json | list[Json]:
        """GET /fapi/v1/ticker/24hr."""
        raise NotImplementedError

    def book_ticker(self, symbol: str | None) -> Json | list[Json]:
        """GET /fapi/v1/ticker/bookTicker (best level of the synthetic book)."""
        raise NotImplementedError

    def premium_index(self, symbol: str | None) -> Json | list[Json]:
        """GET /fapi/v1/premiumIndex."""
        raise NotImplementedError

    def depth(self, symbol: str, limit: int = 500) -> Json:
        """GET /fapi/v1/depth: the synthetic book; limit in 5,10,20,50,100,500,1000 (-4021)."""
        raise NotImplementedError

    def set_price(self, symbol: str, price: Decimal, *, mark: Decimal | None = None) -> None:
        """Set last (and mark; default = last) price, then match, trigger and run timers."""
        raise NotImplementedError

    def advance(self) -> None:
        """One seeded random-walk step per symbol, then matching, triggers and timers."""
        raise NotImplementedError

    def tick(self) -> None:
        """Run time-based work only (GTD expiry, countdownCancelAll) at ``now_ms()``."""
        raise NotImplementedError

    # -- trading -------------------------------------------------------------------------
    def new_order(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/order: ACK (default) or RESULT shape per ``newOrderRespType``."""
        raise NotImplementedError

    def test_order(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/order/test: validate only, return ``{}``."""
        raise NotImplementedError

    def modify_order(self, account_id: str, params: Params) -> Json:
        """PUT /fapi/v1/order: amend a LIMIT order's price/quantity (§C.9)."""
        raise NotImplementedError

    def cancel_order(self, account_id: str, params: Params) -> Json:
        """DELETE /fapi/v1/order."""
        raise NotImplementedError

    def query_order(self, account_id: str, params: Params) -> Json:
        """GET /fapi/v1/order."""
        raise NotImplementedError

    def open_order(self, account_id: str, params: Params) -> Json:
        """GET /fapi/v1/openOrder: -2013 when the order is not open."""
        raise NotImplementedError

    def open_orders(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/openOrders (symbol optional)."""
        raise NotImplementedError

    def all_orders(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/allOrders (symbol, orderId, startTime, endTime, limit)."""
        raise NotImplementedError

    def cancel_all_open_orders(self, account_id: str, params: Params) -> Json:
        """DELETE /fapi/v1/allOpenOrders (symbol)."""
        raise NotImplementedError

    def batch_new_orders(self, account_id: str, params: Params) -> list[Json]:
        """POST /fapi/v1/batchOrders: each element an order object or ``{code, msg}``."""
        raise NotImplementedError

    def batch_modify_orders(self, account_id: str, params: Params) -> list[Json]:
        """PUT /fapi/v1/batchOrders."""
        raise NotImplementedError

    def batch_cancel_orders(self, account_id: str, params: Params) -> list[Json]:
        """DELETE /fapi/v1/batchOrders (orderIdList or origClientOrderIdList, max 10)."""
        raise NotImplementedError

    def countdown_cancel_all(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/countdownCancelAll (countdownTime ms; 0 stops the timer)."""
        raise NotImplementedError

    def user_trades(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/userTrades."""
        raise NotImplementedError

    def new_algo_order(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/algoOrder (algoType=CONDITIONAL)."""
        raise NotImplementedError

    def cancel_algo_order(self, account_id: str, params: Params) -> Json:
        """DELETE /fapi/v1/algoOrder (algoId or clientAlgoId)."""
        raise NotImplementedError

    def query_algo_order(self, account_id: str, params: Params) -> Json:
        """GET /fapi/v1/algoOrder."""
        raise NotImplementedError

    def open_algo_orders(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/openAlgoOrders (symbol optional)."""
        raise NotImplementedError

    def all_algo_orders(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/allAlgoOrders (symbol)."""
        raise NotImplementedError

    def cancel_all_algo_orders(self, account_id: str, params: Params) -> Json:
        """DELETE /fapi/v1/algoOpenOrders (symbol)."""
        raise NotImplementedError

    # -- account -------------------------------------------------------------------------
    def account(self, account_id: str, version: int = 3) -> Json:
        """GET /fapi/v2/account or /fapi/v3/account."""
        raise NotImplementedError

    def balance(self, account_id: str, version: int = 3) -> list[Json]:
        """GET /fapi/v2/balance or /fapi/v3/balance."""
        raise NotImplementedError

    def position_risk(self, account_id: str, params: Params, version: int = 3) -> list[Json]:
        """GET /fapi/v2|v3/positionRisk (symbol optional)."""
        raise NotImplementedError

    def change_leverage(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/leverage."""
        raise NotImplementedError

    def leverage_bracket(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/leverageBracket (symbol optional)."""
        raise NotImplementedError

    def change_margin_type(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/marginType."""
        raise NotImplementedError

    def position_side_dual(self, account_id: str, params: Params | None = None) -> Json:
        """GET (params None) or POST /fapi/v1/positionSide/dual."""
        raise NotImplementedError

    # -- ground truth for tests ----------------------------------------------------------
    def ground_truth(self) -> list[Json]:
        """Every order ever accepted, with its fills (for /_sim/orders)."""
        raise NotImplementedError

    def stats(self) -> Json:
        """Counters: orders_accepted, orders_rejected, trades."""
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the initial state (prices, accounts re-created with initial balances)."""
        raise NotImplementedError
