"""The live dashboard: a static page at /dashboard fed by Server-Sent Events.

``/dashboard/stream`` pushes one JSON snapshot (oexec/ops/snapshot.py, the account
view's positions and balances under ``account`` (oexec/ops/account_panel.py; null
without one), plus whatever the daemon's ``snapshot_provider`` adds under ``extra``)
every ``interval_s``. One
snapshot is built per interval however many browsers watch, so the latency window
advances at a steady pace; the dependency checks are the health monitor's latest (it
re-runs them on its own timer, oexec/ops/health.py), never run per viewer.
Assets ship in the package (oexec/ops/static/); the page loads nothing from outside.
Streams end when the app shuts down, so they never hold up a graceful stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from oexec.ops.account_panel import AccountSource, account_panel
from oexec.ops.health import HealthMonitor
from oexec.ops.metrics import Metrics
from oexec.ops.snapshot import SnapshotBuilder

SnapshotProvider = Callable[[], Mapping[str, Any]]

STATIC_FILES: Mapping[str, str] = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "favicon.svg": "image/svg+xml",
}


def _static(name: str) -> bytes:
    return (resources.files("oexec.ops") / "static" / name).read_bytes()


class DashboardFeed:
    """Shared snapshot source for every stream of one daemon."""

    def __init__(
        self,
        metrics: Metrics,
        health: HealthMonitor,
        provider: SnapshotProvider | None,
        *,
        interval_s: float = 1.0,
        account: AccountSource | None = None,
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.provider = provider
        self.account = account
        self.interval_s = interval_s
        self.builder = SnapshotBuilder(metrics)
        self.closing = asyncio.Event()
        self._lock = asyncio.Lock()
        self._latest: dict[str, Any] | None = None
        self._built_at = -1e18

    async def snapshot(self) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if self._latest is None or now - self._built_at >= self.interval_s * 0.9:
                checks = (await self.health.current()).checks if self.health.checks else {}
                snap = self.builder.build()
                snap["health"]["checks"] = dict(checks)
                snap["account"] = account_panel(self.account()) if self.account else None
                snap["extra"] = dict(self.provider()) if self.provider is not None else {}
                self._latest, self._built_at = snap, now
            return self._latest

    async def close(self, _: web.Application | None = None) -> None:
        self.closing.set()

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        try:
            while not self.closing.is_set():
                data = orjson.dumps(await self.snapshot(), default=str)
                await response.write(b"data: " + data + b"\n\n")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closing.wait(), self.interval_s)
        except ConnectionResetError:
            pass  # the browser went away
        return response


async def _page(_: web.Request) -> web.Response:
    return web.Response(body=_static("dashboard.html"), content_type="text/html")


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.Response(body=_static(name), content_type=STATIC_FILES[name])


def add_dashboard_routes(app: web.Application, feed: DashboardFeed) -> None:
    """Mount /dashboard, /dashboard/static/{name} and /dashboard/stream on ``app``."""
    app.on_shutdown.append(feed.close)
    app.router.add_get("/dashboard", _page)
    app.router.add_get("/dashboard/static/{name}", _asset)
    app.router.add_get("/dashboard/stream", feed.stream)
