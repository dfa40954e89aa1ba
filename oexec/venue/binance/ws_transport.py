"""Order entry over the venue's WebSocket API (``ws-fapi``): one warm connection.

Why: a submit over a kept-open WebSocket skips HTTP request framing on both sides
(``[venue] order_transport = "ws"``). Submits, modifies and cancels go here while the
connection is up; everything else, and these too whenever it is not, goes over REST.

Rules, each for a reason:

- **One budget.** Each request acquires the same gate as REST with its REST twin's
  weight and order count, and the reply's ``rateLimits`` correct the gate the way REST
  headers do (the venue shares its limiters between the two).
- **Never resent.** A request whose frame left but whose reply did not arrive (the
  connection dropped, or no reply in ``timeout_s``) is ``VenueUnknownOutcomeError``: the
  resolver finds the order by client order id. A cancel in that state is idempotent and
  is retried over REST. A request that could not be written at all goes over REST.
- **Fall back, come back.** While the connection is down (or rotating) requests raise
  ``WsApiUnavailable`` and the adapter uses REST; a background task reconnects with
  full-jitter backoff, and rotates the connection before the venue's 24 h cut (new
  requests go to REST while the old connection's replies drain).
- **Authentication.** With an Ed25519 key the connection logs on once
  (``session.logon``) and requests carry no signature; HMAC keys sign every request
  (the venue only takes Ed25519 for a logon). Signing payload: params sorted by name,
  ``key=value`` joined by ``&`` (addendum §2.5).
- **Liveness.** aiohttp answers the server's pings; our own heartbeat pings detect a
  dead peer sooner than the venue's 10 minute rule.

Slightly over 400 lines: the connection's life, its requests and its health report share
one state (pending replies, up/down, reconnects); the pure frame helpers are ws_frames.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote

import aiohttp
import orjson

from oexec.config import VenueConfig
from oexec.errors import (
    OexecError,
    VenueClockSkewError,
    VenueError,
    VenueRateLimitError,
    VenueUnknownOutcomeError,
)
from oexec.service.ports import RequestGate
from oexec.tasks import cancel_and_wait
from oexec.venue.binance.endpoints import Ep, Retry
from oexec.venue.binance.errors import map_error
from oexec.venue.binance.policy import report_usage
from oexec.venue.binance.signing import Signer, make_signer
from oexec.venue.binance.transport import BinanceTransport, VenueObserver, backoff_s
from oexec.venue.binance.ws_frames import (
    rate_limit_usage,
    retry_after_headers,
    signing_payload,
    ws_api_url_for,
)

log = logging.getLogger(__name__)

Params = Sequence[tuple[str, str]]
#: REST endpoint -> its WebSocket API twin; only these move to the connection.
WS_METHODS: dict[Ep, str] = {
    Ep.NEW_ORDER: "order.place",
    Ep.MODIFY_ORDER: "order.modify",
    Ep.CANCEL_ORDER: "order.cancel",
}
#: /health reports the connection unhealthy once it has been down this long (REST
#: carries the orders meanwhile, slower; a reconnect normally takes well under a second).
HEALTH_GRACE_S = 30.0
_CLOSED_TYPES = (
    aiohttp.WSMsgType.CLOSE,
    aiohttp.WSMsgType.CLOSED,
    aiohttp.WSMsgType.CLOSING,
    aiohttp.WSMsgType.ERROR,
)


class WsApiUnavailable(Exception):
    """The connection is not up, or the frame could not be written: use REST instead."""


class BinanceWsApi:
    """The warm WebSocket API connection; see the module docstring."""

    def __init__(
        self,
        config: VenueConfig,
        *,
        gate: RequestGate,
        observer: VenueObserver,
        now_ms: Callable[[], int],
        signer: Signer | None = None,
        resync: Callable[[], Awaitable[None]] | None = None,
        rng: Callable[[], float] = random.random,
        reconnect_base_s: float = 0.2,
    ) -> None:
        self.config = config
        self.url = config.ws_api_url or ws_api_url_for(config.base_url)
        self.gate = gate
        self.observer = observer
        self._now_ms = now_ms
        self._signer = signer if signer is not None else make_signer(config)
        self._logon_wanted = config.key_type == "ed25519"
        self._resync = resync  # the venue clock's re-sync, after a -1021
        self._resyncing: asyncio.Task[None] | None = None
        self._rng = rng
        self._reconnect_base_s = reconnect_base_s
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self._closing = False
        self._ever_connected = False
        self.state = "idle"  # idle | connecting | connected | rotating | disconnected | closed
        self.logged_on = False
        self.reconnects = 0
        self.fallbacks = 0  # requests sent over REST because the connection was not up
        self.down_since: float | None = None  # monotonic time it stopped being connected

    @classmethod
    def for_transport(cls, transport: BinanceTransport) -> BinanceWsApi:
        """Share the REST transport's gate, observer and venue clock."""
        return cls(
            transport.config,
            gate=transport.gate,
            observer=transport.observer,
            now_ms=transport.now_ms,
            resync=transport.sync_time,
        )

    @property
    def ready(self) -> bool:
        return self.state == "connected" and self._ws is not None and not self._ws.closed

    async def start(self, session: aiohttp.ClientSession, wait_s: float) -> None:
        """Start connecting; wait up to ``wait_s`` for the first connection (then REST)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(session), name="binance-ws-api")
        try:
            await asyncio.wait_for(self._up.wait(), wait_s)
        except TimeoutError:
            log.warning("WebSocket API not up after %.1fs; orders go over REST meanwhile", wait_s)

    async def health_check(self) -> None:
        """A /health check: fails once the connection has been down ``HEALTH_GRACE_S``."""
        if self.ready or self.down_since is None:
            return
        down_s = time.monotonic() - self.down_since
        if down_s > HEALTH_GRACE_S:
            raise RuntimeError(
                f"WebSocket API {self.state} for {down_s:.0f}s ({self.reconnects} reconnects);"
                " orders go over REST"
            )

    def describe(self) -> dict[str, object]:
        """Transport state for the dashboard."""
        return {
            "order_transport": "ws" if self.ready else "rest",
            "ws_api_state": self.state,
            "ws_api_logged_on": self.logged_on,
            "ws_api_reconnects": self.reconnects,
            "ws_api_fallbacks": self.fallbacks,
        }

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        self._set_state("closed")

    # --- requests ------------------------------------------------------------------------
    async def call_or_rest(
        self, transport: BinanceTransport, ep: Ep, params: Params, *, deadline_s: float | None
    ) -> Any:
        """Over the connection when it is up, else (or if the frame cannot go) over REST.

        A cancel whose WebSocket outcome is unknown is repeated over REST (idempotent);
        a submit's unknown outcome is raised for the resolver.
        """
        if ep in WS_METHODS:
            try:
                return await self.call(ep, params, deadline_s=deadline_s)
            except WsApiUnavailable:
                self.fallbacks += 1
            except VenueUnknownOutcomeError:
                if ep.spec.retry is Retry.NEVER:
                    raise
                try:
                    return await transport.call(ep, params, deadline_s=deadline_s)
                except VenueError as exc:
                    exc.details.setdefault("after_unknown_attempt", True)
                    raise
        return await transport.call(ep, params, deadline_s=deadline_s)

    async def call(self, ep: Ep, params: Params, *, deadline_s: float | None = None) -> Any:
        """One request; the decoded ``result``, or the typed venue error."""
        if not self.ready:
            raise WsApiUnavailable(self.state)
        spec, method = ep.spec, WS_METHODS[ep]
        deadline = self.config.gate_deadline_s if deadline_s is None else deadline_s
        gate_started = time.perf_counter()
        await self.gate.acquire(weight=spec.cost(True), orders=spec.orders, deadline_s=deadline)
        ws = self._ws
        if not self.ready or ws is None:
            raise WsApiUnavailable(self.state)
        sign_started = time.perf_counter()
        request_id = next(self._ids)
        frame = orjson.dumps({"id": request_id, "method": method, "params": self._params(params)})
        started = time.perf_counter()
        if spec.orders:
            self.observer.stage("limiter", sign_started - gate_started)
            self.observer.stage("sign", started - sign_started)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send_str(frame.decode())
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            self._pending.pop(request_id, None)
            raise WsApiUnavailable(f"send failed: {type(exc).__name__}") from None
        if self._ws is not ws:  # it went down while the frame was written: maybe sent
            self._pending.pop(request_id, None)
            raise VenueUnknownOutcomeError(
                "WebSocket API connection lost while sending", details={"method": method}
            )
        try:
            reply = await asyncio.wait_for(future, self.config.timeout_s)
        except TimeoutError:
            self.observer.venue_request(f"ws:{method}", "timeout", time.perf_counter() - started)
            raise VenueUnknownOutcomeError(
                "no answer over the WebSocket API", details={"method": method}
            ) from None
        finally:
            self._pending.pop(request_id, None)
        return self._result(method, reply, started)

    def _params(self, params: Params) -> dict[str, str | int]:
        values: dict[str, str | int] = dict(params)
        values["recvWindow"] = self.config.recv_window_ms
        values["timestamp"] = self._now_ms()
        if not self.logged_on:
            values["apiKey"] = self.config.api_key
            text = {k: str(v) for k, v in values.items()}
            values["signature"] = unquote(self._signer.sign(signing_payload(text)))
        return values

    def _result(self, method: str, reply: dict[str, Any], started: float) -> Any:
        status = reply.get("status")
        status = status if isinstance(status, int) else 0
        self.observer.venue_request(f"ws:{method}", status, time.perf_counter() - started)
        report_usage(self.gate, *rate_limit_usage(reply.get("rateLimits")), self._now_ms())
        if status == 200 and "result" in reply:
            return reply["result"]
        raise self._error(method, status, reply.get("error"))

    def _error(self, method: str, status: int, error: Any) -> VenueError:
        headers = retry_after_headers(error, self._now_ms())
        if status < 400:  # a 200 without a result: we cannot tell what happened
            return VenueUnknownOutcomeError(
                "unreadable WebSocket API reply", details={"method": method}
            )
        mapped = map_error(status, error, headers, now_ms=self._now_ms(), path=f"ws:{method}")
        self.observer.venue_error(status if mapped.venue_code is None else mapped.venue_code)
        if isinstance(mapped, VenueRateLimitError):
            self.gate.pause(mapped.retry_after_s)
        if isinstance(mapped, VenueClockSkewError):
            self._resync_soon()
        return mapped

    def _resync_soon(self) -> None:
        """-1021: re-measure the venue clock (in the background; the request is not
        repeated, a submit never is), as the REST transport does."""
        if self._resync is None or (self._resyncing is not None and not self._resyncing.done()):
            return
        self._resyncing = asyncio.create_task(self._resync_quietly(self._resync))

    @staticmethod
    async def _resync_quietly(resync: Callable[[], Awaitable[None]]) -> None:
        try:
            await resync()
        except OexecError as exc:
            log.warning("venue time sync after -1021 failed: %r", exc)

    # --- connection ------------------------------------------------------------------------
    async def _run(self, session: aiohttp.ClientSession) -> None:
        failures = 0
        while not self._closing:
            outcome = await self._connect_once(session)
            if outcome == "rotate":
                failures = 0
                continue
            self._set_state("disconnected")
            failures = 1 if outcome == "closed" else failures + 1
            cap = self.config.ws_api_reconnect_max_s
            await asyncio.sleep(backoff_s(failures, self._reconnect_base_s, cap, self._jitter))

    async def _connect_once(self, session: aiohttp.ClientSession) -> str:
        """One connection's life; returns why it ended: rotate, closed, never_connected."""
        self._set_state("connecting")
        connected = False
        try:
            async with session.ws_connect(
                self.url,
                heartbeat=self.config.ws_api_heartbeat_s,
                timeout=aiohttp.ClientWSTimeout(ws_close=self.config.connect_timeout_s),
            ) as ws:
                if self._logon_wanted:
                    await self._try_logon(ws)
                connected = True
                if self._ever_connected:
                    self.reconnects += 1
                self._ever_connected = True
                self._ws = ws
                self._set_state("connected")
                self._up.set()
                return await self._pump(ws)
        except (VenueError, aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            log.warning("WebSocket API connection failed: %r", exc)
        finally:
            self._ws = None
            self.logged_on = False
            self._fail_pending()
        return "closed" if connected else "never_connected"

    async def _try_logon(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """A refused logon is not fatal: Ed25519 requests can each carry a signature."""
        try:
            await self._logon(ws)
        except VenueError as exc:
            log.warning("session.logon refused (%r); signing each request instead", exc)

    async def _logon(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """``session.logon`` with the Ed25519 key; requests then go unsigned."""
        params: dict[str, str | int] = {"apiKey": self.config.api_key}
        params["timestamp"] = self._now_ms()
        text = {k: str(v) for k, v in params.items()}
        params["signature"] = unquote(self._signer.sign(signing_payload(text)))
        frame = {"id": 0, "method": "session.logon", "params": params}
        await ws.send_str(orjson.dumps(frame).decode())
        message = await ws.receive(timeout=self.config.timeout_s)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError("connection closed during session.logon")
        reply = orjson.loads(message.data)
        if reply.get("status") != 200:
            raise self._error("session.logon", int(reply.get("status") or 0), reply.get("error"))
        self.logged_on = True

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Route replies to their requests until the connection ends or is due to rotate."""
        deadline = time.monotonic() + self.config.ws_api_rotate_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return await self._drain(ws)
            try:
                message = await ws.receive(timeout=remaining)
            except TimeoutError:
                continue
            if message.type is aiohttp.WSMsgType.TEXT:
                self._on_reply(message.data)
            elif message.type in _CLOSED_TYPES:
                return "closed"

    async def _drain(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Rotation: new requests go to REST; the in-flight ones get their replies first."""
        self._set_state("rotating")
        until = time.monotonic() + self.config.timeout_s
        while self._pending and time.monotonic() < until:
            try:
                message = await ws.receive(timeout=max(0.0, until - time.monotonic()))
            except TimeoutError:
                break
            if message.type is aiohttp.WSMsgType.TEXT:
                self._on_reply(message.data)
            elif message.type in _CLOSED_TYPES:
                break
        return "rotate"

    def _on_reply(self, data: str) -> None:
        try:
            reply = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.error("WebSocket API sent non-JSON text")
            return
        if not isinstance(reply, dict):
            return
        request_id = reply.get("id")
        future = self._pending.get(request_id) if isinstance(request_id, int) else None
        if future is None:
            log.warning("WebSocket API reply for no pending request: %s", reply.get("error"))
            return
        if not future.done():
            future.set_result(reply)

    def _fail_pending(self) -> None:
        """The connection is gone: every request still waiting has an unknown outcome."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    VenueUnknownOutcomeError("WebSocket API connection lost before the reply")
                )
        self._pending.clear()

    def _jitter(self) -> float:
        """Between half and all of the backoff: spread reconnects, keep a floor."""
        return 0.5 + self._rng() / 2

    def _set_state(self, state: str) -> None:
        self.state = state
        if state == "connected":
            self.down_since = None
        else:
            self._up.clear()
            if self.down_since is None:
                self.down_since = time.monotonic()
