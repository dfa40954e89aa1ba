"""Optional NATS JetStream mirror of every event, for desks whose bus is NATS.

Each event goes to subject ``<subject_prefix>.<topic>`` (``oexec.order.created`` …
``oexec.fill``) on one JetStream stream (created or updated at start: subjects
``<subject_prefix>.>``, ``duplicate_window``, ``max_msgs``), with the message id
``<src>:<seq>``. JetStream drops a repeated id inside its duplicate window, so a
re-publish (a retry after a lost ack, a restart that re-sends) lands once. ``src`` is
the deployment's id when daemons share a sequence (docs/deployment.md), so the id is
the sequence itself; a lone SQLite daemon restarts its sequence with a new ``src``, so
a new event is never mistaken for an old one.

Off the order path like the Redis mirror: ``offer`` queues, one task publishes in
order and retries with back-off while NATS is away (nats-py reconnects by itself); a
full queue drops the event (counted, logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

from oexec.config import NatsConfig
from oexec.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 2.0
PUBLISH_TIMEOUT_S = 2.0
NATS_FAILURES = (NatsError, OSError, TimeoutError)


def subject_for(prefix: str, topic: str) -> str:
    return f"{prefix}.{topic}"


def message_id(src: str, seq: int) -> str:
    return f"{src}:{seq}"


class NatsEventSink:
    """Fed by ``ZmqEventSink.taps``; ``src`` tells the current event source id."""

    def __init__(self, config: NatsConfig, src: Callable[[], str]) -> None:
        self.config = config
        self._src = src
        self._queue: asyncio.Queue[tuple[int, str, bytes]] = asyncio.Queue(config.buffer_size)
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.duplicates = 0
        self.dropped = 0

    async def start(self) -> None:
        cfg = self.config
        self._nc = await nats.connect(
            cfg.url, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.5
        )
        self._js = self._nc.jetstream()
        stream = StreamConfig(
            name=cfg.stream,
            subjects=[f"{cfg.subject_prefix}.>"],
            duplicate_window=cfg.duplicate_window_s,
            max_msgs=cfg.max_msgs,
        )
        try:
            await self._js.add_stream(stream)
        except BadRequestError:  # exists with another configuration
            await self._js.update_stream(stream)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nats-sink")

    async def ping(self) -> None:
        """The daemon's ``nats`` health check: connected, and the server answers a PING."""
        if self._nc is None or not self._nc.is_connected:
            raise ConnectionError("NATS not connected (reconnecting)")
        await self._nc.flush(timeout=int(PUBLISH_TIMEOUT_S))

    def offer(self, seq: int, topic: str, data: bytes) -> None:
        try:
            self._queue.put_nowait((seq, topic, data))
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("NATS mirror full; event dropped", extra={"seq": seq})

    async def _run(self) -> None:
        while True:
            seq, topic, data = await self._queue.get()
            await self._publish_until_done(seq, topic, data)
            self._queue.task_done()

    async def _publish_until_done(self, seq: int, topic: str, data: bytes) -> None:
        assert self._js is not None
        subject = subject_for(self.config.subject_prefix, topic)
        headers = {"Nats-Msg-Id": message_id(self._src(), seq)}
        backoff = 0.05
        while True:
            try:
                ack = await self._js.publish(
                    subject, data, timeout=PUBLISH_TIMEOUT_S, headers=headers
                )
            except NATS_FAILURES as exc:
                log.warning("NATS mirror: publish failed: %r", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            self.published += 1
            self.duplicates += int(bool(ack.duplicate))
            return

    async def close(self, timeout_s: float = 5.0) -> None:
        if self._task is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout_s)
            except TimeoutError:
                self.dropped += self._queue.qsize()
                log.error("NATS mirror not flushed", extra={"left": self._queue.qsize()})
            await cancel_and_wait([self._task])
            self._task = None
        if self._nc is not None:
            try:
                await asyncio.wait_for(self._nc.drain(), timeout_s)
            except (*NATS_FAILURES, asyncio.CancelledError) as exc:
                log.warning("NATS mirror: drain failed: %r", exc)
            self._nc = None
