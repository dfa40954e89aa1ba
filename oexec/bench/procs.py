"""The bench's child processes: simulator, daemon, echo server and load generators.

Every child is started with its stderr in a log file of the run's work directory (read
it when a row fails) and its stdin a pipe: closing stdin is how the daemon, the echo
server and the workers are told to stop, so nothing outlives the bench. Every wait is
bounded; a child that does not stop in time is terminated, then killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import attrs

from oexec.bench.job import Job, Result
from oexec.bench.mix import SYMBOL
from oexec.sim.config import DEMO_ACCOUNT, DEMO_API_KEY, DEMO_API_SECRET

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

#: Not secrets: they open only the bench's own simulator. The direct clients (ccxt,
#: python-binance, the HTTP floor) trade on an account of their own, so their orders'
#: user-stream events never reach the daemon (which trades on the demo account) while a
#: paired row runs both in turns.
DIRECT_API_KEY = "oexec-bench-direct"
DIRECT_API_SECRET = "oexec-bench-direct-secret"

#: Lifted limits, but published: the daemon's limiter sizes itself from exchangeInfo, so
#: the simulator must advertise limits no run can reach rather than the venue's.
SIM_CONFIG = f"""\
port = 0
tick_interval_ms = 0

[[accounts]]
key = "{DEMO_API_KEY}"
secret = "{DEMO_API_SECRET}"
name = "{DEMO_ACCOUNT}"

[[accounts]]
key = "{DIRECT_API_KEY}"
secret = "{DIRECT_API_SECRET}"
name = "direct"

[rate_limits]
enabled = false
weight_per_minute = 1000000000
orders_per_10s = 1000000000
orders_per_minute = 1000000000
"""


class ChildFailed(RuntimeError):
    """A child exited or said something unexpected; the message names its log file."""


@attrs.define
class Child:
    name: str
    proc: asyncio.subprocess.Process
    log_path: Path

    async def readline(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        except TimeoutError:
            raise ChildFailed(f"{self.name}: no output within {timeout_s:.0f}s") from None
        if not line:
            code = await self.proc.wait()
            raise ChildFailed(f"{self.name} exited with {code}; see {self.log_path}")
        return line.decode().rstrip("\n")

    async def stop(self) -> None:
        """Close stdin (the polite stop), then SIGTERM, then SIGKILL; all bounded."""
        if self.proc.returncode is not None:
            return
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.proc.stdin.close()
        for action in (None, self.proc.terminate, self.proc.kill):
            if action is not None:
                with contextlib.suppress(ProcessLookupError):
                    action()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
                return


async def spawn(
    name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None
) -> Child:
    log_path = workdir / f"{name}.log"
    log_fd = _open_log(log_path)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_fd,
            env={**os.environ, "PYTHONPATH": _pythonpath(), **(env or {})},
            limit=1 << 22,  # result lines carry encoded histograms
        )
    finally:
        os.close(log_fd)
    return Child(name, proc, log_path)


def _pythonpath() -> str:
    """Children import this very oexec, installed or run from a source checkout."""
    import oexec

    here = str(Path(oexec.__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH", "")
    return f"{here}{os.pathsep}{rest}" if rest else here


def _open_log(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


@attrs.frozen
class SimInfo:
    child: Child
    base_url: str
    ws_url: str
    mark: str = "50000"  # BTCUSDT's mark price when the simulator started
    api_key: str = DEMO_API_KEY  # the daemon's account
    api_secret: str = attrs.field(default=DEMO_API_SECRET, repr=False)
    direct_api_key: str = DIRECT_API_KEY  # the direct clients' account
    direct_api_secret: str = attrs.field(default=DIRECT_API_SECRET, repr=False)


async def start_sim(workdir: Path) -> SimInfo:
    config = workdir / "sim.toml"
    config.write_text(SIM_CONFIG)
    child = await spawn(
        "sim", ["-m", "oexec.cli.main", "sim", "--config", str(config), "--no-rate-limits"], workdir
    )
    base = ws = ""
    while not (base and ws):
        line = await child.readline(START_TIMEOUT_S)
        if line.startswith("oexec sim: REST "):
            base = line.split()[-1]
        elif line.startswith("oexec sim: WebSocket "):
            ws = line.split()[-1].split("/ws/")[0]
    timeout = aiohttp.ClientTimeout(total=10)
    url = f"{base}/fapi/v1/premiumIndex?symbol={SYMBOL}"
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
        mark = str((await resp.json())["markPrice"])
    return SimInfo(child, base, ws, mark)


@attrs.frozen
class DaemonInfo:
    child: Child
    endpoint: str
    events_endpoint: str
    http_url: str
    pid: int


def daemon_config(sim: SimInfo, store: str, workdir: Path, prefix: str) -> str:
    """The daemon's TOML: everything default but addresses, store and log level. Each
    daemon gets a store of its own (a fresh SQLite file, or its own Redis prefix)."""
    if store.startswith(("redis", "unix")):
        store_lines = f'url = "{store}"'
    else:
        store_lines = f'sqlite_path = "{workdir / (prefix.strip(":") + ".sqlite")}"'
    return f"""\
