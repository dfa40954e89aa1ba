"""``BinanceUserStream``: the account's order/account events over listenKey + WebSocket.

Lifecycle (reference §G.1): create a listenKey, connect ``<ws base>/ws/<key>``, PUT the
key every ``listen_key_keepalive_s``, reconnect with backoff on any disconnect, get a
new key on ``listenKeyExpired`` or -1125, and reconnect on our own before the venue's
24 h cut. Events of a gap are never replayed by the venue, so every (re)connection is
announced in-band with a ``StreamGap`` item: the consumer must then recover by polling
(open orders, trades) before trusting the stream again. An event we cannot parse is
also reported as a gap rather than silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from oexec.errors import OexecError
from oexec.models.venue import (
    AccountConfigUpdate,
    AccountUpdate,
    MarginCall,
    OrderUpdate,
    StreamGap,
)
from oexec.tasks import cancel_and_wait
from oexec.venue.binance.adapter import BinanceUsdmVenue
from oexec.venue.binance.errors import ListenKeyExpiredError
from oexec.venue.binance.parsing import (
    VenueParseError,
    parse_account_config_update,
    parse_account_update,
    parse_margin_call,
    parse_order_trade_update,
)
from oexec.venue.binance.transport import backoff_s

log = logging.getLogger(__name__)

#: Production/testnet REST hosts whose WebSocket host differs (§0).
KNOWN_WS_BASES = {
    "fapi.binance.com": "wss://fstream.binance.com",
    "testnet.binancefuture.com": "wss://fstream.binancefuture.com",
}


StreamEvent = OrderUpdate | AccountUpdate | AccountConfigUpdate | MarginCall
StreamItem = StreamEvent | StreamGap  # StreamGap lives in oexec.models.venue
_PARSERS: dict[str, Callable[[Mapping[str, Any]], StreamEvent]] = {
    "ORDER_TRADE_UPDATE": parse_order_trade_update,
    "ACCOUNT_UPDATE": parse_account_update,
    "ACCOUNT_CONFIG_UPDATE": parse_account_config_update,  # issue 17: position events
    "MARGIN_CALL": parse_margin_call,
}
_KEY_EXPIRED = "listenKeyExpired"
#: A connection that ended for a planned reason is re-opened at once with this gap reason.
_NEXT_REASON = {"key_expired": "key_renewed", "rotate": "rotated"}
_CLOSED = object()


def ws_base_for(base_url: str) -> str:
    """``http://127.0.0.1:X`` → ``ws://127.0.0.1:X``; known Binance hosts → their WS host."""
    parts = urlsplit(base_url)
    known = KNOWN_WS_BASES.get(parts.hostname or "")
    if known is not None:
        return known
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}"


