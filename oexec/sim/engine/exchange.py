"""The simulated venue's facade: every REST operation as one synchronous method.

Pure and deterministic: no I/O, no asyncio, no wall clock (time comes from ``now_ms``),
randomness only from the seeded generator. Methods take the request parameters exactly as
the venue receives them (query and body merged, all strings) and return the venue's JSON
shapes as Python values, or raise ``SimError`` with the venue's code. (Longer than most
modules because it is the one facade of every order and account operation; market history
and connect-time reads are in history.py.)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from oexec.sim.engine import (
    algo,
    book,
    events,
    funding,
    marketdata,
    matching,
    placement,
    tape,
    trading,
    views,
)
from oexec.sim.engine import params as p
from oexec.sim.engine.accounts import DEFAULT_BALANCES, Account
from oexec.sim.engine.algo import AlgoOrder
from oexec.sim.engine.errors import SimError, missing, no_such_order
from oexec.sim.engine.history import HistoryViews
from oexec.sim.engine.orders import Status
from oexec.sim.engine.specs import DEFAULT_SYMBOLS, SymbolSpec
from oexec.sim.engine.state import Callback, Fees, Market, State, build_markets

Json = dict[str, Any]
Params = Mapping[str, str]


class Exchange(HistoryViews):
    """A Binance USDⓈ-M venue model: symbols, synthetic book, accounts, orders, events.

    Market history and account-configuration reads live in ``HistoryViews``.
    """

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
        funding_interval_ms: int = funding.DEFAULT_INTERVAL_MS,
        funding_rate: Decimal = Decimal("0.0001"),
    ) -> None:
        self._symbols = tuple(symbols)
        self._now_ms = now_ms
        self._seed = seed
        self._liquidity = liquidity_per_level
        self._fees = Fees(maker=maker_fee, taker=taker_fee)
        self._volatility = volatility
        self._default_leverage = default_leverage
        self._funding = (funding_interval_ms, funding_rate)
        self._subscribers: dict[str, list[Callback]] = {}
        self._market_listeners: list[Callable[[str, Any, bool], None]] = []
        self._initial: dict[str, dict[str, Decimal]] = {}
        self._state = self._fresh_state()

    # -- accounts and events -------------------------------------------------------------
    def add_account(self, account_id: str, balances: Mapping[str, Decimal] | None = None) -> None:
        """Create an account (default 100000 USDT); re-adding an existing id is an error."""
        if account_id in self._state.accounts:
            raise ValueError(f"account {account_id!r} already exists")
        initial = dict(balances if balances is not None else DEFAULT_BALANCES)
        self._initial[account_id] = initial
        self._state.accounts[account_id] = self._new_account(account_id, initial)

    def subscribe(self, account_id: str, callback: Callable[[Json], None]) -> Callable[[], None]:
        """Deliver the account's user-stream events, in venue order; returns unsubscribe."""
        callbacks = self._subscribers.setdefault(account_id, [])
        callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def subscribe_market(self, listener: Callable[[str, Any, bool], None]) -> None:
        """Be told of every public trade: ``listener(symbol, tape.Trade, moved)``, where
        ``moved`` says the last price moved (the book moved with it). Survives reset."""
        self._market_listeners.append(listener)

    # -- market data ---------------------------------------------------------------------
    def exchange_info(self, rate_limits: list[Json]) -> Json:
        """GET /fapi/v1/exchangeInfo (§D); ``rate_limits`` comes from the HTTP layer."""
        return marketdata.exchange_info(self._state, rate_limits)

    def ticker_price(self, symbol: str | None) -> Json | list[Json]:
        """GET /fapi/v1/ticker/price: one object with a symbol, else a list of all."""
        return self._per_symbol(symbol, marketdata.ticker_price)

    def ticker_24hr(self, symbol: str | None) -> Json | list[Json]:
        """GET /fapi/v1/ticker/24hr."""
        now = self._now_ms()
        return self._per_symbol(symbol, lambda m: marketdata.ticker_24hr(m, now))

    def book_ticker(self, symbol: str | None) -> Json | list[Json]:
        """GET /fapi/v1/ticker/bookTicker (best level of the synthetic book)."""
        return self._per_symbol(symbol, marketdata.book_ticker)

    def premium_index(self, symbol: str | None) -> Json | list[Json]:
        """GET /fapi/v1/premiumIndex."""
        now = self._now_ms()
        rate, due = funding.rate_text(self._state), self._state.next_funding_ms
        return self._per_symbol(symbol, lambda m: marketdata.premium_index(m, now, rate, due))

    def depth(self, symbol: str, limit: int = 500) -> Json:
        """GET /fapi/v1/depth: the synthetic book; limit in 5,10,20,50,100,500,1000 (-4021)."""
        market = self._market(symbol)
        if limit not in book.DEPTH_LIMITS:
            raise SimError(-4021, "Invalid depth limit.")
        return book.depth(market, limit, self._now_ms())

    def set_price(self, symbol: str, price: Decimal, *, mark: Decimal | None = None) -> None:
        """Set last (and mark; default = last) price, then match, trigger and run timers."""
        market = self._market(symbol)
        if price <= 0 or (mark is not None and mark <= 0):
            raise SimError(-1130, "Data sent for parameter 'price' is not valid.")
        market.move(price, price if mark is None else mark, self._now_ms())
        self._record_move(market)
        self._after_move(symbol)
        matching.expire_due(self._state)

    def advance(self) -> None:
        """One seeded random-walk step per symbol, then matching, triggers and timers."""
        for symbol, market in self._state.markets.items():
            price = marketdata.random_step(self._state, market)
            market.move(price, price, self._now_ms())
            self._record_move(market)
            self._after_move(symbol)
        matching.expire_due(self._state)

    def tick(self) -> None:
        """Run time-based work only (GTD expiry, countdownCancelAll, funding) at ``now_ms()``."""
        matching.expire_due(self._state)
        funding.settle_due(self._state)

    def countdown_due(self) -> bool:
        """True when a countdownCancelAll timer has run out (cheap: no order scan)."""
        now = self._now_ms()
        return any(deadline <= now for deadline in self._state.countdowns.values())

    # -- trading -------------------------------------------------------------------------
    def new_order(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/order: ACK (default) or RESULT shape per ``newOrderRespType``."""
        return trading.place(self._state, account_id, params)

    def test_order(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/order/test: validate only, return ``{}``."""
        placement.build(self._state, self._state.account(account_id), params)
        return {}

    def modify_order(self, account_id: str, params: Params) -> Json:
        """PUT /fapi/v1/order: amend a LIMIT order's price/quantity (§C.9)."""
        self._state.account(account_id)
        return trading.modify(self._state, account_id, params)

    def cancel_order(self, account_id: str, params: Params) -> Json:
        """DELETE /fapi/v1/order."""
        self._state.account(account_id)
        return trading.cancel(self._state, account_id, params)

    def query_order(self, account_id: str, params: Params) -> Json:
        """GET /fapi/v1/order."""
        self._state.account(account_id)
        order = trading.find(self._state, account_id, params)
        if order is None:
            raise no_such_order()
        return order.to_json()

    def open_order(self, account_id: str, params: Params) -> Json:
        """GET /fapi/v1/openOrder: -2013 when the order is not open."""
        self._state.account(account_id)
        order = trading.find(self._state, account_id, params)
        if order is None or not order.is_open:
            raise no_such_order()
        return order.to_json()

    def open_orders(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/openOrders (symbol optional)."""
        self._state.account(account_id)
        symbol = self._optional_symbol(params)
        return [o.to_json() for o in self._state.open_orders(account_id, symbol)]

    def all_orders(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/allOrders (symbol, orderId, startTime, endTime, limit)."""
        self._state.account(account_id)
        return trading.all_orders(self._state, account_id, params)

    def cancel_all_open_orders(self, account_id: str, params: Params) -> Json:
        """DELETE /fapi/v1/allOpenOrders (symbol)."""
        self._state.account(account_id)
        symbol = self._state.spec(p.required(params, "symbol")).symbol
        for order in self._state.open_orders(account_id, symbol):
            matching.close(self._state, order, Status.CANCELED)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def batch_new_orders(self, account_id: str, params: Params) -> list[Json]:
        """POST /fapi/v1/batchOrders: each element an order object or ``{code, msg}``."""
        self._state.account(account_id)
        return trading.batch(
            params,
            "batchOrders",
            trading.MAX_BATCH_PLACE,
            lambda item: trading.place(self._state, account_id, item),
        )

    def batch_modify_orders(self, account_id: str, params: Params) -> list[Json]:
        """PUT /fapi/v1/batchOrders."""
        self._state.account(account_id)
        return trading.batch(
            params,
            "batchOrders",
            trading.MAX_BATCH_PLACE,
            lambda item: trading.modify(self._state, account_id, item),
        )

    def batch_cancel_orders(self, account_id: str, params: Params) -> list[Json]:
        """DELETE /fapi/v1/batchOrders (orderIdList or origClientOrderIdList, max 10)."""
        self._state.account(account_id)
        return trading.batch_cancel(self._state, account_id, params)

    def countdown_cancel_all(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/countdownCancelAll (countdownTime ms; 0 stops the timer)."""
        self._state.account(account_id)
        symbol = self._state.spec(p.required(params, "symbol")).symbol
        countdown = p.required_int(params, "countdownTime")
        if countdown < 0:
            raise SimError(-1130, "Data sent for parameter 'countdownTime' is not valid.")
        key = (account_id, symbol)
        if countdown == 0:
            self._state.countdowns.pop(key, None)
        else:
            self._state.countdowns[key] = self._now_ms() + countdown
        return {"symbol": symbol, "countdownTime": str(countdown)}

    def user_trades(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/userTrades."""
        self._state.account(account_id)
        return trading.user_trades(self._state, account_id, params)

    def new_algo_order(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/algoOrder (algoType=CONDITIONAL)."""
        account = self._state.account(account_id)
        try:
            placed = algo.place(self._state, account, params)
        except SimError:
            self._state.rejected += 1
            raise
        self._state.accepted += 1
        return placed.to_json()

    def cancel_algo_order(self, account_id: str, params: Params) -> Json:
        """DELETE /fapi/v1/algoOrder (algoId or clientAlgoId)."""
        self._state.account(account_id)
        found = algo.find(self._state, account_id, params)
        if found is None or not found.is_open:
            raise SimError(-2011, "Unknown order sent.")
        algo.cancel(self._state, found)
        return {
            "algoId": found.algo_id,
            "clientAlgoId": found.client_algo_id,
            "code": "200",
            "msg": "success",
        }

    def query_algo_order(self, account_id: str, params: Params) -> Json:
        """GET /fapi/v1/algoOrder."""
        self._state.account(account_id)
        found = algo.find(self._state, account_id, params)
        if found is None:
            raise no_such_order()
        return found.to_json()

    def open_algo_orders(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/openAlgoOrders (symbol optional)."""
        self._state.account(account_id)
        symbol = self._optional_symbol(params)
        return [a.to_json() for a in self._algos(account_id, symbol) if a.is_open]

    def all_algo_orders(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/allAlgoOrders (symbol)."""
        self._state.account(account_id)
        symbol = self._state.spec(p.required(params, "symbol")).symbol
        rows = [
            a for a in self._algos(account_id, symbol) if trading.in_window(a.draft.time, params)
        ]
        return [a.to_json() for a in rows[-trading.limit_of(params, 100) :]]

    def cancel_all_algo_orders(self, account_id: str, params: Params) -> Json:
        """DELETE /fapi/v1/algoOpenOrders (symbol)."""
        self._state.account(account_id)
        symbol = self._state.spec(p.required(params, "symbol")).symbol
        for found in self._algos(account_id, symbol):
            if found.is_open:
                algo.cancel(self._state, found)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    # -- account -------------------------------------------------------------------------
    def account(self, account_id: str, version: int = 3) -> Json:
        """GET /fapi/v2/account or /fapi/v3/account."""
        return views.account_info(self._state, self._state.account(account_id), version)

    def balance(self, account_id: str, version: int = 3) -> list[Json]:
        """GET /fapi/v2/balance or /fapi/v3/balance."""
        return views.balance(self._state, self._state.account(account_id))

    def position_risk(self, account_id: str, params: Params, version: int = 3) -> list[Json]:
        """GET /fapi/v2|v3/positionRisk (symbol optional)."""
        account = self._state.account(account_id)
        symbol = self._optional_symbol(params)
        return views.positions(self._state, account, symbol, version)

    def change_leverage(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/leverage."""
        account = self._state.account(account_id)
        symbol = self._state.spec(p.required(params, "symbol")).symbol
        leverage = p.required_int(params, "leverage")
        if not 1 <= leverage <= views.BRACKETS[0][0]:
            raise SimError(-4028, f"Leverage {leverage} is not valid")
        account.leverage[symbol] = leverage
        self._state.emit(account_id, events.leverage_update(symbol, leverage, self._now_ms()))
        return {
            "leverage": leverage,
            "maxNotionalValue": str(views.max_notional(leverage)),
            "symbol": symbol,
        }

    def leverage_bracket(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/leverageBracket (symbol optional)."""
        self._state.account(account_id)
        symbol = self._optional_symbol(params)
        names = [symbol] if symbol else list(self._state.markets)
        return [views.brackets(name) for name in names]

    def change_margin_type(self, account_id: str, params: Params) -> Json:
        """POST /fapi/v1/marginType."""
        account = self._state.account(account_id)
        symbol = self._state.spec(p.required(params, "symbol")).symbol
        wanted = p.required(params, "marginType").upper()
        if wanted not in ("ISOLATED", "CROSSED"):
            raise SimError(-1130, "Data sent for parameter 'marginType' is not valid.")
        if (wanted == "ISOLATED") == (symbol in account.isolated):
            raise SimError(-4046, "No need to change margin type.")
        if self._state.open_orders(account_id, symbol):
            raise SimError(-4047, "Margin type cannot be changed if there exists open orders.")
        if any(pos.symbol == symbol for pos in account.open_positions()):
            raise SimError(-4048, "Margin type cannot be changed if there exists position.")
        account.isolated ^= {symbol}
        return {"code": 200, "msg": "success"}

    def position_side_dual(self, account_id: str, params: Params | None = None) -> Json:
        """GET (params None) or POST /fapi/v1/positionSide/dual."""
        account = self._state.account(account_id)
        if params is None:
            return {"dualSidePosition": account.dual_side}
        wanted = p.boolean(params, "dualSidePosition")
        if wanted is None:
            raise missing("dualSidePosition")
        if wanted == account.dual_side:
            raise SimError(-4059, "No need to change position side.")
        if self._state.open_orders(account_id):
            raise SimError(-4067, "Position side cannot be changed if there exists open orders.")
        if account.open_positions():
            raise SimError(-4068, "Position side cannot be changed if there exists position.")
        account.dual_side = wanted
        return {"code": 200, "msg": "success"}

    # -- ground truth for tests ----------------------------------------------------------
    def ground_truth(self) -> list[Json]:
        """Every order ever accepted, with its fills (for /_sim/orders)."""
        return [order.truth() for order in self._state.orders.values()]

    def stats(self) -> Json:
        """Counters: orders_accepted, orders_rejected, trades."""
        state = self._state
        return {
            "orders_accepted": state.accepted,
            "orders_rejected": state.rejected,
            "trades": state.trades,
        }

    def reset(self) -> None:
        """Back to the initial state (prices, accounts re-created with initial balances)."""
        self._state = self._fresh_state()

    # -- internals -----------------------------------------------------------------------
    def _fresh_state(self) -> State:
        state = State(
            specs={spec.symbol: spec for spec in self._symbols},
            markets=build_markets(self._symbols, self._liquidity, self._now_ms()),
            fees=self._fees,
            now_ms=self._now_ms,
            rng=random.Random(self._seed),
            volatility=self._volatility,
            default_leverage=self._default_leverage,
            subscribers=self._subscribers,
            market_listeners=self._market_listeners,
        )
        for account_id, initial in self._initial.items():
            state.accounts[account_id] = self._new_account(account_id, initial)
        now = self._now_ms()
        state.tapes = {s.symbol: tape.Tape(now, s.initial_price) for s in self._symbols}
        for spec in self._symbols:
            state.tapes[spec.symbol].add_mark(now, spec.initial_price)
        state.tape_rng = random.Random(f"{self._seed}:tape")
        state.funding_interval_ms, state.funding_rate = self._funding
        state.next_funding_ms = funding.next_time(self._funding[0], now)
        return state

    def _new_account(self, account_id: str, initial: Mapping[str, Decimal]) -> Account:
        return Account(account_id, dict(initial), self._default_leverage)

    def _market(self, symbol: str) -> Market:
        return self._state.markets[self._state.spec(symbol).symbol]

    def _optional_symbol(self, params: Params) -> str | None:
        symbol = p.text(params, "symbol")
        return None if symbol is None else self._state.spec(symbol).symbol

    def _per_symbol(self, symbol: str | None, view: Callable[[Market], Json]) -> Json | list[Json]:
        if symbol is not None:
            return view(self._market(symbol))
        return [view(market) for market in self._state.markets.values()]

    def _algos(self, account_id: str, symbol: str | None) -> list[AlgoOrder]:
        return [
            a
            for a in self._state.algos.values()
            if a.account_id == account_id and (symbol is None or a.symbol == symbol)
        ]

    def _record_move(self, market: Market) -> None:
        """A price move is a market trade at the new last price (seeded quantity)."""
        record = self._state.tapes[market.spec.symbol]
        previous = record.trades[-1].price if record.trades else record.initial_price
        step = market.spec.step_size
        qty = step * self._state.tape_rng.randint(1, 1000)
        now = self._now_ms()
        trade_id = self._state.new_trade_id()
        trade = tape.Trade(trade_id, market.last, qty, now, market.last < previous)
        record.add_trade(trade)
        record.add_mark(now, market.mark)
        market.volume += qty
        market.quote_volume += qty * market.last
        market.trades += 1
        self._state.market_trade(market.spec.symbol, trade, moved=True)

    def _after_move(self, symbol: str) -> None:
        """Price moved: maker fills, then conditional triggers, then algo triggers."""
        matching.rest_fills(self._state, symbol)
        matching.fire_triggers(self._state, symbol)
        algo.on_price(self._state, symbol)
