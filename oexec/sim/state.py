"""The running simulator's shared state: engine, auth, limiters, faults, stream, counters.

Handlers (routes.py, control.py) receive one ``SimState``; app.py builds it from a
``SimConfig``. Time is wall-clock milliseconds (the engine takes the same clock), so
client timestamps and server timestamps are comparable like on the venue.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from oexec.sim.auth import KeyStore
from oexec.sim.config import SimConfig, SimConfigError
from oexec.sim.engine import DEFAULT_SYMBOLS, Exchange, SymbolSpec
from oexec.sim.engine.errors import no_such_order
from oexec.sim.faults import FaultInjector, param_ms
from oexec.sim.marketstreams import MarketStreams
from oexec.sim.ratelimit import RateLimiter
from oexec.sim.userstream import UserStreams


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@attrs.define
class Stats:
    """Counters for ``GET /_sim/stats`` (venue paths only, never /_sim/ itself)."""

    responses_by_status: Counter[str] = attrs.field(factory=Counter)
    requests_by_path: Counter[str] = attrs.field(factory=Counter)
    #: REST requests by method and path ("POST /fapi/v1/order"): one path serves several
    #: calls (place, cancel and query share /fapi/v1/order)
    requests_by_route: Counter[str] = attrs.field(factory=Counter)
    connections_reset: int = 0

    def reset(self) -> None:
        self.responses_by_status.clear()
        self.requests_by_path.clear()
        self.requests_by_route.clear()
        self.connections_reset = 0


class ReadLag:
    """Orders hidden from queries for a while after acceptance (read_after_write_lag)."""

    def __init__(self) -> None:
        self._hidden: dict[tuple[str, str, str], int] = {}

    def hide(self, account: str, order: Mapping[str, Any], until_ms: int) -> None:
        self._hidden[(account, "orderId", str(order.get("orderId")))] = until_ms
        self._hidden[(account, "origClientOrderId", str(order.get("clientOrderId")))] = until_ms

    def check(self, account: str, params: Mapping[str, str], now_ms: int) -> None:
        """-2013 when the queried order is still inside its lag window."""
        for name in ("orderId", "origClientOrderId"):
            until = self._hidden.get((account, name, params.get(name, "")))
            if until is not None and now_ms < until:
                raise no_such_order()
        self._hidden = {k: v for k, v in self._hidden.items() if v > now_ms}

    def clear(self) -> None:
        self._hidden.clear()


def build_symbols(overrides: Mapping[str, Mapping[str, str]]) -> tuple[SymbolSpec, ...]:
    """The engine's symbols: defaults, or exactly the configured ones with field overrides.

    ``price`` is accepted as a short name for ``initial_price``. A configured symbol not
    among the defaults starts from BTCUSDT's spec with the given overrides.
    """
    if not overrides:
        return DEFAULT_SYMBOLS
    defaults = {s.symbol: s for s in DEFAULT_SYMBOLS}
    fields = {f.name: f for f in attrs.fields(SymbolSpec)}
    specs = []
    for symbol, values in overrides.items():
        base = defaults.get(symbol) or attrs.evolve(DEFAULT_SYMBOLS[0], symbol=symbol)
        changes: dict[str, Any] = {}
        for name, text in values.items():
            name = "initial_price" if name == "price" else name
            if name not in fields or name == "symbol":
                raise SimConfigError(f"symbols.{symbol}: unknown field {name!r}")
            changes[name] = _convert(fields[name].type, text, f"symbols.{symbol}.{name}")
        specs.append(attrs.evolve(base, **changes))
    return tuple(specs)


def _convert(kind: object, text: str, where: str) -> Any:
    try:
        if kind in (int, "int"):
            return int(text)
        if kind in (str, "str"):
            return text
        number = Decimal(text)
    except (ValueError, ArithmeticError):
        raise SimConfigError(f"{where}: bad value {text!r}") from None
    if not number.is_finite():
        raise SimConfigError(f"{where}: bad value {text!r}")
    return number


class SimState:
    """Everything a request handler may touch."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config.with_accounts()
        self.keys = KeyStore(self.config.accounts)
        self.exchange = Exchange(
            build_symbols(self.config.symbols),
            now_ms=self.now_ms,
            seed=self.config.seed,
            funding_interval_ms=self.config.funding_interval_ms,
            funding_rate=self.config.funding_rate,
        )
        self._add_accounts()
        self.limiter = RateLimiter(self.config.rate_limits)
        self.faults = FaultInjector(self.config.seed, self.config.faults)
        self.streams = UserStreams(
            self.exchange, self.faults, self.now_ms, self.config.listen_key_ttl_s
        )
        self.market_streams = MarketStreams(self.exchange, self.now_ms)
        self.stats = Stats()
        self.lag = ReadLag()

    def _add_accounts(self) -> None:
        for account in self.config.accounts:
            self.exchange.add_account(account.account_id, account.balances)

    @staticmethod
    def now_ms() -> int:
        return wall_ms()

    def server_ms(self, path: str) -> int:
        """The server clock as this request sees it (clock_skew shifts it)."""
        skew = self.faults.roll("clock_skew", path)
        offset = 0.0
        if skew is not None:
            offset = float(skew.params.get("offset_ms", 0))
        return self.now_ms() + int(offset)

    def note_accepted(self, account: str, path: str, order: Mapping[str, Any]) -> None:
        """Apply read_after_write_lag to a just-accepted order."""
        rule = self.faults.roll("read_after_write_lag", path)
        if rule is not None and "orderId" in order:
            self.lag.hide(account, order, self.now_ms() + int(param_ms(rule, "ms", 1000.0)))

    def reset(self) -> None:
        """Back to the start: engine, accounts, faults (config's again), limits, counters."""
        self.streams.reset()
        self.exchange.reset()
        self.faults.reset()
        for rule in self.config.faults:
            self.faults.add(rule)
        self.limiter.reset()
        self.stats.reset()
        self.lag.clear()
