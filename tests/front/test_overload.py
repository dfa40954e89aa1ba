"""Overload (issue 10): BUSY comes at once, accepted requests stay fast, the queue stays short.

The service here blocks the loop for a while before each reply (CPU work, as the real
pipeline does under saturation). Orders of replies and counts are asserted, never
durations: a DEALER receives its replies in the order the daemon sent them. Nor do the
tests assume how fast ZeroMQ delivers: what must have arrived before the work goes on is
sent over inproc (in the ROUTER's pipe once ``send`` returns), and accepted work is held
until the BUSY replies are in.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from oexec.config import FrontConfig
from oexec.front import FrontEnd
from oexec.front.testing import InMemoryOrderService
from oexec.models import Order, OrderIntent

from .helpers import Recorder, place_fields, req

Connect = Callable[..., zmq.asyncio.Socket]
BLOCK_S = 0.02  # the loop is busy this long before each reply
WAVE = 100


class BlockingService(InMemoryOrderService):
    """Blocks the loop before each reply; the first call also holds the loop until the
    test has sent its second wave (so the wave is waiting when the replies start)."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.hold = threading.Event()

    async def place_order(self, intent: OrderIntent) -> Order:
        await asyncio.sleep(0)
        self.holding.set()
        self.hold.wait(10)
        time.sleep(BLOCK_S)  # noqa: ASYNC251 - on purpose: a saturated loop
        return await super().place_order(intent)


class SlowService(InMemoryOrderService):
    """Each order takes 0.2 s without blocking the loop (a slow venue); once ``release``
    is made, orders also wait for it before they complete."""

    def __init__(self) -> None:
        super().__init__()
        self.release: asyncio.Event | None = None

    async def place_order(self, intent: OrderIntent) -> Order:
        await asyncio.sleep(0.2)
        if self.release is not None:
            await self.release.wait()
        return await super().place_order(intent)


def _drive_waves(
    context: zmq.asyncio.Context, endpoint: str, service: BlockingService, first: int, second: int
) -> list[str]:
    """Send ``first`` orders; while the loop is held in the first of them, ``second``
    more; then let it go. Returns every reply as ``a``/``b`` (wave) + ``+``/``-`` (ok).

    ``endpoint`` is inproc, in ``context``: a message is in the ROUTER's pipe when
    ``send`` returns, so the second wave is waiting when the loop is let go (over TCP it
    could still be on its way - on a busy machine, after the first replies)."""
    ctx = zmq.Context.shadow(context.underlying)
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 20_000)
    sock.connect(endpoint)
    try:
        for i in range(first):
            sock.send(req("place_order", id=f"a{i}", **place_fields(f"a{i}")))
        assert service.holding.wait(10)
        for i in range(second):
            sock.send(req("place_order", id=f"b{i}", **place_fields(f"b{i}")))
        service.hold.set()
        replies = []
        for _ in range(first + second):
            reply = msgpack.unpackb(sock.recv())
            replies.append(reply["id"][0] + ("+" if reply["ok"] else "-"))
        return replies
    finally:
        sock.close(linger=0)  # the shadow context is the test's: it terminates it


async def test_busy_is_answered_between_replies_of_a_saturated_loop() -> None:
    """A wave that arrives while every worker is busy is answered BUSY after at most
    one or two accepted replies, not after a loop turn's worth of them (with the
    receiver task alone, up to ``workers`` replies went first, per 64 requests)."""
    endpoint = "inproc://overload-saturated-loop"
    config = FrontConfig(listen=(endpoint,), workers=8, queue_size=8, queue_wait_ms=0)
    service = BlockingService()
    context = zmq.asyncio.Context()
    front = FrontEnd(service, config, on_metrics=Recorder(), context=context)
    await front.start()
    try:
        replies = await asyncio.to_thread(_drive_waves, context, endpoint, service, 16, WAVE)
    finally:
        service.hold.set()
        await front.stop(drain_timeout_s=5)
        context.term()
    assert replies.count("b-") == WAVE and replies.count("a+") == 16  # the queue was full
    last_busy = max(i for i, reply in enumerate(replies) if reply == "b-")
    assert replies[:last_busy].count("a+") <= 1, replies


