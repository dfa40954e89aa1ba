"""/health of a real daemon flips to 503 when Redis or the venue goes away, and back;
``dependency_up`` flips by itself, with nothing requesting /health (the health timer).

Redis and nats-server here are servers of the test's own, on their own ports (the
machine's 6379 and 4222 are never touched); the venue is the simulator, stopped and
started again on the same port.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import attrs
import pytest

from oexec.config import HttpConfig, NatsConfig, StoreConfig
from oexec.sim.app import SimServer

from ..e2e.conftest import DaemonFactory
from ..ports import free_port
from .scrape import metrics, until_health

REDIS_SERVER = shutil.which("redis-server")
NATS_SERVER = shutil.which("nats-server")


class OwnRedis:
    """A throwaway redis-server on 127.0.0.1:``port`` that the test stops and starts."""

    def __init__(self, directory: Path) -> None:
        assert REDIS_SERVER is not None
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def store_kind() -> str:
    return "sqlite"  # the shared-6379 cleanup of make_daemon is not needed: own Redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server not installed")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def restart_sim(sim: SimServer) -> None:
    sim.config = attrs.evolve(sim.config, port=sim.port)  # same port: the daemon's URL
    await sim.start()


async def test_health_flips_with_redis_and_venue(
    make_daemon: DaemonFactory, sim: SimServer, own_redis: OwnRedis
) -> None:
    daemon = await make_daemon(store=StoreConfig(url=own_redis.url, redis_timeout_s=0.5))
    base = daemon.http_url
    async with aiohttp.ClientSession() as http:
        body = await until_health(http, base, 200)
        assert set(body["checks"]) >= {"store", "venue", "user_stream", "breaker"}

        own_redis.stop()
        body = await until_health(http, base, 503)
        assert body["status"] == "degraded" and body["checks"]["store"].startswith("unhealthy")
        own_redis.start()
        await until_health(http, base, 200)

        await sim.stop()
        body = await until_health(http, base, 503)
        assert body["checks"]["venue"].startswith("unhealthy")
        assert body["checks"]["store"] == "healthy"
        await asyncio.sleep(0.5)
        await restart_sim(sim)
        body = await until_health(http, base, 200)
        assert set(body["checks"].values()) == {"healthy"}
        async with http.get(f"{base}/ready") as ready:
            assert ready.status == 200  # a dependency outage is not "not ready"


class OwnNats:
    """A throwaway JetStream nats-server on 127.0.0.1:``port``, stopped and started again."""

    def __init__(self, directory: Path) -> None:
        assert NATS_SERVER is not None
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert NATS_SERVER is not None
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js",
             "-sd", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    if s.recv(8).startswith(b"INFO"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("own nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[OwnNats]:
    if NATS_SERVER is None:
        pytest.skip("nats-server not installed")
    server = OwnNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


async def test_dependency_up_flips_with_nobody_polling_health(
    make_daemon: DaemonFactory, sim: SimServer, own_nats: OwnNats
) -> None:
    """Only /metrics is read (as Prometheus would): the daemon's own timer runs the checks."""
    daemon = await make_daemon(
        http=HttpConfig(port=0, health_refresh_s=0.2), nats=NatsConfig(url=own_nats.url)
    )
    base = daemon.http_url

    async with aiohttp.ClientSession() as http:

        async def until_up(name: str, up: float, within_s: float = 15.0) -> None:
            async with asyncio.timeout(within_s):
                while True:  # a remote process: there is no event to await
                    if await dependency_up(http, base, name) == up:
                        return
                    await asyncio.sleep(0.1)

        for name in ("store", "venue", "user_stream", "breaker", "nats"):
            await until_up(name, 1)
        own_nats.stop()
        await until_up("nats", 0)
        own_nats.start()  # same port: the client reconnects by itself
        await until_up("nats", 1)

        await sim.stop()
        await until_up("venue", 0)
        await asyncio.sleep(0.5)
        await restart_sim(sim)
        await until_up("venue", 1)


async def dependency_up(http: aiohttp.ClientSession, base: str, name: str) -> float | None:
    """``dependency_up{name}`` as /metrics shows it; None while it has no sample."""
    samples = (await metrics(http, base)).get("dependency_up", frozenset())
    found = [v for _, labels, v in samples if dict(labels).get("name") == name]
    return found[0] if found else None
