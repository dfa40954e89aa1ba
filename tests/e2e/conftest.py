"""End-to-end fixtures: the real simulator, a real daemon, real ZeroMQ sockets and a real
store (SQLite file or the Redis at OEXEC_TEST_REDIS), all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
import redis.asyncio as aioredis

from oexec.app import Daemon
from oexec.config import (
    Config,
    EventsConfig,
    FrontConfig,
    HttpConfig,
    LoggingConfig,
    StoreConfig,
    TrackingConfig,
    VenueConfig,
)
from oexec.sim.app import SimServer
from oexec.sim.config import SimConfig

REDIS_URL = os.environ.get("OEXEC_TEST_REDIS", "redis://127.0.0.1:6379/15")


class SimControl:
    """The simulator's control API and ground truth, over HTTP like any test would."""

    def __init__(self, server: SimServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method, f"{self.server.base_url}/_sim/{path}", json=body
        ) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    async def orders(self) -> list[dict[str, Any]]:
        data = await self._call("GET", "orders")
        return data["orders"] if isinstance(data, dict) else data

    async def stats(self) -> dict[str, Any]:
        return await self._call("GET", "stats")  # type: ignore[no-any-return]

    async def price(self, symbol: str, price: str) -> None:
        await self._call("POST", "price", {"symbol": symbol, "price": price})

    async def fault(self, kind: str, **fields: Any) -> None:
        await self._call("POST", "faults", {"kind": kind, **fields})

    async def clear_faults(self) -> None:
        await self._call("DELETE", "faults")


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[SimServer]:
    """The simulator; ``@pytest.mark.sim_config(**fields)`` changes its SimConfig."""
    marker = request.node.get_closest_marker("sim_config")
    fields: dict[str, Any] = {"seed": 11, **(marker.kwargs if marker else {})}
    async with SimServer(SimConfig(**fields)) as server:
        yield server


@pytest.fixture
async def control(sim: SimServer) -> AsyncIterator[SimControl]:
    async with aiohttp.ClientSession() as session:
        yield SimControl(sim, session)


DaemonFactory = Callable[..., Awaitable[Daemon]]


@pytest.fixture(params=["sqlite", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_daemon(
    sim: SimServer, tmp_path: Path, store_kind: str
) -> AsyncIterator[DaemonFactory]:
    """Start daemons against ``sim`` sharing one store; all are stopped after the test."""
    prefix = f"oexec-test-{uuid.uuid4().hex[:10]}:"
    started: list[Daemon] = []

    async def factory(**sections: Any) -> Daemon:
        """``sections``: Config sections by name; ``venue_changes``: VenueConfig fields."""
        store = (
            StoreConfig(url=REDIS_URL)
            if store_kind == "redis"
            else StoreConfig(sqlite_path=str(tmp_path / "oexec.sqlite"))
        )
        config = Config(
            front=sections.pop("front", FrontConfig(listen=("tcp://127.0.0.1:*",))),
            events=sections.pop("events", EventsConfig(publish=("tcp://127.0.0.1:*",))),
            http=sections.pop("http", HttpConfig(port=0)),
            store=sections.pop("store", store),
            venue=attrs.evolve(
                VenueConfig(base_url=sim.base_url, api_key=sim.api_key, api_secret=sim.api_secret),
                **sections.pop("venue_changes", {}),
            ),
            tracking=sections.pop("tracking", TrackingConfig(poll_interval_s=0.5)),
            logging=LoggingConfig(level="WARNING"),
            **sections,
        )
        daemon = Daemon(config, store_prefix=prefix)
        await daemon.start()
        started.append(daemon)
        return daemon

    yield factory
    for daemon in reversed(started):
        await stop_or_explain(daemon)
    if store_kind == "redis":
        client = aioredis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def stop_or_explain(daemon: Daemon, within_s: float = 30.0) -> None:
    """Stop a daemon; if that hangs, fail with every pending task's stack, not a bare timeout."""
    stopping = asyncio.ensure_future(daemon.stop())
    done, _ = await asyncio.wait({stopping}, timeout=within_s)
    if stopping in done:
        stopping.result()
        return
    out = io.StringIO()
    for task in asyncio.all_tasks():
        print(f"--- {task!r}", file=out)
        task.print_stack(file=out)
    pytest.fail(f"Daemon.stop() hung for {within_s}s; pending tasks:\n{out.getvalue()}")


@pytest.fixture
async def daemon(make_daemon: DaemonFactory) -> Daemon:
    return await make_daemon()


def endpoint(daemon: Daemon) -> str:
    return daemon.front.endpoints[0]


def events_endpoint(daemon: Daemon) -> str:
    return daemon.events.endpoints[0]
