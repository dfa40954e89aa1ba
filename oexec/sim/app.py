"""The simulator as an aiohttp application, and ``SimServer`` to embed it in-process.

Every venue request goes through one dispatcher, in the venue's order: latency and 5xx
faults, route lookup (unknown: the venue's empty 404), parameter merge (GET: query only;
other methods: query and form body, query wins), IP weight limit, authentication, order
limits, the engine call, then after-accept faults. Each response carries the rate-limit
headers and ``X-Sim-Service-Time-Us`` (time inside the simulator, injected latency
excluded) so benchmarks can subtract the venue's own time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from oexec.sim import control, streamroutes, wsapi
from oexec.sim.auth import authenticate
from oexec.sim.config import SimConfig
from oexec.sim.engine import Exchange, SimError
from oexec.sim.ratelimit import RateLimited
from oexec.sim.routes import ENDPOINTS, Call, Endpoint
from oexec.sim.state import SimState

STATE = web.AppKey("sim_state", SimState)
SERVICE_TIME_HEADER = "X-Sim-Service-Time-Us"
_EXCLUDED_NS = web.RequestKey("sim_excluded_ns", int)
TIMER_S = 0.1  # countdownCancelAll fires within this long of its deadline
GTD_EVERY = 10  # GTD expiry is checked every GTD_EVERY timer beats (1 s)
_UNKNOWN_503 = "Unknown error, please check your request or try again later."
_TIMEOUT_1007 = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."  # noqa: E501
_INTERNAL_503 = "Internal error; unable to process your request. Please try again."


class _ConnectionDropped(Exception):
    """reset_after_accept: the request was processed; the connection dies unanswered."""


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def error_response(error: SimError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.to_json(), error.http_status, headers)


@web.middleware
async def _service_time(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Stamp the service time and count responses (venue paths only)."""
    started = time.perf_counter_ns()
    request[_EXCLUDED_NS] = 0
    state = request.app[STATE]
    venue_path = not request.path.startswith("/_sim/")
    try:
        response = await handler(request)
    except _ConnectionDropped:
        state.stats.connections_reset += 1
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError from None
    except web.HTTPException as exc:
        if venue_path:
            state.stats.responses_by_status[str(exc.status)] += 1
        raise
    if venue_path:
        state.stats.responses_by_status[str(response.status)] += 1
    if not response.prepared:
        elapsed = time.perf_counter_ns() - started - request[_EXCLUDED_NS]
        response.headers[SERVICE_TIME_HEADER] = str(max(0, elapsed) // 1000)
    return response


def merged_params(method: str, raw_query: str, raw_body: str) -> dict[str, str]:
    """Venue parameter rules: GET from the query only; else body then query (query wins)."""
    params: dict[str, str] = {}
    if method != "GET":
        for name, value in parse_qsl(raw_body, keep_blank_values=True):
            params.setdefault(name, value)
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(name, value)
    params.update(query)
    return params


async def _venue(request: web.Request) -> web.StreamResponse:
    """The one handler behind every venue path."""
    state = request.app[STATE]
    path = request.path
    state.stats.requests_by_path[path] += 1
    state.stats.requests_by_route[f"{request.method} {path}"] += 1
    latency = state.faults.roll("latency", path)
    if latency is not None:
        began = time.perf_counter_ns()
        await asyncio.sleep(state.faults.latency_s(latency))
        request[_EXCLUDED_NS] += time.perf_counter_ns() - began
    endpoint = ENDPOINTS.get((request.method, path))
    if endpoint is None:
        return web.Response(status=404)
    ip = request.remote or "127.0.0.1"
    broken = state.faults.roll("error_5xx", path)
    if broken is not None:
        usage = state.limiter.usage(ip, None, state.now_ms())
        status = int(broken.params.get("status", 503))
        body = {"code": int(broken.params.get("code", -1001)), "msg": _INTERNAL_503}
        return json_response(body, status, usage.headers())
    raw_query = request.raw_path.partition("?")[2]
    raw_body = (await request.read()).decode("utf-8", "replace") if request.can_read_body else ""
    params = merged_params(request.method, raw_query, raw_body)
    server_ms = state.server_ms(path)
    return await _handle(request, state, endpoint, params, (raw_query, raw_body), server_ms, ip)


async def _handle(
    request: web.Request,
    state: SimState,
    endpoint: Endpoint,
    params: dict[str, str],
    raw: tuple[str, str],
    server_ms: int,
    ip: str,
) -> web.StreamResponse:
    now = state.now_ms()
    usage = state.limiter.usage(ip, None, now)
    try:
        usage = state.limiter.check_ip(ip, endpoint.weight(params), now)
        api_key = request.headers.get("X-MBX-APIKEY")
        account = authenticate(
            state.keys, endpoint.security, api_key, params, raw[0], raw[1], server_ms
        )
        if account is not None and endpoint.orders != (0, 0):
            usage = state.limiter.check_orders(ip, account, *endpoint.orders, usage, now)
        elif account is not None:
            usage = state.limiter.usage(ip, account, now)
        result = endpoint.handler(Call(state, request.path, params, account or "", server_ms))
    except RateLimited as limited:
        headers = limited.usage.headers() | {"Retry-After": str(limited.retry_after_s)}
        return error_response(limited, headers)
    except SimError as error:
        return error_response(error, usage.headers())
    if request.method != "GET":
        lost = _after_accept(state, request.path)
        if lost is not None:
            return lost
    return json_response(result, headers=usage.headers())


def _after_accept(state: SimState, path: str) -> web.Response | None:
    """timeout_after_accept / reset_after_accept: the work is done, the reply is lost."""
    if state.faults.roll("reset_after_accept", path) is not None:
        raise _ConnectionDropped
    rule = state.faults.roll("timeout_after_accept", path)
    if rule is None:
        return None
    if str(rule.params.get("reply", "503")) == "-1007":
        body = {"code": -1007, "msg": _TIMEOUT_1007}
        return json_response(body, int(rule.params.get("status", 408)))
    body = {"code": -1000, "msg": _UNKNOWN_503}
    return json_response(body, int(rule.params.get("status", 503)))


async def _websocket(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.stats.requests_by_path["/ws/{listenKey}"] += 1
    return await state.streams.websocket(request, request.match_info["key"], combined=False)


async def _combined_stream(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.stats.requests_by_path["/stream"] += 1
    key = request.query.get("streams", "").split("/")[0]
    return await state.streams.websocket(request, key, combined=True)


def create_app(config: SimConfig | None = None, state: SimState | None = None) -> web.Application:
    """Build the simulator app (not started). Background tasks run while it serves."""
    app = web.Application(middlewares=[_service_time])
    app[STATE] = state or SimState(config or SimConfig())
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_close_streams)
    control.add_routes(app, STATE)
    wsapi.add_routes(app, STATE)  # /ws-fapi/v1, the WebSocket API
    streamroutes.add_routes(app, STATE)  # /public, /market streams; /private?listenKey=
    app.router.add_get("/ws/{key}", _websocket)
    app.router.add_get("/private/ws/{key}", _websocket)
    app.router.add_get("/stream", _combined_stream)
    app.router.add_route("*", "/{tail:.*}", _venue)
    return app


async def _close_streams(app: web.Application) -> None:
    """Close user-stream WebSockets once the listener is gone (no reconnect can race it):
    the server's shutdown otherwise waits up to a minute for their handlers."""
    await app[STATE].streams.shutdown()


async def _background(app: web.Application) -> AsyncIterator[None]:
    """Price ticks, timers and listen-key housekeeping, stopped before the app goes away."""
    state = app[STATE]
    tasks = [
        asyncio.create_task(state.streams.run_housekeeping()),
        asyncio.create_task(_timers(state)),
    ]
    if state.config.tick_interval_ms > 0:
        tasks.append(asyncio.create_task(_ticker(state)))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await state.streams.shutdown()


async def _timers(state: SimState) -> None:
    """Time-based venue work without a price move: on Binance a countdownCancelAll timer
    fires when it runs out, not at the next trade. Countdowns are checked every
    ``TIMER_S`` (a dictionary scan), GTD expiry every ``GTD_TIMER_S`` (an open-order scan)."""
    beats = 0
    while True:
        await asyncio.sleep(TIMER_S)
        beats += 1
        if beats % GTD_EVERY == 0 or state.exchange.countdown_due():
            state.exchange.tick()


async def _ticker(state: SimState) -> None:
    period = state.config.tick_interval_ms / 1000.0
    while True:
        await asyncio.sleep(period)
        state.exchange.advance()


class SimServer:
    """Run the simulator inside the current event loop (tests, ``oexec demo``).

    ``async with SimServer(config) as sim:`` serves on ``sim.base_url`` until the block ends.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = (config or SimConfig()).with_accounts()
        self.state = SimState(self.config)
        self.app = create_app(state=self.state)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def exchange(self) -> Exchange:
        return self.state.exchange

    @property
    def api_key(self) -> str:
        return self.config.accounts[0].key

    @property
    def api_secret(self) -> str:
        return self.config.accounts[0].secret

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    @property
    def ws_api_url(self) -> str:
        """The WebSocket API (``wss://ws-fapi.binance.com/ws-fapi/v1`` on the venue)."""
        return f"ws://{self.config.host}:{self.port}/ws-fapi/v1"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
