"""Rows that talk to the simulator without oexec: ccxt, python-binance, the HTTP floor.

Each is what a strategy would write to place the same orders itself: the library's
async client, created once, one call per order, rate limiting off. Client-side setup
(loading markets, opening the session) happens in the warmup, outside the measurement.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp

from oexec.bench.hist import record_us
from oexec.bench.job import Call, Job, Progress, Result, run_closed_loop
from oexec.bench.mix import OrderSpec, ccxt_args, order_mix, venue_params

SERVICE_TIME_HEADER = "X-Sim-Service-Time-Us"


def _client_ids() -> itertools.count[int]:
    """Client order ids unique across runs against one simulator."""
    return itertools.count(int(time.time() * 1000) % 10**9 * 1000)


def _outcome(exc: BaseException) -> str:
    return type(exc).__name__


_CCXT_OPTIONS = {"fetchMarkets": ["linear"], "fetchCurrencies": False}


def _ccxt_config(job: Job) -> dict[str, Any]:
    return {
        "apiKey": job.api_key,
        "secret": job.api_secret,
        "enableRateLimit": False,
        "options": dict(_CCXT_OPTIONS),
    }


@contextlib.asynccontextmanager
async def _at_the_simulator(exchange: Any, job: Job) -> AsyncIterator[Any]:
    """``exchange``'s REST URLs pointed at the simulator, markets loaded (setup a strategy
    does once, outside any measurement), closed at the end."""
    for name, url in list(exchange.urls["api"].items()):
        if isinstance(url, str):
            exchange.urls["api"][name] = re.sub(r"^https://[^/]+", job.sim_url, url)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


@contextlib.asynccontextmanager
async def open_ccxt(job: Job) -> AsyncIterator[Any]:
    """ccxt's async ``binanceusdm`` pointed at the simulator, rate limiting off."""
    import ccxt.async_support as ccxt

    async with _at_the_simulator(ccxt.binanceusdm(_ccxt_config(job)), job) as exchange:
        yield exchange


@contextlib.asynccontextmanager
async def open_ccxt_ws(job: Job) -> AsyncIterator[Any]:
    """ccxt.pro's ``binanceusdm`` with its WebSocket API URL at the simulator; markets
    loaded over REST (setup), the connection opened by the warmup's first order."""
    import ccxt.pro as ccxtpro

    exchange = ccxtpro.binanceusdm(_ccxt_config(job))
    exchange.urls["api"]["ws"]["ws-api"]["linear"] = f"{job.ws_url}/ws-fapi/v1"
    async with _at_the_simulator(exchange, job) as ready:
        yield ready


def _caller(create: Callable[..., Awaitable[Any]], job: Job) -> Call:
    """``call(i)``: ``create`` of the mix's i-th order; the outcome label."""
    mix = order_mix(Decimal(job.mark))

    async def call(i: int) -> str:
        try:
            await create(*ccxt_args(mix[i % len(mix)]))
        except Exception as exc:
            return _outcome(exc)
        return "ok"

    return call


def ccxt_caller(exchange: Any, job: Job) -> Call:
    """ccxt's ``create_order`` of the mix's i-th order (over REST)."""
    return _caller(exchange.create_order, job)


def ccxt_ws_caller(exchange: Any, job: Job) -> Call:
    """ccxt.pro's ``create_order_ws``: the same orders over the WebSocket API."""
    return _caller(exchange.create_order_ws, job)


async def ccxt_row(job: Job, progress: Progress) -> Result:
    """ccxt ``binanceusdm.create_order`` (async_support), URLs pointed at the simulator."""
    async with open_ccxt(job) as exchange:
        return await run_closed_loop(ccxt_caller(exchange, job), job, progress)


async def ccxt_ws_row(job: Job, progress: Progress) -> Result:
    """ccxt.pro ``binanceusdm.create_order_ws``: the same orders over the WebSocket API."""
    async with open_ccxt_ws(job) as exchange:
        return await run_closed_loop(ccxt_ws_caller(exchange, job), job, progress)


async def python_binance_row(job: Job, progress: Progress) -> Result:
    """python-binance ``AsyncClient.futures_create_order``, futures URL at the simulator."""
    # by module: binance-futures-connector (test extra) ships an empty binance/__init__.py
    # that may replace python-binance's, so `from binance import AsyncClient` can fail
    from binance.async_client import AsyncClient

    client = AsyncClient(job.api_key, job.api_secret)
    client.FUTURES_URL = f"{job.sim_url}/fapi"
    mix = order_mix(Decimal(job.mark))
    ids = _client_ids()
    try:

        async def call(i: int) -> str:
            spec = mix[i % len(mix)]
            params = dict(venue_params(spec, f"pb-{next(ids)}"))
            try:
                await client.futures_create_order(**params)
            except Exception as exc:
                return _outcome(exc)
            return "ok"

        return await run_closed_loop(call, job, progress)
    finally:
        await client.close_connection()


class SignedPoster:
    """The least a client can do: one session, a pre-keyed HMAC, a hand-built body."""

    def __init__(self, session: aiohttp.ClientSession, job: Job) -> None:
        self.session = session
        self.url = f"{job.sim_url}/fapi/v1/order"
        self.headers = {
            "X-MBX-APIKEY": job.api_key,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        self.keyed = hmac.new(job.api_secret.encode(), digestmod=hashlib.sha256)

    def body(self, spec: OrderSpec, client_order_id: str) -> bytes:
        params = venue_params(spec, client_order_id)
        params.append(("timestamp", str(int(time.time() * 1000))))
        text = "&".join(f"{k}={v}" for k, v in params).encode("ascii")
        mac = self.keyed.copy()
        mac.update(text)
        return text + b"&signature=" + mac.hexdigest().encode("ascii")

    async def post(self, body: bytes) -> tuple[int, int | None]:
        """(HTTP status, the simulator's service time in µs when it said)."""
        async with self.session.post(self.url, data=body, headers=self.headers) as resp:
            await resp.read()
            service = resp.headers.get(SERVICE_TIME_HEADER)
            return resp.status, int(service) if service is not None else None


async def http_floor_row(job: Job, progress: Progress) -> Result:
    """Signed aiohttp POSTs of the same orders; also records the simulator's service time."""
    mix = order_mix(Decimal(job.mark))
    ids = _client_ids()
    result = Result()
    async with aiohttp.ClientSession() as session:
        poster = SignedPoster(session, job)

        async def call(i: int) -> str:
            body = poster.body(mix[i % len(mix)], f"raw-{next(ids)}")
            try:
                status, service_us = await poster.post(body)
            except aiohttp.ClientError as exc:
                return _outcome(exc)
            if service_us is not None and result.measuring:
                record_us(result.histogram("sim_service"), service_us / 1_000_000)
            return "ok" if status == 200 else f"http_{status}"

        return await run_closed_loop(call, job, progress, result)
