"""The USDⓈ-M WebSocket API (``ws-fapi``) on the simulator's port, at ``/ws-fapi/v1``.

One JSON request per text frame, ``{id, method, params}``; one reply per request,
``{id, status, result | error, rateLimits}`` (addendum §2.2-2.3). A request goes through
the REST dispatcher's steps in the same order, against the same state: latency and 5xx
faults, IP weight, authentication, order counts, the engine call (the REST twin's
handler, methods.py), then after-accept faults - ``reset_after_accept`` drops the whole
connection without replies, ``timeout_after_accept`` answers "unknown" (503 or 408/-1007)
for an order that was placed. Requests run as tasks in arrival order (the engine call
happens before the task first yields, so without latency faults they are handled in
order); replies may overtake each other only when a latency fault delays one.

Connection rules (§2.1): the handshake costs 5 IP weight; the server pings every
``ping_interval_s`` (180 s) and drops a connection that sent no pong for ``pong_timeout_s``
(600 s); a connection lives at most ``lifetime_s`` (24 h). ``session.logon`` (Ed25519
keys only) authorises later requests of the connection without their own signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import attrs
import orjson
from aiohttp import WSMsgType, web

from oexec.sim.engine import SimError
from oexec.sim.ratelimit import RateLimited, Usage
from oexec.sim.routes import Call
from oexec.sim.state import SimState
from oexec.sim.wsapi_methods import (
    HANDSHAKE_WEIGHT,
    METHODS,
    PATH,
    Logon,
    Method,
    Params,
    as_text,
    authenticate,
    decode_json,
    rate_limits,
    verify,
)

_UNKNOWN = "Unknown error, please check your request or try again later."
_TIMEOUT_1007 = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."  # noqa: E501
_INTERNAL = "Internal error; unable to process your request. Please try again."


@attrs.define
class WsApiSettings:
    """Connection rules; tests shorten them (``app[WSAPI].settings``)."""

    ping_interval_s: float = 180.0
    pong_timeout_s: float = 600.0
    lifetime_s: float = 86_400.0


@attrs.define(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    ip: str
    connected_ms: int
    return_rate_limits: bool
    logon: Logon | None = None
    last_pong: float = attrs.field(factory=time.monotonic)
    send_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    dropped: bool = False


class _Reply(Exception):
    """A finished reply raised out of the request steps (error or lost)."""

    def __init__(
        self, status: int, body: dict[str, Any] | None, usage: Usage | None, request_id: Any = None
    ) -> None:
        super().__init__(status)
        self.status, self.body, self.usage = status, body, usage
        self.request_id = request_id


class WsApi:
    """Serves ``/ws-fapi/v1``; owns the open connections and their request tasks."""

    def __init__(self, state_key: web.AppKey[SimState]) -> None:
        self._state_key = state_key
        self.settings = WsApiSettings()
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_count(self) -> int:
        return len(self._connections)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = request.app[self._state_key]
        state.stats.requests_by_path[PATH] += 1
        ip = request.remote or "127.0.0.1"
        try:
            state.limiter.check_ip(ip, HANDSHAKE_WEIGHT, state.now_ms())
        except RateLimited as limited:
            headers = limited.usage.headers() | {"Retry-After": str(limited.retry_after_s)}
            return web.json_response(limited.to_json(), status=limited.http_status, headers=headers)
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        flag = request.query.get("returnRateLimits", "true").lower()
        conn = _Connection(ws, request, ip, state.now_ms(), flag != "false")
        self._connections.add(conn)
        keeper = asyncio.create_task(self._keepalive(conn))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._spawn(self._request(state, conn, message.data))
                elif message.type == WSMsgType.PING:
                    await ws.pong(message.data)
                elif message.type == WSMsgType.PONG:
                    conn.last_pong = time.monotonic()
        finally:
            self._connections.discard(conn)
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        return ws

    async def shutdown(self) -> None:
        """Close every connection and stop request tasks (the app is going away)."""
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"server shutdown")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keepalive(self, conn: _Connection) -> None:
        """Ping every interval, drop a silent peer, and end the connection at its lifetime."""
        settings = self.settings
        deadline = time.monotonic() + settings.lifetime_s
        while True:
            left = deadline - time.monotonic()
            await asyncio.sleep(max(0.0, min(settings.ping_interval_s, left)))
            now = time.monotonic()
            if now >= deadline:
                await conn.ws.close(code=1000, message=b"connection lifetime reached")
                return
            if now - conn.last_pong > settings.pong_timeout_s:
                await conn.ws.close(code=1008, message=b"no pong")
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.ping(str(int(time.time() * 1000)).encode())

    async def _request(self, state: SimState, conn: _Connection, text: str) -> None:
        request_id: Any = None
        flag: Any = None
        orders_counted = False
        usage: Usage | None
        try:
            request_id, method, params = _envelope(text)
            flag = params.get("returnRateLimits")
            orders_counted = method.orders != (0, 0)
            status, result, usage = await self._steps(state, conn, method, params)
            body: dict[str, Any] = {"id": request_id, "status": status, "result": result}
        except _Reply as reply:
            if reply.body is None:  # the connection was dropped after the work was done
                return
            request_id = request_id if reply.request_id is None else reply.request_id
            body = {"id": request_id, "status": reply.status, "error": reply.body}
            usage = reply.usage
        state.stats.responses_by_status[str(body["status"])] += 1
        wanted = conn.return_rate_limits if flag is None else str(flag).lower() != "false"
        if wanted and usage is not None:
            orders = None
            if orders_counted and usage.orders_10s is not None and usage.orders_1m is not None:
                orders = (usage.orders_10s, usage.orders_1m)
            body["rateLimits"] = rate_limits(usage.weight_1m, orders, _limits(state))
        await self._send(conn, body)

    async def _steps(
        self, state: SimState, conn: _Connection, method: Method, params: Params
    ) -> tuple[int, Any, Usage]:
        """The REST dispatcher's steps for one request; raises _Reply for any non-200."""
        path = method.fault_path
        state.stats.requests_by_path[f"{PATH} {method.name}"] += 1
        latency = state.faults.roll("latency", path)
        if latency is not None:
            await asyncio.sleep(state.faults.latency_s(latency))
        now = state.now_ms()
        usage = state.limiter.usage(conn.ip, None, now)
        broken = state.faults.roll("error_5xx", path)
        if broken is not None:
            code = int(broken.params.get("code", -1001))
            status = int(broken.params.get("status", 503))
            raise _Reply(status, {"code": code, "msg": _INTERNAL}, usage)
        text = as_text(params)
        server_ms = state.server_ms(path)
        try:
            usage = state.limiter.check_ip(conn.ip, method.weight(text), now)
            if method.name == "session.logon":
                return 200, self._logon(state, conn, params, text, server_ms), usage
            account = authenticate(state.keys, method, params, text, conn.logon, server_ms)
            if account is not None and method.orders != (0, 0):
                usage = state.limiter.check_orders(conn.ip, account, *method.orders, usage, now)
            elif account is not None:
                usage = state.limiter.usage(conn.ip, account, now)
            result = self._call(state, conn, method, text, account, server_ms)
        except RateLimited as limited:
            error = limited.to_json() | {"data": {"retryAfter": now + limited.retry_after_s * 1000}}
            raise _Reply(limited.http_status, error, limited.usage) from None
        except SimError as error:
            raise _Reply(error.http_status, error.to_json(), usage) from None
        if method.mutates:
            self._after_accept(state, conn, path, usage)
        return 200, result, usage

    def _call(
        self,
        state: SimState,
        conn: _Connection,
        method: Method,
        text: dict[str, str],
        account: str | None,
        server_ms: int,
    ) -> Any:
        if method.name == "session.status":
            return _session(state, conn)
        if method.name == "session.logout":
            conn.logon = None
            return _session(state, conn)
        for name in ("apiKey", "returnRateLimits"):
            text.pop(name, None)
        twin = method.endpoint
        assert method.twin is not None
        return twin.handler(Call(state, method.twin[1], text, account or "", server_ms))

    def _logon(
        self, state: SimState, conn: _Connection, params: Params, text: dict[str, str], now: int
    ) -> dict[str, Any]:
        """``session.logon``: an Ed25519-signed request; the key then covers the session."""
        credential = verify(state.keys, params, text, now)
        if credential.public_key is None:
            raise SimError(-4056, "HMAC_SHA256 API key is not supported.")
        conn.logon = Logon(text["apiKey"], credential.account_id, state.now_ms())
        return _session(state, conn)

    def _after_accept(self, state: SimState, conn: _Connection, path: str, usage: Usage) -> None:
        if state.faults.roll("reset_after_accept", path) is not None:
            state.stats.connections_reset += 1
            conn.dropped = True
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
            raise _Reply(0, None, None)
        rule = state.faults.roll("timeout_after_accept", path)
        if rule is None:
            return
        if str(rule.params.get("reply", "503")) == "-1007":
            status = int(rule.params.get("status", 408))
            raise _Reply(status, {"code": -1007, "msg": _TIMEOUT_1007}, usage)
        raise _Reply(int(rule.params.get("status", 503)), {"code": -1000, "msg": _UNKNOWN}, usage)

    async def _send(self, conn: _Connection, body: dict[str, Any]) -> None:
        if conn.dropped or conn.ws.closed:
            return
        async with conn.send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(orjson.dumps(body).decode())


