"""Public market streams as the venue routes them since 2026: book data on ``/public``,
everything else on ``/market`` (addendum §5).

Each path serves ws mode (``/<path>/ws/<s1>/<s2>``: bare payloads) and stream mode
(``/<path>/stream?streams=<s1>/<s2>``: ``{"stream", "data"}``), plus the live control
messages SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY/GET_PROPERTY
``combined`` with the venue's error codes (0 unknown property, 1 bad value type, 2 invalid
request, 3 invalid JSON). A stream subscribed on the wrong path is acknowledged and never
delivered, as on the venue. More than 10 incoming messages in a second close the socket.

Served streams: ``<s>@bookTicker`` (each price move) and ``<s>@depth<5|10|20>[@100ms|@500ms]``
(snapshots every 250 ms by default) on /public; ``<s>@aggTrade`` (each trade),
``<s>@markPrice[@1s]`` and ``!markPrice@arr[@1s]`` (3 s or 1 s), ``<s>@kline_<i>`` (every
250 ms when it changed; the closing update with ``x: true`` when its interval ends) on
/market. Every payload comes from the engine (the synthetic book, the tape, the mark).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import attrs
import orjson
from aiohttp import web

from oexec.sim.engine import Exchange
from oexec.sim.engine.tape import INTERVALS, Trade

if TYPE_CHECKING:
    from oexec.sim.state import SimState

Json = dict[str, Any]
BEAT_S = 0.05
MAX_MESSAGES_PER_S = 10
MAX_STREAMS = 1024
_SPEED_BEATS = {"": 5, "@100ms": 2, "@500ms": 10}  # depth<N>: 250 ms default
_PUBLIC = re.compile(
    r"^(?:!bookTicker|[a-z0-9_]+@(?:bookTicker|depth(?:5|10|20)?(?:@100ms|@500ms)?|rpiDepth@500ms))$"
)
_KLINE = re.compile(r"^([a-z0-9]+)@kline_(\w+)$")
_DEPTH = re.compile(r"^([a-z0-9]+)@depth(5|10|20)(@100ms|@500ms)?$")
_MARK = re.compile(r"^([a-z0-9]+)@markPrice(@1s)?$")


def route(stream: str) -> str:
    """The path a stream is delivered on: ``public`` (book data) or ``market``."""
    return "public" if _PUBLIC.match(stream) else "market"


class _Refused(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@attrs.define(eq=False)
class _Connection:
    path: str
    ws: web.WebSocketResponse
    combined: bool
    streams: list[str] = attrs.field(factory=list)
    queue: asyncio.Queue[bytes | None] = attrs.field(factory=asyncio.Queue)
    klines: dict[str, tuple[int, list[Any]]] = attrs.field(factory=dict)  # last sent
    depth_u: dict[str, int] = attrs.field(factory=dict)
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
        book = f"{name}@bookTicker"
        for conn in self._connections:
            if conn.wants(agg):
                conn.send(agg, self._agg_trade(symbol, trade))
            if moved and conn.wants(book):
                conn.send(book, self._book_ticker(symbol))

    def _agg_trade(self, symbol: str, trade: Trade) -> Json:
        return {"e": "aggTrade", "E": self.now_ms(), "s": symbol} | trade.agg_json()

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
                reply = self._control(conn, message.data)
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

    def _control(self, conn: _Connection, text: str) -> Json:
        """One SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS/SET_PROPERTY/GET_PROPERTY message."""
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
        ident = request.get("id") if isinstance(request, dict) else None
        try:
            return {"result": self._apply(conn, request), "id": ident}
        except _Refused as refused:
            error: Json = {"code": refused.code, "msg": refused.msg}
            return error | ({"id": ident} if ident is not None else {})

    def _apply(self, conn: _Connection, request: Any) -> Any:
        if not isinstance(request, dict) or "method" not in request:
            raise _Refused(2, "Invalid request: missing field `method` at line 1 column 1")
        ident = request.get("id")
        if not isinstance(ident, int) or isinstance(ident, bool) or ident < 0:
            raise _Refused(2, "Invalid request: request ID must be an unsigned integer")
        method, params = request["method"], request.get("params", [])
        if not isinstance(params, list):
            raise _Refused(2, "Invalid request: invalid type for `params`")
        if method == "SUBSCRIBE":
            for stream in params:
                if isinstance(stream, str) and stream not in conn.streams:
                    conn.streams.append(stream)
            del conn.streams[MAX_STREAMS:]
            return None
        if method == "UNSUBSCRIBE":
            conn.streams[:] = [s for s in conn.streams if s not in params]
            return None
        if method == "LIST_SUBSCRIPTIONS":
            return list(conn.streams)
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(conn, method, params)
        raise _Refused(2, "Invalid request: unknown variant")

    def _property(self, conn: _Connection, method: str, params: list[Any]) -> Any:
        if not params or not isinstance(params[0], str):
            raise _Refused(2, "Invalid request: property name must be a string")
        if params[0] != "combined":
            raise _Refused(0, "Unknown property")
        if method == "GET_PROPERTY":
            return conn.combined
        if len(params) != 2 or not isinstance(params[1], bool):
            raise _Refused(1, "Invalid value type: expected Boolean")
        conn.combined = params[1]
        return None

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


# -- routes ----------------------------------------------------------------------------------
def add_routes(app: web.Application, state_key: web.AppKey[Any]) -> None:
    """``/public`` and ``/market`` (ws and stream mode) and the ``/private`` query forms of
    the user stream. Must be added before the venue's catch-all route."""

    def handler(path: str, mode: str) -> Callable[[web.Request], Any]:
        async def serve(request: web.Request) -> web.StreamResponse:
            state = request.app[state_key]
            state.stats.requests_by_path[f"/{path}/{mode}"] += 1
            if mode == "ws":
                names = request.match_info.get("streams", "").split("/")
            else:
                names = request.query.get("streams", "").split("/")
            streams: MarketStreams = state.market_streams
            return await streams.websocket(request, path, names, combined=mode == "stream")

        return serve

    for path in ("public", "market"):
        app.router.add_get(f"/{path}/ws", handler(path, "ws"))
        app.router.add_get(f"/{path}/ws/{{streams:.+}}", handler(path, "ws"))
        app.router.add_get(f"/{path}/stream", handler(path, "stream"))

    async def private(request: web.Request) -> web.StreamResponse:
        """``/private/ws?listenKey=<k>[&events=A/B]`` and ``/private/stream?listenKey=...``."""
        state: SimState = request.app[state_key]
        state.stats.requests_by_path[request.path] += 1
        key = request.query.get("listenKey") or request.query.get("streams", "").split("/")[0]
        events = request.query.get("events")
        wanted = frozenset(events.split("/")) if events else None
        combined = request.path.endswith("/stream")
        return await state.streams.websocket(request, key, combined=combined, events=wanted)

    app.router.add_get("/private/ws", private)
    app.router.add_get("/private/stream", private)

    async def background(app: web.Application) -> AsyncIterator[None]:
        streams: MarketStreams = app[state_key].market_streams
        task = asyncio.create_task(streams.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await streams.shutdown()

    async def close(app: web.Application) -> None:
        await app[state_key].market_streams.shutdown()

    app.cleanup_ctx.append(background)
    app.on_shutdown.append(close)