class BinanceUserStream:
    """Implements the ``UserStream`` port; ``events()`` also yields ``StreamGap``."""

    def __init__(
        self,
        venue: BinanceUsdmVenue,
        ws_url: str | None = None,
        on_state: Callable[[str], None] | None = None,
        *,
        reconnect_base_s: float = 0.5,
        heartbeat_s: float = 30.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        config = venue.config
        self._venue = venue
        self._ws_base = (ws_url or config.ws_url or ws_base_for(config.base_url)).rstrip("/")
        self._on_state = on_state
        self._keepalive_s = config.listen_key_keepalive_s
        self._rotate_s = config.stream_rotate_s
        self._reconnect_base_s = reconnect_base_s
        self._reconnect_max_s = config.stream_reconnect_max_s
        self._heartbeat_s = heartbeat_s
        self._rng = rng
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._key: str | None = None
        self._key_expired = False
        self._closing = False
        self._ever_connected = False
        self.state = "idle"

    @property
    def listen_key(self) -> str | None:
        return self._key

    def start(self) -> None:
        """Start the connection task (``events()`` does this on first use)."""
        if self._task is None and not self._closing:
            self._task = asyncio.create_task(self._run(), name="binance-user-stream")

    def events(self) -> AsyncIterator[StreamItem]:
        """Order/account updates in arrival order, with a ``StreamGap`` per connection.

        Starts the connection at once (not on the first ``anext``).
        """
        self.start()
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamItem]:
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                return
            if isinstance(item, str):  # an event's text, parsed as it is taken
                parsed = self._parse(item)
                if parsed is None:
                    continue
                item = parsed
            assert isinstance(
                item, OrderUpdate | AccountUpdate | AccountConfigUpdate | MarginCall | StreamGap
            )
            yield item

    async def close(self, release_key: bool = False) -> None:
        """Stop; DELETE the listenKey only if asked (it is shared by the account)."""
        self._closing = True
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        if release_key and self._key is not None:
            try:
                await self._venue.close_listen_key()
            except OexecError as exc:
                log.warning("closing listenKey failed: %r", exc)
            self._key = None
        self._set_state("closed")
        self._queue.put_nowait(_CLOSED)

    # --- connection loop ---------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        pending: str | None = None  # gap reason decided by how the last connection ended
        while not self._closing:
            reason = pending or ("reconnected" if self._ever_connected else "connected")
            outcome = await self._connect_once(reason)
            self._set_state("disconnected")
            pending = _NEXT_REASON.get(outcome)
            if pending is not None:
                failures = 0
                continue  # planned: reconnect at once
            failures = 1 if outcome == "closed" else failures + 1
            await asyncio.sleep(
                backoff_s(failures, self._reconnect_base_s, self._reconnect_max_s, self._jitter)
            )

    def _jitter(self) -> float:
        """Between half and all of the backoff: spread reconnects, keep a floor."""
        return 0.5 + self._rng() / 2

    async def _connect_once(self, reason: str) -> str:
        """One connection; returns why it ended."""
        connected = False
        try:
            if self._key is None or self._key_expired:
                self._key = await self._venue.create_listen_key()
                self._key_expired = False
            self._set_state("connecting")
            url = f"{self._ws_base}/ws/{self._key}"
            async with self._venue.session.ws_connect(url, heartbeat=self._heartbeat_s) as ws:
                connected = self._ever_connected = True
                self._set_state("connected")
                self._queue.put_nowait(StreamGap(reason, self._venue.now_ms()))
                return await self._pump(ws)
        except (OexecError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("user stream connection failed: %r", exc)
        return "closed" if connected else "never_connected"

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        keepalive = asyncio.create_task(self._keepalive_loop(ws), name="listenkey-keepalive")
        deadline = time.monotonic() + self._rotate_s
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "rotate"
                try:
                    msg = await ws.receive(timeout=remaining)
                except TimeoutError:
                    return "rotate"
                if msg.type is aiohttp.WSMsgType.TEXT:
                    if self._handle(msg.data):
                        self._key_expired = True
                        return "key_expired"
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.ERROR,
                ):
                    return "key_expired" if self._key_expired else "closed"
        finally:
            await cancel_and_wait([keepalive])

    async def _keepalive_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await asyncio.sleep(self._keepalive_s)
            try:
                await self._venue.keepalive_listen_key()
            except ListenKeyExpiredError:
                log.warning("listenKey expired (-1125); renewing")
                self._key_expired = True
                await ws.close()
                return
            except OexecError as exc:
                log.warning("listenKey keepalive failed: %r", exc)

    def _handle(self, data: str) -> bool:
        """Queue the event's text; True when the venue says the key expired.

        Queued as text and parsed when taken (``_parse``): while the tracker is behind
        (a burst of fills), a waiting event then holds its ~0.7 KB of text instead of its
        decoded JSON and parsed update (~3.4 KB; a bench load queued 15,000 of them, +50
        MiB of RSS). Only the rare listenKeyExpired is decoded here: it ends the
        connection at once."""
        if _KEY_EXPIRED in data and self._event(data).get("e") == _KEY_EXPIRED:
            return True
        self._queue.put_nowait(data)
        return False

    @staticmethod
    def _event(data: str) -> dict[str, Any]:
        """The event object of one message ({} for anything else)."""
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.error("user stream sent non-JSON text")
            return {}
        if isinstance(event, dict) and isinstance(event.get("data"), dict):
            event = event["data"]  # combined-stream envelope
        return event if isinstance(event, dict) else {}

    def _parse(self, data: str) -> StreamItem | None:
        """One queued event's update; None for kinds we do not follow (TRADE_LITE,
        STRATEGY_UPDATE, …); a StreamGap for one we cannot parse (recover instead)."""
        event = self._event(data)
        kind = event.get("e")
        parser = _PARSERS.get(str(kind))
        if parser is None:
            return None
        try:
            parsed: StreamItem = parser(event)
        except VenueParseError as exc:
            log.error("unparseable %s event: %s", kind, exc.message)
            return StreamGap("unparseable_event", self._venue.now_ms())
        return parsed

    def _set_state(self, state: str) -> None:
        self.state = state
        if self._on_state is not None:
            self._on_state(state)
