"""Non-blocking socket calls without pyzmq's sugar layer, for the hot paths.

pyzmq's ``Socket.send_multipart``/``recv_multipart`` type-check every frame, go through
``Socket.send``'s keyword handling and turn option numbers into enums: ≈ 2.5 µs per
message on top of the ≈ 0.2 µs libzmq needs (measured with the peer's send dropped).
The front end and the PUB publisher call the backend's methods directly instead, with
plain int flags. Every call here is non-blocking: ``zmq.Again`` means no message (a
receive) or no room (a send); callers read ``EVENTS`` to know which is the case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import zmq
import zmq.backend

EVENTS = int(zmq.EVENTS)
POLLIN = int(zmq.POLLIN)
POLLOUT = int(zmq.POLLOUT)
NOBLOCK = int(zmq.NOBLOCK)
MORE = int(zmq.SNDMORE) | NOBLOCK  # a frame that is not the message's last
_RCVMORE = int(zmq.RCVMORE)

#: ``socket.get(option)`` for int options (EVENTS, RCVMORE).
get_int = cast("Callable[[zmq.Socket[Any], int], int]", zmq.backend.Socket.get)
#: ``socket.send(frame, flags)``: one frame, copied (replies and events are small).
send_frame = cast("Callable[[zmq.Socket[Any], bytes, int], None]", zmq.backend.Socket.send)
_recv = cast("Callable[[zmq.Socket[Any], int], bytes]", zmq.backend.Socket.recv)


def recv_message(sock: zmq.Socket[Any]) -> list[bytes]:
    """Every frame of the message waiting on ``sock`` (``EVENTS`` showed POLLIN)."""
    frames = [_recv(sock, NOBLOCK)]
    while get_int(sock, _RCVMORE):
        frames.append(_recv(sock, NOBLOCK))
    return frames


def send_message(sock: zmq.Socket[Any], frames: Sequence[bytes]) -> None:
    """Send one message without blocking; ``zmq.Again`` when there is no room (libzmq
    takes or refuses a multipart message whole: only its first frame can be refused)."""
    last = len(frames) - 1
    for frame in frames[:last]:
        send_frame(sock, frame, MORE)
    send_frame(sock, frames[last], NOBLOCK)
