"""Replies that meet ``zmq.Again`` wait, in order, and go out once there is room.

The ROUTER runs with ROUTER_MANDATORY=0, so libzmq drops at the high-water mark rather
than refusing a send; ``zmq.Again`` is the defensive case (oexec/front/router.py). The
send function is wrapped to refuse the first reply a few times, as a full peer queue would,
and the replies produced meanwhile must neither be lost, nor overtake the refused one, nor
wait for traffic that never comes (the client sends nothing more until answered).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

import oexec.front.zmqraw as zmqraw
from oexec.front import FrontEnd
from oexec.wire import Route

from .helpers import req

Connect = Callable[..., zmq.asyncio.Socket]


async def test_replies_refused_with_again_go_out_later_in_order(
    front: FrontEnd, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_send = zmqraw.send_frame
    refusals = {"left": 12}  # the first reply is refused this often, the others are not
    sent_bodies: list[Any] = []

    def send(sock: zmq.Socket[bytes], frame: bytes, flags: int) -> None:
        if not flags & zmq.SNDMORE:  # a message's last frame: the body
            reply_id = msgpack.unpackb(frame)["id"]
            if refusals["left"] > 0 and reply_id == produced[0]:
                refusals["left"] -= 1
                raise zmq.Again()
            sent_bodies.append(reply_id)
        real_send(sock, frame, flags)

    produced: list[Any] = []
    monkeypatch.setattr(zmqraw, "send_frame", send)
    reply = front._reply

    def record(route: Route, body: bytes) -> None:
        produced.append(msgpack.unpackb(body)["id"])
        reply(route, body)

    monkeypatch.setattr(front, "_reply", record)
    sock = connect(front.endpoints[0])
    for i in range(5):
        await sock.send_multipart([b"", req("health", id=i)])
    replies = [msgpack.unpackb((await sock.recv_multipart())[-1])["id"] for _ in range(5)]

    assert refusals["left"] == 0
    assert sorted(replies) == [0, 1, 2, 3, 4]
    assert replies == sent_bodies == produced  # none overtook a refused one