async def test_queue_holds_only_what_is_served_within_queue_wait(connect: Connect) -> None:
    """With a 0.2 s service, 2 workers and a 50 ms wait bound, a flood gets one request
    queued (behind two running) however large ``queue_size`` is; the rest is BUSY at
    once, and every accepted one completes.

    The accepted ones are held until the BUSY replies are in: a worker freed before the
    whole flood has arrived (ZeroMQ over TCP on a busy machine) would rightly take one
    more. A fourth accepted request shows as a missing reply (the receive times out)."""
    recorder = Recorder()
    config = FrontConfig(listen=("tcp://127.0.0.1:*",), workers=2, queue_size=100, queue_wait_ms=50)
    service = SlowService()
    front = FrontEnd(service, config, on_metrics=recorder)
    await front.start()
    n = 50
    try:
        sock = connect(front.endpoints[0])
        await sock.send(req("place_order", id="warm", **place_fields("warm")))
        assert msgpack.unpackb(await sock.recv())["ok"]  # the service time is known now
        service.release = asyncio.Event()
        for i in range(n):
            await sock.send(req("place_order", id=i, **place_fields(f"r{i}")))
        replies: list[dict[str, Any]] = [msgpack.unpackb(await sock.recv()) for _ in range(n - 3)]
        service.release.set()
        replies += [msgpack.unpackb(await sock.recv()) for _ in range(3)]
    finally:
        if service.release is not None:
            service.release.set()
        await front.stop(drain_timeout_s=5)
    ok = [r["id"] for r in replies if r["ok"]]
    busy = [r["id"] for r in replies if not r["ok"]]
    assert {r["error"]["code"] for r in replies if not r["ok"]} == {"BUSY"}
    assert sorted(ok) == [0, 1, 2]  # two running, one queued
    assert len(busy) == n - 3 and recorder.busy_count == n - 3
    # the BUSY replies all came before the first accepted one completed
    assert [r["ok"] for r in replies[: n - 3]] == [False] * (n - 3)


async def test_under_overload_bad_envelopes_keep_their_typed_errors(
    connect: Connect,
) -> None:
    """The cheap BUSY reads only the envelope: a frame that is not msgpack, an unknown
    op or a bad id still gets its typed error while the daemon is full; bad fields of a
    sound envelope get BUSY (docs/wire.md)."""
    service = InMemoryOrderService()
    service.gate = asyncio.Event()
    config = FrontConfig(listen=("tcp://127.0.0.1:*",), workers=1, queue_size=1)
    front = FrontEnd(service, config)
    await front.start()
    try:
        sock = connect(front.endpoints[0])
        await sock.send(req("health", id="running"))
        await service.entered.wait()
        await sock.send(req("health", id="queued"))
        await sock.send(req("health", id="full"))
        assert msgpack.unpackb(await sock.recv())["error"]["code"] == "BUSY"
        cases = [
            (b"\xc1garbage", "BAD_FRAME"),
            (req("self_destruct", id=1), "UNKNOWN_OP"),
            (req("health", id=True), "BAD_REQUEST"),
            (msgpack.packb({"v": 99, "id": 1, "op": "health"}), "UNSUPPORTED_VERSION"),
            (req("place_order", id=2, **place_fields(quantity="NaN")), "BUSY"),
        ]
        for body, code in cases:
            await sock.send(body)
            assert msgpack.unpackb(await sock.recv())["error"]["code"] == code, code
        service.gate.set()
        done = {msgpack.unpackb(await sock.recv())["id"] for _ in range(2)}
        assert done == {"running", "queued"}
    finally:
        service.gate.set()
        await front.stop(drain_timeout_s=2)
