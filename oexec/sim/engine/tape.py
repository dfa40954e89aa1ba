"""The venue's public record of one symbol: market trades and mark-price samples.

Every price move is a market trade at the new last price (the seeded price path's steps
and ``set_price``; their quantity comes from the tape's own seeded generator, so the
price path's draws are untouched), and every fill of a simulated account is one too. The
mark price is sampled at each move. Klines, mark/index-price klines, ``aggTrades``,
``trades`` and the kline/aggTrade streams are all derived from this record, so they agree
with each other and with the accounts' fills, and repeat under the same seed. The record
is bounded (``MAX_RECORDS`` per symbol): older history falls off, and klines then start
at the oldest record kept, like the venue's retention horizon.
"""

from __future__ import annotations

import bisect
import calendar
import datetime
from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from oexec.sim.engine.errors import SimError
from oexec.sim.engine.numbers import ZERO, fmt

Json = dict[str, Any]
MAX_RECORDS = 20_000  # per symbol and kind: a few MB at most
SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000
#: Kline intervals (§4 "common definition"; ``1s`` per the official SDK 10.0.0).
FIXED_INTERVALS: Mapping[str, int] = {
    "1s": SECOND,
    "1m": MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": HOUR,
    "2h": 2 * HOUR,
    "4h": 4 * HOUR,
    "6h": 6 * HOUR,
    "8h": 8 * HOUR,
    "12h": 12 * HOUR,
    "1d": DAY,
    "3d": 3 * DAY,
    "1w": 7 * DAY,
}
INTERVALS = frozenset(FIXED_INTERVALS) | {"1M"}
_MONDAY_OFFSET = 4 * DAY  # 1970-01-01 was a Thursday; weekly klines open on Mondays


@attrs.frozen
class Trade:
    """One market trade: ``buyer_maker`` is the aggTrade/trades ``m`` flag."""

    trade_id: int
    price: Decimal
    qty: Decimal
    time: int
    buyer_maker: bool

    def agg_json(self) -> Json:
        """An ``aggTrades`` row (each trade its own aggregate)."""
        q = fmt(self.qty)
        return {
            "a": self.trade_id,
            "p": fmt(self.price),
            "q": q,
            "nq": q,
            "f": self.trade_id,
            "l": self.trade_id,
            "T": self.time,
            "m": self.buyer_maker,
        }

    def trade_json(self) -> Json:
        """A ``trades`` row."""
        return {
            "id": self.trade_id,
            "price": fmt(self.price),
            "qty": fmt(self.qty),
            "quoteQty": fmt(self.price * self.qty),
            "time": self.time,
            "isBuyerMaker": self.buyer_maker,
            "isRPITrade": False,
        }


@attrs.define
class Tape:
    """Trades and mark samples of one symbol since ``start_ms`` (or since reset)."""

    start_ms: int
    initial_price: Decimal
    trades: deque[Trade] = attrs.field(factory=lambda: deque(maxlen=MAX_RECORDS))
    marks: deque[tuple[int, Decimal]] = attrs.field(factory=lambda: deque(maxlen=MAX_RECORDS))

    def add_trade(self, trade: Trade) -> None:
        self.trades.append(trade)

    def add_mark(self, time: int, mark: Decimal) -> None:
        self.marks.append((time, mark))

    def history_start(self, marks: bool) -> int:
        """Where kept history begins: the start, or the oldest record once some fell off."""
        records: deque[Any] = self.marks if marks else self.trades
        if len(records) < MAX_RECORDS:
            return self.start_ms
        return int(records[0][0] if marks else records[0].time)

    def recent(self, limit: int) -> list[Trade]:
        return list(self.trades)[-limit:]

    def agg_trades(self, params: Mapping[str, str], limit: int) -> list[Json]:
        """``fromId`` (ascending from it), else ``startTime``/``endTime``, else the latest."""
        rows = list(self.trades)
        from_id = _int(params, "fromId")
        start, end = _int(params, "startTime"), _int(params, "endTime")
        if from_id is not None:
            rows = [t for t in rows if t.trade_id >= from_id][:limit]
        elif start is not None or end is not None:
            if start is not None and end is not None and end - start >= HOUR:
                raise SimError(-1127, "More than 1 hours between startTime and endTime.")
            rows = [t for t in rows if _within(t.time, start, end)][:limit]
        else:
            rows = rows[-limit:]
        return [t.agg_json() for t in rows]


