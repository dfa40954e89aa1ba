"""The ops app on a real 127.0.0.1 socket: /health, /ready, /metrics and the token policy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from oexec.errors import ErrorCode, OexecError
from oexec.ops.http import build_ops_app, start_ops_server
from oexec.ops.metrics import Metrics

from ..ports import free_port

TOKEN = "ops-token-5f1c2a"


class Switch:
    """A dependency check the test can break and repair."""

    def __init__(self) -> None:
        self.up = True

    async def __call__(self) -> None:
        if not self.up:
            raise OexecError("redis down at 10.0.0.7", code=ErrorCode.STORE_UNAVAILABLE)


Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def _serve(app: web.Application) -> str:
        runner, port = await start_ops_server(app, "127.0.0.1", 0)
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield _serve
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def test_health_flips_to_503_and_back(serve: Serve, http: aiohttp.ClientSession) -> None:
    store, venue = Switch(), Switch()
    metrics = Metrics()
    base = await serve(
        build_ops_app(
            metrics=metrics,
            checks={"store": store, "venue": venue},
            readiness=None,
            started_at=time.time() - 61,
        )
    )
    async with http.get(base + "/health") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "healthy"
    assert body["checks"] == {"store": "healthy", "venue": "healthy"}
    assert body["uptime"].startswith("1m")
    assert body["timestamp"].endswith("+00:00")

    store.up = False
    async with http.get(base + "/health") as resp:
        assert resp.status == 503
        body = await resp.json()
    assert body["status"] == "degraded"
    assert body["checks"]["store"].startswith("unhealthy: STORE_UNAVAILABLE")
    assert body["checks"]["venue"] == "healthy"
    assert metrics.registry.get_sample_value("dependency_up", {"name": "store"}) == 0

    store.up = True
    async with http.get(base + "/health") as resp:
        assert resp.status == 200
    assert metrics.registry.get_sample_value("dependency_up", {"name": "store"}) == 1


async def test_health_check_timeout_is_bounded(serve: Serve, http: aiohttp.ClientSession) -> None:
    async def hangs() -> None:
        await asyncio.sleep(30)

    base = await serve(
        build_ops_app(
            metrics=Metrics(),
            checks={"venue": hangs},
            readiness=None,
            started_at=time.time(),
            check_timeout_s=0.05,
        )
    )
    async with http.get(base + "/health") as resp:
        assert resp.status == 503
        assert (await resp.json())["checks"]["venue"] == "unhealthy: timeout after 0.05s"


async def test_health_against_real_redis(serve: Serve, http: aiohttp.ClientSession) -> None:
    """A live Redis passes; a port nobody listens on fails: real sockets both ways."""
    good = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=1)
    bad = aioredis.Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )

    async def ping(client: aioredis.Redis) -> None:
        await client.ping()

    try:
        base = await serve(
            build_ops_app(
                metrics=Metrics(),
                checks={"redis": lambda: ping(good), "redis_replica": lambda: ping(bad)},
                readiness=None,
                started_at=time.time(),
            )
        )
        async with http.get(base + "/health") as resp:
            body = await resp.json()
        assert resp.status == 503
        assert body["checks"]["redis"] == "healthy"
        assert body["checks"]["redis_replica"].startswith("unhealthy: ConnectionError")
    finally:
        await good.aclose()
        await bad.aclose()


async def test_ready_follows_readiness_and_startup(
    serve: Serve, http: aiohttp.ClientSession
) -> None:
    state = {"ready": False}
    app = build_ops_app(
        metrics=Metrics(),
        checks={},
        readiness=lambda: state["ready"],
        started_at=time.time(),
    )
    base = await serve(app)
    async with http.get(base + "/ready") as resp:
        assert resp.status == 503
        assert await resp.json() == {"ready": False}
    state["ready"] = True
    async with http.get(base + "/ready") as resp:
        assert resp.status == 200
    await app.shutdown()  # draining: the app stops reporting ready even if the daemon says so
    async with http.get(base + "/ready") as resp:
        assert resp.status == 503


async def test_metrics_text(serve: Serve, http: aiohttp.ClientSession) -> None:
    metrics = Metrics()
    metrics.order_placed("BTCUSDT", "BUY", "LIMIT")
    base = await serve(
        build_ops_app(metrics=metrics, checks={}, readiness=None, started_at=time.time())
    )
    async with http.get(base + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert 'orders_placed_total{side="BUY",symbol="BTCUSDT",type="LIMIT"} 1.0' in text
    assert "uptime_seconds" in text


async def test_bearer_token_policy(serve: Serve, http: aiohttp.ClientSession) -> None:
    store = Switch()
    store.up = False
    base = await serve(
        build_ops_app(
            metrics=Metrics(),
            checks={"store": store},
            readiness=None,
            bearer_token=TOKEN,
            started_at=time.time(),
        )
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with http.get(base + "/metrics") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    async with http.get(base + "/metrics", headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401
    async with http.get(base + "/metrics?access_token=" + TOKEN) as resp:
        assert resp.status == 401  # query tokens only for the dashboard
    async with http.get(base + "/metrics", headers=auth) as resp:
        assert resp.status == 200
    async with http.get(base + "/ready") as resp:
        assert resp.status == 200
    async with http.get(base + "/health") as resp:
        assert resp.status == 503
        body = await resp.json()
    assert "checks" not in body  # failure reasons only for authorised callers
    assert body["status"] == "degraded"
    async with http.get(base + "/health", headers=auth) as resp:
        assert (await resp.json())["checks"]["store"].startswith("unhealthy")
    async with http.get(base + "/nope", headers=auth) as resp:
        assert resp.status == 404


async def test_dependency_metric_follows_without_any_health_request(serve: Serve) -> None:
    """The health timer alone moves ``dependency_up``: nobody requests /health here."""
    store = Switch()
    metrics = Metrics()
    await serve(
        build_ops_app(
            metrics=metrics,
            checks={"store": store},
            readiness=None,
            started_at=time.time(),
            health_refresh_s=0.05,
        )
    )

    async def until(value: float) -> None:
        async with asyncio.timeout(5):
            while True:  # the timer's effect, observed as a scrape would
                if metrics.registry.get_sample_value("dependency_up", {"name": "store"}) == value:
                    return
                await asyncio.sleep(0.02)

    await until(1)
    store.up = False
    await until(0)
    store.up = True
    await until(1)
