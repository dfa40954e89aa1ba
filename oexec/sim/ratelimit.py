"""The venue's rate limiters: request weight per IP, orders per account, 429 then 418.

Windows are fixed and aligned to the clock like Binance's (the minute counter resets at
the top of each minute). A request that would exceed a limiter is refused with HTTP 429
(-1003 for weight, -1015 for orders) and ``Retry-After`` (seconds to the window's end).
The venue's rules (general-info, "IP Limits" / "Order Rate Limits"): the weight limit is
per IP, the order-count limit per account. "Repeatedly violating rate limits and/or
failing to back off after receiving 429s will result in an automated IP ban (HTTP status
418)", "from 2 minutes to 3 days" for repeat offenders. So an IP that keeps sending after
a weight 429 (-1003) collects a strike per request while limited; ``ban_after`` strikes
earn an IP ban answered with 418 -1003 "... banned until <ms>", whose length starts at
``ban_initial_s`` and doubles per repeat offence up to ``ban_max_s``. Order-count 429s
(-1015) are an account limit: whether repeating them bans the IP is undocumented, so by
default they never do; ``orders_429_strikes = true`` makes new orders sent after a -1015
strikes like the above (the simulator's former behaviour).
"""

from __future__ import annotations

import math

import attrs

from oexec.sim.config import RateLimitConfig
from oexec.sim.engine import SimError

MINUTE_MS = 60_000
TEN_S_MS = 10_000


@attrs.define
class _Window:
    """A fixed-window counter."""

    length_ms: int
    start_ms: int = 0
    used: int = 0

    def current(self, now_ms: int) -> int:
        self._roll(now_ms)
        return self.used

    def add(self, now_ms: int, amount: int) -> int:
        self._roll(now_ms)
        self.used += amount
        return self.used

    def retry_after_s(self, now_ms: int) -> int:
        return max(1, math.ceil((self.start_ms + self.length_ms - now_ms) / 1000))

    def _roll(self, now_ms: int) -> None:
        start = now_ms - now_ms % self.length_ms
        if start != self.start_ms:
            self.start_ms, self.used = start, 0


@attrs.define
class _IpState:
    weight: _Window = attrs.field(factory=lambda: _Window(MINUTE_MS))
    limited_until_ms: int = 0  # a 429 was sent; further requests before this are strikes
    strikes: int = 0
    banned_until_ms: int = 0
    offences: int = 0


@attrs.define
class _AccountState:
    orders_10s: _Window = attrs.field(factory=lambda: _Window(TEN_S_MS))
    orders_1m: _Window = attrs.field(factory=lambda: _Window(MINUTE_MS))
    limited_until_ms: int = 0  # a -1015 was sent; further NEW ORDERS before this are strikes


@attrs.frozen
class Usage:
    """What the response headers report after a request was counted."""

    weight_1m: int
    orders_10s: int | None = None
    orders_1m: int | None = None

    def headers(self) -> dict[str, str]:
        result = {"X-MBX-USED-WEIGHT-1M": str(self.weight_1m)}
        if self.orders_10s is not None and self.orders_1m is not None:
            result["X-MBX-ORDER-COUNT-10S"] = str(self.orders_10s)
            result["X-MBX-ORDER-COUNT-1M"] = str(self.orders_1m)
        return result


class RateLimited(SimError):
    """A 429/418 refusal that also carries the usage headers and ``Retry-After``."""

    def __init__(self, code: int, msg: str, status: int, retry_after_s: int, usage: Usage):
        super().__init__(code, msg, status)
        self.retry_after_s = retry_after_s
        self.usage = usage


