"""Real processes for the reliability suite: simulator host, daemon, a private Redis.

Everything binds 127.0.0.1 on ports picked here, every wait is bounded, and every
process writes its output to a log file the caller can grep (the secrets test reads
them all). The daemon is ``oexec run`` exactly as an operator starts it, so SIGKILL
means what it means in production.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..ports import free_port

SIM_KEY = "oexec-sim-key"
SIM_SECRET = "oexec-sim-secret"
START_TIMEOUT_S = 30.0


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not within {timeout_s} s")


def http_json(method: str, url: str, body: Any = None, timeout_s: float = 5.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read() or b"null")


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Proc:
    """A child process with its output in ``log_path``."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.argv = argv
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=os.getcwd()
            )
        finally:
            log.close()
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.process is not None and self.alive():
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it does not go; returns the exit code."""
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class SimHost(Proc):
    """tests/reliability/simhost.py: the simulator whose outages keep its state."""

    def __init__(
        self,
        workdir: Path,
        *,
        seed: int = 7,
        rate_limits: bool = True,
        account: tuple[str, str] = (SIM_KEY, SIM_SECRET),
    ) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "tests.reliability.simhost", "--port", str(self.port)]
        argv += ["--seed", str(seed)] + ([] if rate_limits else ["--no-rate-limits"])
        argv += ["--api-key", account[0]]
        env = {"SIMHOST_API_SECRET": account[1]}  # not in argv: ps shows argv
        super().__init__(argv, workdir / "sim.log", env)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_key, self.api_secret = account

    def start(self) -> None:
        self.spawn()
        wait_until(self.is_up, START_TIMEOUT_S, "simulator start")

    def is_up(self) -> bool:
        return http_status(f"{self.base_url}/_sim/stats") == 200

    def outage(self) -> None:
        self.signal(signal.SIGUSR1)
        wait_until(lambda: not self.is_up(), 10, "simulator outage")

    def recover(self) -> None:
        self.signal(signal.SIGUSR2)
        wait_until(self.is_up, 10, "simulator recovery")

    def control(self, method: str, path: str, body: Any = None) -> Any:
        return http_json(method, f"{self.base_url}/_sim/{path}", body)

    def orders(self) -> list[dict[str, Any]]:
        data = self.control("GET", "orders")
        return list(data["orders"] if isinstance(data, dict) else data)

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "stats"))


class RedisServer(Proc):
    """A redis-server of the test's own (own port, own dir, AOF fsync always)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir(exist_ok=True)
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir)]
        argv += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        super().__init__(argv, workdir / "redis.log")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.spawn()
        wait_until(self.is_up, START_TIMEOUT_S, "redis start")

    def is_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class DaemonProc(Proc):
    """``oexec run`` against ``sim`` on fixed loopback ports (kept across restarts)."""

    def __init__(
        self,
        workdir: Path,
        sim: SimHost,
        *,
        store: str = "",
        extra_env: dict[str, str] | None = None,
        config_file: Path | None = None,
        log_level: str = "INFO",
        name: str = "daemon",
    ) -> None:
        self.zmq_port, self.pub_port, self.http_port = free_port(), free_port(), free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.zmq_port}"
        self.events_endpoint = f"tcp://127.0.0.1:{self.pub_port}"
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        self.sqlite_path = workdir / f"{name}.sqlite"
        store = store or f"sqlite:///{self.sqlite_path}"
        argv = [sys.executable, "-m", "oexec.cli.main", "run", "--venue", sim.base_url]
        argv += ["--listen", self.endpoint, "--publish", self.events_endpoint]
        argv += ["--http", f"127.0.0.1:{self.http_port}", "--store", store]
        argv += ["--log-level", log_level]
        if config_file is not None:
            argv += ["--config", str(config_file)]
        env = {"OEXEC_API_KEY": sim.api_key, "OEXEC_API_SECRET": sim.api_secret}
        env["OEXEC_TRACKING_POLL_INTERVAL_S"] = "0.5"
        super().__init__(argv, workdir / f"{name}.log", {**env, **(extra_env or {})})

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.spawn()

        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"daemon exited: {self.log_text()[-2000:]}")
            return http_status(f"{self.http_url}/ready") == 200

        wait_until(ready, timeout_s, "daemon start")

    def rss(self) -> int:
        return rss_bytes(self.pid)
