"""sd_notify against a real AF_UNIX datagram socket; the watchdog task pings it."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from oexec.ops import systemd
from oexec.ops.systemd import (
    READY,
    STOPPING,
    WATCHDOG,
    extend_timeout,
    notify,
    start_watchdog,
    status,
    stop_watchdog,
    watchdog_interval,
)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, {"NOTIFY_SOCKET": path}
    sock.close()


def test_notify_sends_one_datagram(listener: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = listener
    assert notify(READY, status("serving on tcp://127.0.0.1:5555\nx"), env=env)
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=serving on tcp://127.0.0.1:5555 x"
    assert notify(STOPPING, extend_timeout(1.5), env=env)
    assert sock.recv(4096).decode() == "STOPPING=1\nEXTEND_TIMEOUT_USEC=1500000"


def test_abstract_namespace_socket() -> None:
    name = f"oexec-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert notify(READY, env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(64) == b"READY=1"


def test_noop_without_notify_socket() -> None:
    assert notify(READY, env={}) is False
    assert notify(env={"NOTIFY_SOCKET": "/nonexistent"}) is False


def test_send_failure_is_reported_not_raised(tmp_path: Path) -> None:
    assert notify(READY, env={"NOTIFY_SOCKET": str(tmp_path / "missing.sock")}) is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env) == expected


async def test_watchdog_pings_until_stopped(
    listener: tuple[socket.socket, dict[str, str]],
) -> None:
    sock, env = listener
    sock.setblocking(False)
    env = {**env, "WATCHDOG_USEC": "20000"}  # ping every 10 ms
    task = start_watchdog(env=env)
    assert task is not None
    loop = asyncio.get_running_loop()
    pings = [await asyncio.wait_for(loop.sock_recv(sock, 64), 2) for _ in range(3)]
    assert pings == [WATCHDOG.encode()] * 3
    await stop_watchdog(task)
    assert task.cancelled()


async def test_watchdog_skips_pings_while_not_alive(
    listener: tuple[socket.socket, dict[str, str]],
) -> None:
    sock, env = listener
    sock.setblocking(False)
    alive = {"ok": False}
    task = asyncio.create_task(systemd.watchdog_loop(0.005, alive=lambda: alive["ok"], env=env))
    await asyncio.sleep(0.05)
    with pytest.raises(BlockingIOError):
        sock.recv(64)
    alive["ok"] = True
    loop = asyncio.get_running_loop()
    assert await asyncio.wait_for(loop.sock_recv(sock, 64), 2) == WATCHDOG.encode()
    await stop_watchdog(task)


async def test_no_watchdog_outside_systemd() -> None:
    assert start_watchdog(env={"WATCHDOG_USEC": "20000"}) is None
    assert start_watchdog(env={}) is None
    await stop_watchdog(None)
