"""A free loopback TCP port, for a child process to bind or for "nobody listens here"."""

from __future__ import annotations

import socket


def free_port() -> int:
    """An OS-assigned TCP port on 127.0.0.1, free once this returns (nobody listens)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