def _envelope(text: str) -> tuple[Any, Method, Params]:
    """Validate ``{id, method, params}``; an unusable frame answers with ``id: null``."""
    try:
        frame = decode_json(text)
    except ValueError:
        raise _Reply(400, {"code": -1135, "msg": "Invalid JSON request."}, None) from None
    if not isinstance(frame, dict):
        raise _Reply(400, {"code": -1135, "msg": "Invalid JSON request."}, None)
    request_id = frame.get("id")
    if not isinstance(request_id, int | str | None) or isinstance(request_id, bool):
        raise _Reply(400, {"code": -1135, "msg": "Invalid 'id' in JSON request."}, None)
    params = frame.get("params", {})
    if not isinstance(params, dict):
        msg = "Invalid 'params' in JSON request; expected an object."
        raise _Reply(400, {"code": -1135, "msg": msg}, None, request_id)
    method = METHODS.get(str(frame.get("method")))
    if method is None:
        msg = f"Invalid request: unknown method '{frame.get('method')}'."
        raise _Reply(400, {"code": -1102, "msg": msg}, None, request_id)
    return request_id, method, params


def _session(state: SimState, conn: _Connection) -> dict[str, Any]:
    """The session status object of ``session.logon/status/logout``."""
    logon = conn.logon
    return {
        "apiKey": logon.api_key if logon else None,
        "authorizedSince": logon.authorized_since_ms if logon else None,
        "connectedSince": conn.connected_ms,
        "returnRateLimits": conn.return_rate_limits,
        "serverTime": state.now_ms(),
    }


def _limits(state: SimState) -> dict[str, int]:
    config = state.limiter.config
    return {
        "orders_per_10s": config.orders_per_10s,
        "orders_per_minute": config.orders_per_minute,
        "weight_per_minute": config.weight_per_minute,
    }


WSAPI = web.AppKey("sim_wsapi", WsApi)


def add_routes(app: web.Application, state_key: web.AppKey[SimState]) -> None:
    """Serve the WebSocket API at ``/ws-fapi/v1`` (before the venue's catch-all route)."""
    server = WsApi(state_key)
    app[WSAPI] = server
    app.router.add_get(PATH, server.handle)

    async def close(_app: web.Application) -> None:
        await server.shutdown()

    app.on_shutdown.append(close)
