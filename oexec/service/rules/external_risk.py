"""Client for an external risk service over ZeroMQ: msgpack ``{intent}`` -> ``{ok, reason}``.

A desk's own risk engine can veto every order. The service binds a REP (or ROUTER)
socket; we talk to it with one DEALER so that many checks can be in flight. Each request
travels as ``[correlation id, b"", msgpack]``: a REP socket returns everything before the
empty frame unchanged, so the service needs no knowledge of our ids and a late reply to
a request that already timed out is recognised and dropped.

Fail closed: no answer within ``timeout_ms`` is RISK_EXTERNAL_TIMEOUT, an unreadable
answer RISK_EXTERNAL_REJECT. The venue is never contacted on either.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from oexec.errors import ErrorCode, RiskError
from oexec.models import OrderIntent
from oexec.models.serde import converter
from oexec.tasks import cancel_and_wait

log = logging.getLogger("oexec.risk.external")

MAX_REASON_CHARS = 200


def encode_request(intent: OrderIntent) -> bytes:
    """The request body: the intent, flat (request_id, the terms, deadline_ms), decimals as
    strings and enums as values."""
    flat = {
        "request_id": intent.request_id,
        **converter.unstructure(intent.terms),
        "deadline_ms": intent.deadline_ms,
    }
    packed: bytes = msgpack.packb({"intent": flat}, use_bin_type=True)
    return packed


def judge_reply(body: bytes) -> None:
    """Raise RiskError unless ``body`` is a map with ``ok`` exactly True."""
    try:
        reply: Any = msgpack.unpackb(body, raw=False)
    except Exception:
        reply = None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise RiskError(
            "external risk service sent an unreadable reply",
            code=ErrorCode.RISK_EXTERNAL_REJECT,
            details={"reason": "malformed reply"},
        )
    if not reply["ok"]:
        reason = str(reply.get("reason") or "rejected")[:MAX_REASON_CHARS]
        raise RiskError(
            f"external risk service rejected the order: {reason}",
            code=ErrorCode.RISK_EXTERNAL_REJECT,
            details={"reason": reason},
        )


class ExternalRiskClient:
    """One DEALER connection to the risk service, shared by all concurrent checks."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_ms: int = 50,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_ms / 1000
        self._context = context
        self._socket: zmq.asyncio.Socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[bytes, asyncio.Future[bytes]] = {}
        self._ids = itertools.count(1)

    def _connect(self) -> zmq.asyncio.Socket:
        if self._socket is None:
            context = self._context or zmq.asyncio.Context.instance()
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.endpoint)
            self._socket = sock
            self._reader = asyncio.get_running_loop().create_task(self._read(sock))
        return self._socket

    async def _read(self, sock: zmq.asyncio.Socket) -> None:
        """Route each reply to its waiting check; replies nobody waits for are dropped."""
        while True:
            frames = await sock.recv_multipart()
            if len(frames) != 3 or frames[1] != b"":
                log.warning("external risk: ignoring a reply of %d frames", len(frames))
                continue
            future = self._pending.pop(frames[0], None)
            if future is not None and not future.done():
                future.set_result(frames[2])

    async def check(self, intent: OrderIntent) -> None:
        """Ask the service about ``intent``. Raises RiskError (reject, timeout)."""
        sock = self._connect()
        request_id = str(next(self._ids)).encode()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            async with asyncio.timeout(self.timeout_s):
                await sock.send_multipart([request_id, b"", encode_request(intent)])
                body = await future
        except TimeoutError:
            raise RiskError(
                f"external risk service gave no answer within {self.timeout_s * 1000:.0f} ms",
                code=ErrorCode.RISK_EXTERNAL_TIMEOUT,
                details={"timeout_ms": round(self.timeout_s * 1000)},
            ) from None
        finally:
            self._pending.pop(request_id, None)
        judge_reply(body)

    async def close(self) -> None:
        if self._reader is not None:
            await cancel_and_wait([self._reader])
            self._reader = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
