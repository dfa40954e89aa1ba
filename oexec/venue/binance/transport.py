"""The one HTTP path to the venue: shared aiohttp session, signing, rate-limit gate,
server-time offset, error mapping and the (narrow) retry policy.

Why this shape: every request goes through ``call``, so the gate is always charged,
the headers always observed and errors always typed the same way. Failures are
classified by *when* they happened: before the request left (connection refused,
connect timeout) means definitely not executed; after it may have been written
(read timeout, reset, 5xx, -1007) means unknown. Only endpoints whose retry policy
allows it (reads and cancels) are retried, with exponential backoff and full jitter;
submits and modifies surface ``VenueUnknownOutcomeError`` for the resolver.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
import orjson
from yarl import URL

from oexec.config import VenueConfig
from oexec.errors import (
    OexecError,
    VenueClockSkewError,
    VenueError,
    VenueRateLimitError,
    VenueUnavailableError,
    VenueUnknownOutcomeError,
)
from oexec.service.ports import RateWindow, RequestGate
from oexec.tasks import cancel_and_wait
from oexec.venue.binance.endpoints import Endpoint, Ep, Retry, Security
from oexec.venue.binance.errors import map_error
from oexec.venue.binance.policy import report_usage
from oexec.venue.binance.signing import (
    Signer,
    append_signature,
    encode_params,
    make_signer,
    signed_string,
)

log = logging.getLogger(__name__)

Params = Sequence[tuple[str, str]]
RETRYABLE = (VenueUnknownOutcomeError, VenueUnavailableError)
_HEADER_WEIGHT = "X-MBX-USED-WEIGHT-1M"
_HEADER_O10S = "X-MBX-ORDER-COUNT-10S"
_HEADER_O1M = "X-MBX-ORDER-COUNT-1M"


class VenueObserver(Protocol):
    """Where each round trip is counted (oexec/ops/metrics.py's Metrics is one)."""

    def venue_request(self, endpoint: str, status: int | str, seconds: float) -> None:
        """One REST round trip; ``status`` is the HTTP status, ``timeout`` or ``error``."""

    def venue_error(self, error_code: int | str) -> None:
        """One error answer: the venue's own code, else the HTTP status."""

    def stage(self, stage: str, seconds: float) -> None:
        """Time of a submit's ``limiter`` (waiting for rate-limit tokens) and ``sign``
        (parameters, signature, URL) stages, for the pipeline's stage breakdown."""


class NullObserver:
    def venue_request(self, endpoint: str, status: int | str, seconds: float) -> None:
        return None

    def venue_error(self, error_code: int | str) -> None:
        return None

    def stage(self, stage: str, seconds: float) -> None:
        return None


class NullGate:
    """A gate that never waits: for tools and tests that run without a limiter."""

    async def acquire(self, *, weight: int, orders: int, deadline_s: float | None) -> None:
        return None

    def observe(
        self,
        used: Mapping[RateWindow, int],
        window_age_s: Mapping[RateWindow, float] | None = None,
    ) -> None:
        return None

    def pause(self, retry_after_s: float) -> None:
        return None


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def backoff_s(attempt: int, base_s: float, max_s: float, rng: Callable[[], float]) -> float:
    """Full-jitter exponential backoff for retry ``attempt`` (1-based)."""
    return rng() * min(max_s, base_s * 2.0 ** (attempt - 1))


def build_request(spec: Endpoint, params: Params, signer: Signer | None) -> tuple[str, str]:
    """``(query, body)`` strings exactly as sent; SIGNED requests get the signature last."""
    encoded = encode_params(params)
    if spec.security is Security.SIGNED:
        assert signer is not None
        query, body = ("", encoded) if spec.body_params else (encoded, "")
        signature = signer.sign(signed_string(query, body))
        if spec.body_params:
            return "", append_signature(body, signature)
        return append_signature(query, signature), ""
    return ("", encoded) if spec.body_params else (encoded, "")


def decode(raw: bytes) -> Any:
    """JSON body, or the text itself when it is not JSON (proxies answer HTML)."""
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw[:300].decode("utf-8", "replace")


class BinanceTransport:
    """Owns the aiohttp session and the server-time offset; see the module docstring."""

    def __init__(
        self,
        config: VenueConfig,
        *,
        gate: RequestGate | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: VenueObserver | None = None,
    ) -> None:
        self.config = config
        self.gate: RequestGate = gate if gate is not None else NullGate()
        self.observer: VenueObserver = observer if observer is not None else NullObserver()
        self._clock = clock
        self._rng = rng
        self._sleep = sleep
        self._signer = make_signer(config)
        self._base = config.base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self.offset_ms = 0
        self.last_sync_ms: int | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise VenueUnavailableError("venue transport not started")
        return self._session

    async def start(self) -> None:
        """Open the session, sync the clock once and keep it synced in the background."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.config.pool_size, keepalive_timeout=30.0)
            timeout = aiohttp.ClientTimeout(
                total=self.config.timeout_s, connect=self.config.connect_timeout_s
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
        await self.sync_time()
        if self._sync_task is None and self.config.time_sync_interval_s > 0:
            self._sync_task = asyncio.create_task(self._sync_loop(), name="binance-time-sync")

    async def close(self) -> None:
        if self._sync_task is not None:
            await cancel_and_wait([self._sync_task])
            self._sync_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def now_ms(self) -> int:
        """Venue time estimate: local clock plus the measured offset."""
        return int(self._clock() * 1000) + self.offset_ms

    async def sync_time(self) -> None:
        """Measure the server-time offset against the midpoint of one round trip."""
        sent = self._clock()
        payload = await self.call(Ep.TIME, (), resync_on_skew=False)
        received = self._clock()
        server = payload.get("serverTime") if isinstance(payload, dict) else None
        if not isinstance(server, int):
            raise VenueUnavailableError("venue /time answer has no serverTime")
        self.offset_ms = server - int((sent + received) * 500)
        self.last_sync_ms = server

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.time_sync_interval_s)
            await self._resync_quietly()

    async def _resync_quietly(self) -> None:
        try:
            await self.sync_time()
        except OexecError as exc:
            log.warning("venue time sync failed: %r", exc)

    async def call(
        self,
        ep: Ep,
        params: Params,
        *,
        has_symbol: bool = True,
        deadline_s: float | None = None,
        resync_on_skew: bool = True,
    ) -> Any:
        """One logical request with the endpoint's retry policy; returns decoded JSON.

        Raises VenueError subclasses (and ThrottleError from the gate, unsent).
        """
        spec = ep.spec
        retries = self.config.read_retries if spec.retry is not Retry.NEVER else 0
        attempt = 0
        skew_retried = not resync_on_skew or spec.retry is Retry.NEVER
        uncertain = False
        while True:
            try:
                return await self._once(spec, params, has_symbol, deadline_s)
            except VenueClockSkewError as exc:
                if resync_on_skew:
                    await self._resync_quietly()
                if skew_retried:
                    raise _flag(exc, uncertain) from None
                skew_retried = True
            except RETRYABLE as exc:
                earlier_uncertain = uncertain
                uncertain = uncertain or isinstance(exc, VenueUnknownOutcomeError)
                attempt += 1
                if attempt > retries:
                    raise _flag(exc, earlier_uncertain) from None
                delay = backoff_s(
                    attempt, self.config.retry_base_s, self.config.retry_max_s, self._rng
                )
                log.info("retrying %s %s in %.3fs after %r", spec.method, spec.path, delay, exc)
                await self._sleep(delay)
            except VenueError as exc:
                raise _flag(exc, uncertain) from None

    async def _once(
        self, spec: Endpoint, params: Params, has_symbol: bool, deadline_s: float | None
    ) -> Any:
        deadline = self.config.gate_deadline_s if deadline_s is None else deadline_s
        gate_started = time.perf_counter()
        await self.gate.acquire(
            weight=spec.cost(has_symbol), orders=spec.orders, deadline_s=deadline
        )
        sign_started = time.perf_counter()
        signed = list(params)
        if spec.security is Security.SIGNED:
            signed += [
                ("recvWindow", str(self.config.recv_window_ms)),
                ("timestamp", str(self.now_ms())),
            ]
        query, body = build_request(spec, signed, self._signer)
        url = URL(
            f"{self._base}{spec.path}?{query}" if query else f"{self._base}{spec.path}",
            encoded=True,
        )
        headers = {} if spec.security is Security.NONE else {"X-MBX-APIKEY": self.config.api_key}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        if spec.orders:  # submits: the order path's stages (reads are not on it)
            self.observer.stage("limiter", sign_started - gate_started)
            self.observer.stage("sign", started - sign_started)
        try:
            async with self.session.request(
                spec.method, url, data=body.encode("ascii") if body else None, headers=headers
            ) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            self._count(spec, exc, started)
            raise VenueUnavailableError(
                f"venue unreachable: {type(exc).__name__}", details={"path": spec.path}
            ) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._count(spec, exc, started)
            raise VenueUnknownOutcomeError(
                f"no answer from venue after sending: {type(exc).__name__}",
                details={"path": spec.path},
            ) from None
        self.observer.venue_request(spec.path, status, time.perf_counter() - started)
        self._observe(resp_headers)
        payload = decode(raw)
        if status >= 400:
            error = map_error(status, payload, resp_headers, now_ms=self.now_ms(), path=spec.path)
            self.observer.venue_error(status if error.venue_code is None else error.venue_code)
            if isinstance(error, VenueRateLimitError):
                self.gate.pause(error.retry_after_s)
            raise error
        if isinstance(payload, str):
            raise VenueUnknownOutcomeError(
                "venue answered 2xx with a non-JSON body",
                http_status=status,
                details={"path": spec.path},
            )
        return payload

    def _count(self, spec: Endpoint, exc: BaseException, started: float) -> None:
        """A round trip that got no answer: ``timeout`` or ``error`` instead of a status."""
        status = "timeout" if isinstance(exc, TimeoutError) else "error"
        self.observer.venue_request(spec.path, status, time.perf_counter() - started)

    def _observe(self, headers: Mapping[str, str]) -> None:
        weight = header_int(headers, _HEADER_WEIGHT)
        o10s = header_int(headers, _HEADER_O10S)
        o1m = header_int(headers, _HEADER_O1M)
        report_usage(self.gate, weight, o10s, o1m, self.now_ms())


def _flag(exc: VenueError, uncertain: bool) -> VenueError:
    """Mark an error that followed an attempt whose outcome was unknown."""
    if uncertain:
        exc.details.setdefault("after_unknown_attempt", True)
    return exc
