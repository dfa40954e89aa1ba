"""The receiver never stalls while workers send replies directly on the same socket.

Why. Replies go out by a non-blocking send on the ROUTER socket whose descriptor the
loop watches for requests (oexec/front/router.py). A send can process the socket's
pending commands and so use up the edge of the file descriptor that would have woken
the reader for a request already queued; if nothing then re-checks ``EVENTS``, that
request waits until some other traffic happens, and a client waiting for its reply never
sends that traffic.
Closed-loop DEALER clients make exactly that visible: each keeps a window of requests
outstanding and sends more only as replies come back, so a stalled receiver means no
progress at all, which the driver reports instead of hanging. libzmq lets a send process
commands only when ~1 ms passed since it last did, so the service blocks briefly before
each reply (CPU work between sends). With few clients, and without the ``EVENTS``
re-check after a direct send, this stalls within a few hundred requests (seen on every
run of the 1- and 2-client cases; with the plain socket of issue 14, all 8 cases
fail without the ``_pump`` after each reply); with many clients another client's new
request usually wakes the reader, which hides a stall.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import attrs
import msgpack
import pytest
import zmq

from oexec.config import FrontConfig
from oexec.front import FrontEnd
from oexec.front.testing import InMemoryOrderService
from oexec.models import Order, OrderIntent

from .helpers import place_fields, req

INVALID_EVERY = 10  # every 10th request is refused by the receiver itself
STALL_S = 3.0  # no reply for this long: stalled
DEADLINE_S = 60.0
PAUSE_S = 0.002  # every PAUSE_EVERY-th order waits on the loop first
PAUSE_EVERY = 3
BLOCK_S = 0.0005  # then blocks the loop (CPU work) before its reply is sent


class YieldingService(InMemoryOrderService):
    """Yields to the loop before answering, so replies are sent while the receiver waits."""

    async def place_order(self, intent: OrderIntent) -> Order:
        await asyncio.sleep(PAUSE_S if len(self.orders) % PAUSE_EVERY == 0 else 0)
        time.sleep(BLOCK_S)  # noqa: ASYNC251 - on purpose: the loop is busy between sends
        return await super().place_order(intent)


@attrs.define
class Outcome:
    sent: int = 0
    answered: int = 0
    duplicates: int = 0
    unknown: int = 0
    stalled: bool = False
    codes: Counter[str] = attrs.field(factory=Counter)


@attrs.frozen
class Load:
    clients: int
    window: int  # outstanding per client
    per_client: int

    @property
    def total(self) -> int:
        return self.clients * self.per_client


def _body(client: int, n: int) -> bytes:
    correlation = f"{client}-{n}"
    if n % INVALID_EVERY == 0:
        return msgpack.packb({"v": 1, "id": correlation, "op": "no_such_op"})
    return req("place_order", id=correlation, **place_fields(f"s{client}-{n}"))


def _drive(endpoint: str, load: Load) -> Outcome:
    """Closed-loop DEALERs in their own thread (a sync context): the daemon's loop runs
    only the front end."""
    ctx = zmq.Context()
    socks = []
    poller = zmq.Poller()
    for _ in range(load.clients):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        poller.register(sock, zmq.POLLIN)
        socks.append(sock)
    out = Outcome()
    pending: list[set[str]] = [set() for _ in range(load.clients)]
    next_n = [0] * load.clients
    deadline = time.monotonic() + DEADLINE_S
    last_progress = time.monotonic()
    try:
        while out.answered + out.unknown < load.total:
            for i, sock in enumerate(socks):
                while len(pending[i]) < load.window and next_n[i] < load.per_client:
                    sock.send(_body(i, next_n[i]))
                    pending[i].add(f"{i}-{next_n[i]}")
                    next_n[i] += 1
                    out.sent += 1
            now = time.monotonic()
            if now - last_progress > STALL_S or now > deadline:
                out.stalled = True
                break
            for sock, _ in poller.poll(100):
                i = socks.index(sock)  # type: ignore[arg-type]
                while True:
                    try:
                        reply = msgpack.unpackb(sock.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                    last_progress = time.monotonic()
                    correlation = reply.get("id")
                    if correlation in pending[i]:
                        pending[i].remove(correlation)
                        out.answered += 1
                    elif isinstance(correlation, str) and correlation.startswith(f"{i}-"):
                        out.duplicates += 1
                    else:
                        out.unknown += 1
                    out.codes["ok" if reply.get("ok") else reply["error"]["code"]] += 1
    finally:
        for sock in socks:
            sock.close(linger=0)
        ctx.term()
    return out


LOADS = [Load(1, 8, 300), Load(2, 4, 300), Load(4, 8, 300), Load(24, 8, 150)]


@pytest.mark.parametrize("load", LOADS, ids=lambda load: f"{load.clients}x{load.window}")
@pytest.mark.parametrize(("workers", "queue_size"), [(16, 64), (4, 8)])
async def test_dealers_get_every_reply_without_a_stall(
    load: Load, workers: int, queue_size: int
) -> None:
    config = FrontConfig(
        listen=("tcp://127.0.0.1:*",), workers=workers, queue_size=queue_size, max_frame_bytes=4096
    )
    front = FrontEnd(YieldingService(), config)
    await front.start()
    try:
        out = await asyncio.to_thread(_drive, front.endpoints[0], load)
    finally:
        await front.stop(drain_timeout_s=2)
    total = load.total
    assert not out.stalled, f"no reply for {STALL_S} s after {out.answered} of {total}"
    assert (out.sent, out.answered, out.duplicates, out.unknown) == (total, total, 0, 0)
    invalid = load.clients * len(range(0, load.per_client, INVALID_EVERY))
    assert out.codes["UNKNOWN_OP"] == invalid
    assert out.codes["ok"] + out.codes["BUSY"] == total - invalid
    assert out.codes["ok"] > 0
