"""/health of a real daemon flips to 503 when Redis or the venue goes away, and back.

Redis here is a server of the test's own, on its own port (the machine's 6379 is never
touched); the venue is the simulator, stopped and started again on the same port.
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

from oexec.config import StoreConfig
from oexec.sim.app import SimServer

from ..e2e.conftest import DaemonFactory
from ..ports import free_port
from .scrape import until_health

REDIS_SERVER = shutil.which("redis-server")


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