class RateLimiter:
    """All limiters of one simulated venue; ``config`` can be replaced at run time."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self._ips: dict[str, _IpState] = {}
        self._accounts: dict[str, _AccountState] = {}

    def reset(self) -> None:
        """Forget all counters, strikes and bans."""
        self._ips.clear()
        self._accounts.clear()

    def reconfigure(self, config: RateLimitConfig) -> None:
        """Apply new limits; lifting limits (``enabled = false``) also lifts bans."""
        self.config = config
        if not config.enabled:
            self.reset()

    def exchange_info_limits(self) -> list[dict[str, object]]:
        """The ``rateLimits`` array of exchangeInfo."""
        c = self.config
        return [
            _limit("REQUEST_WEIGHT", "MINUTE", 1, c.weight_per_minute),
            _limit("ORDERS", "MINUTE", 1, c.orders_per_minute),
            _limit("ORDERS", "SECOND", 10, c.orders_per_10s),
        ]

    def usage(self, ip: str, account: str | None, now_ms: int) -> Usage:
        """Current counters, for responses to requests that were not counted."""
        weight = self._ip(ip).weight.current(now_ms)
        if account is None:
            return Usage(weight)
        acc = self._account(account)
        return Usage(weight, acc.orders_10s.current(now_ms), acc.orders_1m.current(now_ms))

    def check_ip(self, ip: str, weight: int, now_ms: int) -> Usage:
        """Count a request's weight; raise RateLimited (429/418) when it may not proceed."""
        state = self._ip(ip)
        if not self.config.enabled:
            return Usage(state.weight.add(now_ms, weight))
        if now_ms < state.banned_until_ms:
            raise self._banned(ip, state, now_ms)
        if now_ms < state.limited_until_ms:
            self._strike(ip, state, now_ms)
        used = state.weight.add(now_ms, weight)
        limit = self.config.weight_per_minute
        if used > limit:
            retry = state.weight.retry_after_s(now_ms)
            self._limited(state, now_ms, retry)
            msg = (
                f"Too many requests; current limit of IP({ip}) request weight is {limit} per "
                "minute. Please use WebSocket Streams for live updates to avoid polling the API."
            )
            raise RateLimited(-1003, msg, 429, retry, Usage(used))
        return Usage(used)

    def check_orders(
        self, ip: str, account: str, count_10s: int, count_1m: int, usage: Usage, now_ms: int
    ) -> Usage:
        """Count new orders for an account; raise RateLimited(429, -1015) over a limit."""
        acc = self._account(account)
        if self.config.enabled and self.config.orders_429_strikes and now_ms < acc.limited_until_ms:
            self._strike(ip, self._ip(ip), now_ms)
        used_10s = acc.orders_10s.add(now_ms, count_10s)
        used_1m = acc.orders_1m.add(now_ms, count_1m)
        counted = Usage(usage.weight_1m, used_10s, used_1m)
        if not self.config.enabled:
            return counted
        for window, used, limit, label in (
            (acc.orders_10s, used_10s, self.config.orders_per_10s, "10 SECOND"),
            (acc.orders_1m, used_1m, self.config.orders_per_minute, "1 MINUTE"),
        ):
            if used > limit:
                retry = window.retry_after_s(now_ms)
                acc.limited_until_ms = max(acc.limited_until_ms, now_ms + retry * 1000)
                msg = f"Too many new orders; current limit is {limit} orders per {label}."
                raise RateLimited(-1015, msg, 429, retry, counted)
        return counted

    def _limited(self, state: _IpState, now_ms: int, retry_after_s: int) -> None:
        state.limited_until_ms = max(state.limited_until_ms, now_ms + retry_after_s * 1000)

    def _strike(self, ip: str, state: _IpState, now_ms: int) -> None:
        """One more request sent while limited; ``ban_after`` strikes ban the IP (418)."""
        state.strikes += 1
        if state.strikes >= self.config.ban_after:
            self._ban(state, now_ms)
            raise self._banned(ip, state, now_ms)

    def _ban(self, state: _IpState, now_ms: int) -> None:
        length_s = min(self.config.ban_initial_s * 2**state.offences, self.config.ban_max_s)
        state.offences += 1
        state.strikes = 0
        state.limited_until_ms = 0
        state.banned_until_ms = now_ms + length_s * 1000

    def _banned(self, ip: str, state: _IpState, now_ms: int) -> RateLimited:
        retry = max(1, math.ceil((state.banned_until_ms - now_ms) / 1000))
        msg = (
            f"Way too many requests; IP({ip}) banned until {state.banned_until_ms}. "
            "Please use the websocket for live updates to avoid bans."
        )
        return RateLimited(-1003, msg, 418, retry, Usage(state.weight.current(now_ms)))

    def _ip(self, ip: str) -> _IpState:
        return self._ips.setdefault(ip, _IpState())

    def _account(self, account: str) -> _AccountState:
        return self._accounts.setdefault(account, _AccountState())


def _limit(kind: str, interval: str, num: int, limit: int) -> dict[str, object]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}