[front]
listen = ["tcp://127.0.0.1:*"]
[events]
publish = ["tcp://127.0.0.1:*"]
[http]
port = 0
[store]
{store_lines}
[venue]
base_url = "{sim.base_url}"
[logging]
level = "WARNING"
"""


async def start_daemon(
    sim: SimInfo, store: str, workdir: Path, prefix: str, order_transport: str = "rest"
) -> DaemonInfo:
    """A fresh daemon on ``sim``. The simulator's usage counters are reset first: limits
    are lifted, but it still reports the weight the earlier rows used, and a starting
    daemon's limiter (sized before exchangeInfo arrives) would take that as its own.
    ``order_transport = "ws"``: its orders go over the simulator's WebSocket API."""
    await reset_usage(sim)
    name = "daemon-redis" if store.startswith(("redis", "unix")) else "daemon-sqlite"
    name += "-ws" if order_transport == "ws" else ""
    config = workdir / f"{name}.toml"
    config.write_text(daemon_config(sim, store, workdir, prefix))
    env = {"OEXEC_API_KEY": sim.api_key, "OEXEC_API_SECRET": sim.api_secret}
    env["OEXEC_VENUE_ORDER_TRANSPORT"] = order_transport
    child = await spawn(name, ["-m", "oexec.bench.daemon", str(config), prefix], workdir, env)
    while True:
        line = await child.readline(START_TIMEOUT_S)
        if line.startswith("READY "):
            _, front, events, http, pid = line.split()
            return DaemonInfo(child, front, events, http, int(pid))


async def reset_usage(sim: SimInfo) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.delete(f"{sim.base_url}/_sim/rate_limits") as resp,
    ):
        if resp.status >= 300:
            raise ChildFailed(f"sim: resetting rate-limit counters answered {resp.status}")


async def start_echo(workdir: Path) -> tuple[Child, str]:
    child = await spawn("zmq-echo", ["-m", "oexec.bench.worker"], workdir)
    await _send_job(child, Job(row="zmq_echo", timeout_s=3600.0))
    line = await child.readline(START_TIMEOUT_S)
    if not line.startswith("READY "):
        raise ChildFailed(f"echo server said {line!r}")
    return child, line.split()[1]


async def _send_job(child: Child, job: Job) -> None:
    assert child.proc.stdin is not None
    child.proc.stdin.write(job.to_json() + b"\n")
    await child.proc.stdin.drain()


async def run_worker(job: Job, workdir: Path, on_progress: Callable[[int], None]) -> Result:
    """Run one row in a fresh load-generator process; returns its Result."""
    child = await spawn(f"worker-{job.row}", ["-m", "oexec.bench.worker"], workdir)
    try:
        await _send_job(child, job)
        budget = job.timeout_s + START_TIMEOUT_S
        while True:
            line = await child.readline(budget)
            if line.startswith("P "):
                on_progress(int(line[2:]))
            elif line.startswith("R "):
                return Result.from_json(line[2:])
    finally:
        await child.stop()
