"""The simulator's own JSON control API under ``/_sim/`` (documented in docs/sim.md).

Not part of the venue: no auth, no rate limits, not counted in ``/_sim/stats``. It moves
prices, sets and clears faults, lifts or changes rate limits, resets the venue and
exposes ground truth (every order ever accepted) and counters, so a test can prove that
a client never lost or duplicated an order and never tripped a limit. Bad input: 400
``{"error": "..."}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import cattrs
import orjson
from aiohttp import web

from oexec.sim.config import RateLimitConfig, SimConfigError, structure_fault
from oexec.sim.engine import SimError
from oexec.sim.state import SimState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_limits_converter = cattrs.Converter(forbid_extra_keys=True)


class _BadRequest(Exception):
    pass


def _ok(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _bad(message: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": message}), status=400, content_type="application/json"
    )


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _BadRequest("body must be a JSON object") from None
    if not isinstance(data, dict):
        raise _BadRequest("body must be a JSON object")
    return data


def _decimal(value: object, name: str) -> Decimal:
    if isinstance(value, float | bool) or not isinstance(value, str | int):
        raise _BadRequest(f"{name} must be a decimal string")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _BadRequest(f"{name} is not a decimal: {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise _BadRequest(f"{name} must be a positive decimal")
    return number


async def set_price(state: SimState, request: web.Request) -> web.Response:
    """POST /_sim/price {symbol, price, mark?}: move last (and mark) price, then match."""
    body = await _body(request)
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise _BadRequest("symbol is required")
    price = _decimal(body.get("price"), "price")
    mark = _decimal(body["mark"], "mark") if "mark" in body else None
    state.exchange.set_price(symbol, price, mark=mark)
    return _ok(state.exchange.ticker_price(symbol))


async def advance(state: SimState, request: web.Request) -> web.Response:
    """POST /_sim/advance {steps?}: run the seeded price path ``steps`` times (default 1)."""
    steps = (await _body(request)).get("steps", 1)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 100_000:
        raise _BadRequest("steps must be an integer in 1..100000")
    for _ in range(steps):
        state.exchange.advance()
    return _ok(state.exchange.ticker_price(None))


async def settle_funding(state: SimState, request: web.Request) -> web.Response:
    """POST /_sim/funding: settle funding now (the schedule is unchanged); its rate rows."""
    return _ok(state.exchange.settle_funding())


async def add_fault(state: SimState, request: web.Request) -> web.Response:
    """POST /_sim/faults {kind, probability, count?, path?, params?}."""
    try:
        state.faults.add(structure_fault(await _body(request)))
    except SimConfigError as exc:
        raise _BadRequest(str(exc)) from None
    return _ok({"faults": state.faults.active()})


async def list_faults(state: SimState, request: web.Request) -> web.Response:
    return _ok({"faults": state.faults.active(), "fired": state.faults.fired})


async def clear_faults(state: SimState, request: web.Request) -> web.Response:
    """DELETE /_sim/faults: no fault fires from now on."""
    state.faults.clear()
    return _ok({"faults": []})


async def reset(state: SimState, request: web.Request) -> web.Response:
    """POST /_sim/reset: engine, faults, limits, stats and listen keys back to the start."""
    state.reset()
    return _ok({})


async def orders(state: SimState, request: web.Request) -> web.Response:
    """GET /_sim/orders[?symbol=]: every order the venue ever accepted, with fills."""
    truth = state.exchange.ground_truth()
    symbol = request.query.get("symbol")
    if symbol:
        truth = [o for o in truth if o.get("symbol") == symbol]
    return _ok(truth)


async def stats(state: SimState, request: web.Request) -> web.Response:
    """GET /_sim/stats: response/request counters, orders accepted/rejected, faults fired."""
    engine = state.exchange.stats()
    return _ok(
        {
            "responses_by_status": dict(state.stats.responses_by_status),
            "requests_by_path": dict(state.stats.requests_by_path),
            "requests_by_route": dict(state.stats.requests_by_route),
            "orders_accepted": engine.get("orders_accepted", 0),
            "orders_rejected": engine.get("orders_rejected", 0),
            "connections_reset": state.stats.connections_reset,
            "faults_fired": dict(state.faults.fired),
            "stream_connections": state.streams.connection_count(),
            "market_stream_connections": state.market_streams.connection_count(),
            "engine": engine,
        }
    )


async def set_rate_limits(state: SimState, request: web.Request) -> web.Response:
    """POST /_sim/rate_limits {enabled?, weight_per_minute?, ...}: change or lift limits."""
    changes = await _body(request)
    current = attrs.asdict(state.limiter.config)
    try:
        config = _limits_converter.structure(current | changes, RateLimitConfig)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        raise _BadRequest(f"invalid rate limits: {exc}") from None
    state.limiter.reconfigure(config)
    return _ok(attrs.asdict(config))


async def get_rate_limits(state: SimState, request: web.Request) -> web.Response:
    return _ok(attrs.asdict(state.limiter.config))


async def clear_rate_limit_counters(state: SimState, request: web.Request) -> web.Response:
    """DELETE /_sim/rate_limits: forget counters and bans, keep the limits."""
    state.limiter.reset()
    return _ok(attrs.asdict(state.limiter.config))


ROUTES: tuple[tuple[str, str, Callable[[SimState, web.Request], Awaitable[web.Response]]], ...] = (
    ("POST", "/_sim/price", set_price),
    ("POST", "/_sim/advance", advance),
    ("POST", "/_sim/funding", settle_funding),
    ("POST", "/_sim/faults", add_fault),
    ("GET", "/_sim/faults", list_faults),
    ("DELETE", "/_sim/faults", clear_faults),
    ("POST", "/_sim/reset", reset),
    ("GET", "/_sim/orders", orders),
    ("GET", "/_sim/stats", stats),
    ("POST", "/_sim/rate_limits", set_rate_limits),
    ("GET", "/_sim/rate_limits", get_rate_limits),
    ("DELETE", "/_sim/rate_limits", clear_rate_limit_counters),
)


def add_routes(app: web.Application, key: web.AppKey[SimState]) -> None:
    """Register every control route on ``app``; state is read through ``key``."""
    for method, path, func in ROUTES:
        app.router.add_route(method, path, _wrap(func, key))


def _wrap(
    func: Callable[[SimState, web.Request], Awaitable[web.Response]], key: web.AppKey[SimState]
) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await func(request.app[key], request)
        except _BadRequest as exc:
            return _bad(str(exc))
        except SimError as exc:
            return _bad(f"{exc.code}: {exc.msg}")

    return handler
