"""A blocking DEALER that sends raw frames and checks the one reply (fuzzing helper).

The reply contract (docs/wire.md §1-2): every message the ROUTER can address gets
exactly one reply, carrying the sender's envelope prefix (everything up to and including
its first empty frame), whose body is a well-formed reply map; an error reply's code is
one of the documented ErrorCodes, never INTERNAL for bad input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgpack
import zmq

from oexec.errors import ErrorCode
from oexec.wire import ErrorReply, OkReply, decode_reply

REPLY_TIMEOUT_MS = 5000


class ReplyMissing(AssertionError):
    pass


class WireProbe:
    def __init__(self, endpoint: str, *, curve: dict[str, bytes] | None = None) -> None:
        self.endpoint = endpoint
        self._context = zmq.Context.instance()
        self._curve = curve
        self.codes: Counter[str] = Counter()
        self.sent = 0
        self.ok_place_orders = 0
        self._sock = self._open()

    def _open(self) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, REPLY_TIMEOUT_MS)
        for name, value in (self._curve or {}).items():
            setattr(sock, name, value)
        sock.connect(self.endpoint)
        return sock

    def reconnect(self) -> None:
        """A fresh connection (after the transport dropped an over-limit frame)."""
        self._sock.close(linger=0)
        self._sock = self._open()

    def close(self) -> None:
        self._sock.close(linger=0)

    def send_raw(self, frames: Sequence[bytes]) -> None:
        self._sock.send_multipart(list(frames))

    def recv_raw(self) -> list[bytes]:
        try:
            return self._sock.recv_multipart()
        except zmq.Again:
            raise ReplyMissing("no reply within 5 s") from None

    def call(self, frames: Sequence[bytes], *, op: Any = None) -> OkReply | ErrorReply:
        """Send one message, return its checked reply."""
        self.send_raw(frames)
        self.sent += 1
        op = op if op is not None else op_of(frames)
        reply = check_reply(frames, self.recv_raw())
        if isinstance(reply, ErrorReply):
            self.codes[str(reply.code)] += 1
        else:
            self.codes["ok"] += 1
            if op == "place_order":
                self.ok_place_orders += 1
        return reply


def op_of(frames: Sequence[bytes]) -> Any:
    """The ``op`` of a message's last frame, when it is a readable map (else None)."""
    try:
        data = msgpack.unpackb(frames[-1], strict_map_key=False)
    except Exception:
        return None
    return data.get("op") if isinstance(data, dict) else None


def expected_prefix(sent: Sequence[bytes]) -> list[bytes]:
    """What comes back before the body: the sender's frames up to its first empty one."""
    return list(sent[: sent.index(b"") + 1]) if b"" in sent else []


def check_reply(sent: Sequence[bytes], received: Sequence[bytes]) -> OkReply | ErrorReply:
    assert list(received[:-1]) == expected_prefix(sent), (sent[:3], received[:3])
    reply = decode_reply(received[-1])
    if isinstance(reply, ErrorReply):
        assert isinstance(reply.code, ErrorCode), f"untyped error code {reply.code!r}"
        assert reply.code is not ErrorCode.INTERNAL, f"INTERNAL for bad input: {reply.message}"
    return reply
