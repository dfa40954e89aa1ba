"""Public market streams as the venue routes them since 2026: book data on ``/public``,
everything else on ``/market`` (addendum §5).

Each path serves ws mode (``/<path>/ws/<s1>/<s2>``: bare payloads) and stream mode
(``/<path>/stream?streams=<s1>/<s2>``: ``{"stream", "data"}``), plus the live control
messages SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY/GET_PROPERTY
``combined`` with the venue's error codes (0 unknown property, 1 bad value type, 2 invalid
request, 3 invalid JSON). A stream subscribed on the wrong path is acknowledged and never
delivered, as on the venue. More than 10 incoming messages in a second close the socket.

Served streams: ``<s>@bookTicker`` (each price move), ``<s>@depth<5|10|20>[@100ms|@500ms]``
(snapshots every 250 ms by default), diff depth ``<s>@depth[@100ms|@500ms]`` and
``<s>@trade`` (as ccxt routes it; unconfirmed) on /public; ``<s>@aggTrade`` (each trade),
``<s>@markPrice[@1s]`` and ``!markPrice@arr[@1s]`` (3 s or 1 s), ``<s>@kline_<i>`` (every
250 ms when it changed; the closing update with ``x: true`` when its interval ends) on
/market. Every payload comes from the engine (the synthetic book, the tape, the mark).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import orjson
from aiohttp import web

from oexec.sim import streamcontrol
from oexec.sim.engine import Exchange
from oexec.sim.engine.tape import INTERVALS, Trade

if TYPE_CHECKING:
    pass

Json = dict[str, Any]
BEAT_S = 0.05
MAX_MESSAGES_PER_S = 10
MAX_STREAMS = 1024
_SPEED_BEATS = {"": 5, "@100ms": 2, "@500ms": 10}  # depth<N>: 250 ms default
_PUBLIC = re.compile(
    r"^(?:!bookTicker|[a-z0-9_]+@(?:trade|bookTicker|depth(?:5|10|20)?(?:@100ms|@500ms)?|rpiDepth@500ms))$"
)
_KLINE = re.compile(r"^([a-z0-9]+)@kline_(\w+)$")
_DEPTH = re.compile(r"^([a-z0-9]+)@depth(5|10|20)(@100ms|@500ms)?$")
_DIFF_DEPTH = re.compile(r"^([a-z0-9]+)@depth(@100ms|@500ms)?$")
DIFF_LEVELS = 100  # levels per side a diff depth event carries
MAX_DELETES = 5_000  # at most this many deleted levels per side and event
_MARK = re.compile(r"^([a-z0-9]+)@markPrice(@1s)?$")


def route(stream: str) -> str:
    """The path a stream is delivered on: ``public`` (book data) or ``market``."""
    return "public" if _PUBLIC.match(stream) else "market"


@attrs.define(eq=False)
class _Connection:
    path: str
    ws: web.WebSocketResponse
    combined: bool
    streams: list[str] = attrs.field(factory=list)
    queue: asyncio.Queue[bytes | None] = attrs.field(factory=asyncio.Queue)
    klines: dict[str, tuple[int, list[Any]]] = attrs.field(factory=dict)  # last sent
    depth_u: dict[str, int] = attrs.field(factory=dict)
    # diff depth: the lowest and highest last price since the stream's previous event
    swings: dict[str, tuple[Decimal, Decimal]] = attrs.field(factory=dict)
    received: list[float] = attrs.field(factory=list)

    def wants(self, stream: str) -> bool:
        return stream in self.streams and route(stream) == self.path

    def send(self, stream: str, payload: Any) -> None:
        body = {"stream": stream, "data": payload} if self.combined else payload
        self.queue.put_nowait(orjson.dumps(body))


class MarketStreams:
    """Every public-stream connection of one simulator, fed by the engine."""

    def __init__(self, exchange: Exchange, now_ms: Callable[[], int]) -> None:
        self.exchange = exchange
        self.now_ms = now_ms
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        exchange.subscribe_market(self._on_trade)

    def connection_count(self) -> int:
        return len(self._connections)

    # -- event-driven streams --------------------------------------------------------------
    def _on_trade(self, symbol: str, trade: Trade, moved: bool) -> None:
        if not self._connections:
            return
        name = symbol.lower()
        agg = f"{name}@aggTrade"
        raw = f"{name}@trade"
        book = f"{name}@bookTicker"
        for conn in self._connections:
            if conn.wants(agg):
                conn.send(agg, self._agg_trade(symbol, trade))
            if conn.wants(raw):
                conn.send(raw, self._trade(symbol, trade))
            if moved and conn.wants(book):
                conn.send(book, self._book_ticker(symbol))
            if moved:
                for stream in conn.streams:
                    if stream.startswith(f"{name}@depth@") or stream == f"{name}@depth":
                        low, high = conn.swings.get(stream, (trade.price, trade.price))
                        conn.swings[stream] = (min(low, trade.price), max(high, trade.price))

    def _agg_trade(self, symbol: str, trade: Trade) -> Json:
        return {"e": "aggTrade", "E": self.now_ms(), "s": symbol} | trade.agg_json()

    def _trade(self, symbol: str, trade: Trade) -> Json:
        """``<s>@trade`` (not in the USD-M stream list; shape and /public route as ccxt and
        NautilusTrader use it, unconfirmed)."""
        return {
            "e": "trade",
            "E": self.now_ms(),
            "T": trade.time,
            "s": symbol,
            "t": trade.trade_id,
            "p": format(trade.price.normalize(), "f"),
            "q": format(trade.qty.normalize(), "f"),
            "X": "MARKET",
            "m": trade.buyer_maker,
        }

    def _book_ticker(self, symbol: str) -> Json:
        top = self.exchange.book_ticker(symbol)
        assert isinstance(top, dict)
        return {
            "e": "bookTicker",
            "u": self.exchange.depth(symbol, 5)["lastUpdateId"],
            "E": self.now_ms(),
            "T": top["time"],
            "s": symbol,
            "b": top["bidPrice"],
            "B": top["bidQty"],
            "a": top["askPrice"],
            "A": top["askQty"],
        }

    # -- periodic streams ------------------------------------------------------------------
    async def run(self) -> None:
        beat = 0
        while True:
            await asyncio.sleep(BEAT_S)
            beat += 1
            if self._connections:
                self.beat(beat)

    def beat(self, beat: int) -> None:
        """One 50 ms beat: push the periodic streams that are due."""
        for conn in list(self._connections):
            for stream in list(conn.streams):
                if route(stream) != conn.path:
                    continue  # on the wrong path: never delivered
                with contextlib.suppress(KeyError, ValueError):
                    self._periodic(conn, stream, beat)

    def _periodic(self, conn: _Connection, stream: str, beat: int) -> None:
        depth = _DEPTH.match(stream)
        if depth and beat % _SPEED_BEATS[depth.group(3) or ""] == 0:
            conn.send(stream, self._depth(conn, stream, depth.group(1), int(depth.group(2))))
            return
        diff = _DIFF_DEPTH.match(stream)
        if diff and beat % _SPEED_BEATS[diff.group(2) or ""] == 0:
            event = self._diff_depth(conn, stream, self._symbol(diff.group(1)))
            if event is not None:
                conn.send(stream, event)
            return
        mark = _MARK.match(stream)
        if mark and beat % (20 if mark.group(2) else 60) == 0:
            conn.send(stream, self._mark_price(self._symbol(mark.group(1))))
            return
        if (
            stream.startswith("!markPrice@arr")
            and beat % (20 if stream.endswith("@1s") else 60) == 0
        ):
            conn.send(stream, [self._mark_price(s) for s in self.exchange.symbols()])
            return
        kline = _KLINE.match(stream)
        if kline and beat % 5 == 0:
            self._kline(conn, stream, self._symbol(kline.group(1)), kline.group(2))

    def _symbol(self, name: str) -> str:
        symbol = name.upper()
        if symbol not in self.exchange.symbols():
            raise KeyError(symbol)
        return symbol

    def _depth(self, conn: _Connection, stream: str, name: str, levels: int) -> Json:
        symbol = self._symbol(name)
        book = self.exchange.depth(symbol, levels)
        update = int(str(book["lastUpdateId"]))
        previous = conn.depth_u.get(stream, update - 1)
        conn.depth_u[stream] = update
        return {
            "e": "depthUpdate",
            "E": self.now_ms(),
            "T": book["T"],
            "s": symbol,
            "U": min(previous + 1, update),
            "u": update,
            "pu": previous,
            "b": book["bids"],
            "a": book["asks"],
        }

    def _started(self, conn: _Connection, stream: str) -> None:
        """A diff depth stream's first event covers the book from its subscription on:
        a snapshot taken after subscribing is always covered (``U <= lastUpdateId``)."""
        diff = _DIFF_DEPTH.match(stream)
        if not diff or diff.group(1).upper() not in self.exchange.symbols():
            return
        symbol = diff.group(1).upper()
        last = Decimal(str(self.exchange.ticker_price(symbol)["price"]))  # type: ignore[call-overload]
        conn.depth_u[stream] = int(str(self.exchange.depth(symbol, 5)["lastUpdateId"])) - 1
        conn.swings[stream] = (last, last)

    def _diff_depth(self, conn: _Connection, stream: str, symbol: str) -> Json | None:
        """A diff depth event when the book changed since this connection's last one.

        The synthetic book holds the same quantity at every tick on each side of the last
        price, so only the top changes: every level that may have been an ask since the
        previous event (down to the lowest last price seen meanwhile) and is not one now
        is deleted (``"0"``), likewise bids up to the highest last price seen; then the top
        ``DIFF_LEVELS`` of each side are sent with their (absolute) quantity. ``U``/``u``/
        ``pu`` follow the book's update id, the REST snapshot's ``lastUpdateId``, and ``pu``
        is this connection's previous ``u``: the venue's local-book procedure works."""
        book = self.exchange.depth(symbol, DIFF_LEVELS)
        update = int(str(book["lastUpdateId"]))
        previous = conn.depth_u.get(stream)
        if previous is not None and previous >= update:
            return None
        bids: list[list[str]] = book["bids"]
        asks: list[list[str]] = book["asks"]
        best_bid, best_ask = Decimal(bids[0][0]), Decimal(asks[0][0])
        tick = Decimal(asks[1][0]) - best_ask
        low, high = conn.swings.get(stream, (best_bid, best_ask))
        low, high = min(low, best_bid), max(high, best_ask)
        conn.swings[stream] = (best_bid, best_ask)  # the next event starts from this book
        gone_asks = _ticks(best_ask - tick, max(low - tick, best_ask - tick * MAX_DELETES), -tick)
        gone_bids = _ticks(best_bid + tick, min(high + tick, best_bid + tick * MAX_DELETES), tick)
        prior = update - 1 if previous is None else previous
        conn.depth_u[stream] = update
        return {
            "e": "depthUpdate",
            "E": self.now_ms(),
            "T": book["T"],
            "s": symbol,
            "U": prior + 1,
            "u": update,
            "pu": prior,
            "b": [[p, "0"] for p in gone_bids] + bids,
            "a": [[p, "0"] for p in gone_asks] + asks,
        }

    def _mark_price(self, symbol: str) -> Json:
        index = self.exchange.premium_index(symbol)
        assert isinstance(index, dict)
        return {
            "e": "markPriceUpdate",
            "E": self.now_ms(),
            "s": symbol,
            "p": index["markPrice"],
            "i": index["indexPrice"],
            "P": index["estimatedSettlePrice"],
            "r": index["lastFundingRate"],
            "T": index["nextFundingTime"],
        }

    def _kline(self, conn: _Connection, stream: str, symbol: str, interval: str) -> None:
        if interval not in INTERVALS:
            return
        rows = self.exchange.klines({"symbol": symbol, "interval": interval, "limit": "1"})
        row = rows[-1]
        last = conn.klines.get(stream)
        if last is not None and last[0] != row[0]:  # the previous interval closed
            closed = self.exchange.klines(
                {"symbol": symbol, "interval": interval, "startTime": str(last[0]), "limit": "1"}
            )
            if closed:
                conn.send(stream, self._kline_event(symbol, interval, closed[0], closed=True))
        if last is None or last[1] != row:
            conn.klines[stream] = (row[0], row)
            conn.send(stream, self._kline_event(symbol, interval, row, closed=False))

    def _kline_event(self, symbol: str, interval: str, row: list[Any], closed: bool) -> Json:
        first, last = self.exchange.trade_ids(symbol, row[0], row[6])
        body = {
            "t": row[0],
            "T": row[6],
            "s": symbol,
            "i": interval,
            "f": first,
            "L": last,
            "o": row[1],
            "c": row[4],
            "h": row[2],
            "l": row[3],
            "v": row[5],
            "n": row[8],
            "x": closed,
            "q": row[7],
            "V": row[9],
            "Q": row[10],
            "B": "0",
        }
        return {"e": "kline", "E": self.now_ms(), "s": symbol, "k": body}

    # -- connections -----------------------------------------------------------------------
    async def websocket(
        self, request: web.Request, path: str, streams: list[str], combined: bool
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        conn = _Connection(path, ws, combined, [s for s in streams if s][:MAX_STREAMS])
        for stream in conn.streams:
            self._started(conn, stream)
        self._connections.add(conn)
        sender = asyncio.create_task(self._send_loop(conn))
        self._tasks.add(sender)
        sender.add_done_callback(self._tasks.discard)
        try:
            async for message in ws:
                if message.type != web.WSMsgType.TEXT:
                    continue
                if self._flooded(conn):
                    await ws.close(code=1008, message=b"Too many requests")
                    break
                reply = streamcontrol.handle(
                    conn, message.data, lambda stream: self._started(conn, stream), MAX_STREAMS
                )
                conn.queue.put_nowait(orjson.dumps(reply))
        finally:
            self._connections.discard(conn)
            conn.queue.put_nowait(None)
            await asyncio.wait({sender})
        return ws

    def _flooded(self, conn: _Connection) -> bool:
        now = time.monotonic()
        conn.received = [t for t in conn.received if now - t < 1.0] + [now]
        return len(conn.received) > MAX_MESSAGES_PER_S

    async def _send_loop(self, conn: _Connection) -> None:
        while True:
            payload = await conn.queue.get()
            if payload is None or conn.ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(payload.decode())

    async def shutdown(self, grace_s: float = 1.0) -> None:
        for conn in list(self._connections):
            conn.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)


def _ticks(start: Decimal, stop: Decimal, step: Decimal) -> list[str]:
    """Prices from ``start`` towards ``stop`` (inclusive) by ``step``, as venue strings."""
    prices = []
    price = start
    while (price >= stop if step < 0 else price <= stop) and price > 0:
        prices.append(format(price.normalize(), "f"))
        price += step
    return prices
