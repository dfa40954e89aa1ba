"""``oexec run`` as a child process, the way systemd starts it, around a notify socket.

The simulator runs in the test's event loop (fixture ``sim``), so every wait here is
asynchronous. The notify socket is a real AF_UNIX datagram socket: what the daemon
sends is what systemd would read.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from oexec.sim.app import SimServer

from ..ports import free_port
from ..reliability.procs import Proc

STOP_TIMEOUT_S = 30.0  # systemd/oexec.service TimeoutStopSec


async def poll_until(check: Callable[[], bool], within_s: float, every_s: float = 0.05) -> None:
    """Until ``check()`` holds; TimeoutError after ``within_s``."""
    async with asyncio.timeout(within_s):
        while True:
            if check():
                return
            await asyncio.sleep(every_s)


class NotifySocket:
    """The receiving end of ``$NOTIFY_SOCKET``; keeps every datagram in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def lines(self) -> list[str]:
        return [line for message in self.drain() for line in message.splitlines()]

    async def wait_for(self, line: str, within_s: float = 30.0, count: int = 1) -> None:
        await poll_until(lambda: self.lines().count(line) >= count, within_s)

    def close(self) -> None:
        self.sock.close()


class OexecRun(Proc):
    """``python -m oexec.cli.main run`` against ``sim`` with its own ports and SQLite file."""

    def __init__(
        self,
        sim: SimServer,
        workdir: Path,
        *,
        notify: NotifySocket | None = None,
        config: Path | None = None,
        watchdog_usec: int = 0,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.http_url = f"http://127.0.0.1:{free_port()}"
        self.store_path = workdir / "oexec.sqlite"
        argv = [sys.executable, "-m", "oexec.cli.main", "run", "--venue", sim.base_url]
        argv += ["--listen", self.endpoint, "--publish", f"tcp://127.0.0.1:{free_port()}"]
        argv += ["--http", self.http_url.removeprefix("http://")]
        argv += ["--store", f"sqlite:///{self.store_path}"]
        argv += ["--config", str(config)] if config else ["--log-level", "WARNING"]
        env = {"OEXEC_API_KEY": sim.api_key, "OEXEC_API_SECRET": sim.api_secret}
        if notify is not None:
            env["NOTIFY_SOCKET"] = str(notify.path)
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        super().__init__([*argv, *extra], workdir / "oexec.log", env)

    async def wait_ready(self, within_s: float = 30.0) -> None:
        """Until the printed banner (the daemon prints it once READY)."""

        def up() -> bool:
            assert self.alive(), self.log_text()
            return "oexec: listening on" in self.log_text()

        await poll_until(up, within_s)

    async def terminate(self, within_s: float = STOP_TIMEOUT_S) -> tuple[int | None, float]:
        """SIGTERM; returns (exit code, seconds to exit); SIGKILL after ``within_s``."""
        assert self.process is not None
        started = time.monotonic()
        self.signal(signal.SIGTERM)
        try:
            await poll_until(lambda: not self.alive(), within_s)
        except TimeoutError:
            self.kill()
        return self.process.returncode, time.monotonic() - started
