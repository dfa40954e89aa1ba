"""Market history and account-configuration reads, as a mixin of ``Exchange``.

Kept out of exchange.py (already the facade of every order operation) so each file stays
readable: klines, mark/index-price klines, aggTrades, trades, funding rate history and
info, open interest (all derived from the tapes, see tape.py), and the reads clients make
at connect: symbolConfig, accountConfig, commissionRate, income.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from oexec.sim.engine import funding, income, tape, views
from oexec.sim.engine.errors import SimError, missing
from oexec.sim.engine.numbers import ZERO, fmt
from oexec.sim.engine.params import PositionSide
from oexec.sim.engine.state import Market, State

Json = dict[str, Any]
Params = Mapping[str, str]
MAX_KLINES = 1500


def _limit(params: Params, default: int, maximum: int) -> int:
    text = params.get("limit")
    if not text:
        return default
    if not text.isdigit():
        raise SimError(-1100, "Illegal characters found in parameter 'limit'.")
    return max(1, min(int(text), maximum))


class HistoryViews:
    """Read-only views over the engine's state (mixed into ``Exchange``)."""

    _state: State
    _now_ms: Callable[[], int]

    def _named_market(self, params: Params, name: str = "symbol") -> Market:
        symbol = params.get(name)
        if not symbol:
            raise missing(name)
        return self._state.markets[self._state.spec(symbol).symbol]

    def _tape(self, market: Market) -> tape.Tape:
        return self._state.tapes[market.spec.symbol]

    # -- market data ---------------------------------------------------------------------
    def klines(self, params: Params, kind: str = "trade") -> list[list[Any]]:
        """GET /fapi/v1/klines (kind "trade"), /markPriceKlines ("mark"),
        /indexPriceKlines ("index": ``pair``; the simulator's index is its mark price)."""
        market = self._named_market(params, "pair" if kind == "index" else "symbol")
        interval = params.get("interval")
        if not interval:
            raise missing("interval")
        tape.check_interval(interval)
        limit = _limit(params, 500, MAX_KLINES)
        record = self._tape(market)
        first = record.history_start(marks=kind != "trade")
        opens = tape.kline_window(interval, first, self._now_ms(), params, limit)
        samples = tape.trade_samples(record) if kind == "trade" else tape.mark_samples(record)
        return tape.klines(samples, opens, interval, record.initial_price, kind == "trade")

    def agg_trades(self, params: Params) -> list[Json]:
        """GET /fapi/v1/aggTrades (each market trade is its own aggregate)."""
        record = self._tape(self._named_market(params))
        return record.agg_trades(params, _limit(params, 500, 1000))

    def recent_trades(self, params: Params) -> list[Json]:
        """GET /fapi/v1/trades."""
        record = self._tape(self._named_market(params))
        return [t.trade_json() for t in record.recent(_limit(params, 500, 1000))]

    def funding_rate_history(self, params: Params) -> list[Json]:
        """GET /fapi/v1/fundingRate."""
        if params.get("symbol"):
            self._named_market(params)
        return funding.history(self._state, params)

    def funding_info(self) -> list[Json]:
        """GET /fapi/v1/fundingInfo."""
        return funding.info(self._state)

    def open_interest(self, params: Params) -> Json:
        """GET /fapi/v1/openInterest: the sum of every account's long exposure."""
        market = self._named_market(params)
        symbol = market.spec.symbol
        total = ZERO
        for account in self._state.accounts.values():
            for side in (PositionSide.BOTH, PositionSide.LONG):
                amount = account.positions.get((symbol, side))
                if amount is not None and amount.amount > 0:
                    total += amount.amount
        return {"openInterest": fmt(total), "symbol": symbol, "time": self._now_ms()}

    def symbols(self) -> list[str]:
        return list(self._state.markets)

    def trade_ids(self, symbol: str, start_ms: int, end_ms: int) -> tuple[int, int]:
        """First and last public trade id within [start, end] (-1, -1 without trades)."""
        ids = [t.trade_id for t in self._state.tapes[symbol].trades if start_ms <= t.time <= end_ms]
        return (ids[0], ids[-1]) if ids else (-1, -1)

    def settle_funding(self) -> list[Json]:
        """Settle funding now, off the schedule (tests, demos); the fundingRate rows."""
        before = len(self._state.funding_history)
        funding.settle(self._state, self._now_ms())
        return self._state.funding_history[before:]

    def funding_due(self) -> bool:
        return funding.due(self._state)

    # -- account configuration -----------------------------------------------------------
    def symbol_config(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/symbolConfig (symbol optional)."""
        account = self._state.account(account_id)
        symbol = params.get("symbol")
        names = [self._state.spec(symbol).symbol] if symbol else list(self._state.markets)
        return [views.symbol_config(account, name) for name in names]

    def account_config(self, account_id: str) -> Json:
        """GET /fapi/v1/accountConfig."""
        return views.account_config(self._state.account(account_id))

    def commission_rate(self, account_id: str, params: Params) -> Json:
        """GET /fapi/v1/commissionRate (symbol required)."""
        self._state.account(account_id)
        symbol = self._named_market(params).spec.symbol
        fees = self._state.fees
        return {
            "symbol": symbol,
            "makerCommissionRate": fmt(fees.maker),
            "takerCommissionRate": fmt(fees.taker),
            "rpiCommissionRate": fmt(fees.maker / Decimal(4)),
        }

    def income(self, account_id: str, params: Params) -> list[Json]:
        """GET /fapi/v1/income."""
        self._state.account(account_id)
        return income.query(self._state, account_id, params)