def _within(time: int, start: int | None, end: int | None) -> bool:
    return (start is None or time >= start) and (end is None or time <= end)


def _int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise SimError(-1100, f"Illegal characters found in parameter '{name}'.")
    return int(text)


# -- interval arithmetic -----------------------------------------------------------------
def check_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise SimError(-1120, "Invalid interval.")
    return interval


def open_time(interval: str, time: int) -> int:
    """The open time of the kline containing ``time``."""
    if interval == "1M":
        day = datetime.datetime.fromtimestamp(time / 1000, tz=datetime.UTC)
        return calendar.timegm((day.year, day.month, 1, 0, 0, 0)) * 1000
    length = FIXED_INTERVALS[interval]
    offset = _MONDAY_OFFSET if interval == "1w" else 0
    return time - (time - offset) % length


def next_open(interval: str, opened: int) -> int:
    if interval == "1M":
        day = datetime.datetime.fromtimestamp(opened / 1000, tz=datetime.UTC)
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return opened + FIXED_INTERVALS[interval]


def kline_window(
    interval: str, first_ms: int, now: int, params: Mapping[str, str], limit: int
) -> list[int]:
    """Open times of the klines a request asks for, oldest first (venue rules: with
    ``startTime`` the klines from it; else the ``limit`` latest up to ``endTime``/now)."""
    start, end = _int(params, "startTime"), _int(params, "endTime")
    first = open_time(interval, first_ms)
    last = open_time(interval, min(now, end) if end is not None else now)
    opens: list[int] = []
    if start is not None:
        cursor = max(first, open_time(interval, start))
        if cursor < start:
            cursor = next_open(interval, cursor)
        while cursor <= last and len(opens) < limit:
            opens.append(cursor)
            cursor = next_open(interval, cursor)
        return opens
    cursor = first
    while cursor <= last:
        opens.append(cursor)
        cursor = next_open(interval, cursor)
    return opens[-limit:]


# -- klines ------------------------------------------------------------------------------
Sample = tuple[int, Decimal, Decimal, bool]  # time, price, qty, taker is buyer


def trade_samples(tape: Tape) -> list[Sample]:
    return [(t.time, t.price, t.qty, not t.buyer_maker) for t in tape.trades]


def mark_samples(tape: Tape) -> list[Sample]:
    return [(time, mark, ZERO, False) for time, mark in tape.marks]


def klines(
    samples: list[Sample],
    opens: Iterable[int],
    interval: str,
    initial: Decimal,
    with_volume: bool,
) -> list[list[Any]]:
    """Kline rows over ``opens``; a kline without samples is flat at the previous close
    (volume 0), as the venue prints quiet minutes."""
    times = [s[0] for s in samples]
    rows: list[list[Any]] = []
    opens = list(opens)
    if not opens:
        return rows
    index = bisect.bisect_left(times, opens[0])
    close = samples[index - 1][1] if index > 0 else initial
    for opened in opens:
        closes_at = next_open(interval, opened)
        open_price = high = low = close
        volume = quote = buy_volume = buy_quote = ZERO
        count = 0
        while index < len(samples) and samples[index][0] < closes_at:
            _, price, qty, taker_buys = samples[index]
            if count == 0:
                open_price = high = low = price
            high, low, close = max(high, price), min(low, price), price
            volume += qty
            quote += price * qty
            if taker_buys:
                buy_volume += qty
                buy_quote += price * qty
            count += 1
            index += 1
        row: list[Any] = [opened, fmt(open_price), fmt(high), fmt(low), fmt(close)]
        if with_volume:
            row += [fmt(volume), closes_at - 1, fmt(quote), count, fmt(buy_volume)]
            row += [fmt(buy_quote), "0"]
        else:
            row += ["0", closes_at - 1, "0", count, "0", "0", "0"]
        rows.append(row)
    return rows
