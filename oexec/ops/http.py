"""The ops HTTP app: /health, /ready, /metrics (and /dashboard when a snapshot is given).

Bearer token policy (``HttpConfig.bearer_token``; empty = no auth, bind to loopback):

- ``/ready`` is always open: probes (systemd, Docker, Kubernetes) must reach it and its
  body says nothing but ready or not.
- ``/health`` is always open for the same reason, but the per-dependency ``checks``
  (failure reasons name hosts and errors) are only shown to an authorised caller.
- ``/metrics``, ``/dashboard`` and ``/dashboard/stream`` need ``Authorization: Bearer
  <token>``; the dashboard also accepts ``?access_token=`` because a browser's
  EventSource cannot send headers (keep that on loopback or behind TLS). Its static
  assets (``/dashboard/static/``) are open: they hold no data.

The token is compared in constant time and never logged.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from oexec.ops.account_panel import AccountSource
from oexec.ops.dashboard import DashboardFeed, SnapshotProvider, add_dashboard_routes
from oexec.ops.health import DEFAULT_CHECK_TIMEOUT_S, DEFAULT_REFRESH_S, Check, HealthMonitor
from oexec.ops.metrics import Metrics
from oexec.tasks import cancel_and_wait

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

METRICS_KEY = web.AppKey("oexec_metrics", Metrics)
STARTED_KEY = web.AppKey("oexec_started", dict[str, bool])
FEED_KEY = web.AppKey("oexec_dashboard_feed", DashboardFeed)
HEALTH_KEY = web.AppKey("oexec_health_monitor", HealthMonitor)

OPEN_PATHS = frozenset({"/health", "/ready"})
OPEN_PREFIX = "/dashboard/static/"  # page assets: no data in them
QUERY_TOKEN_PREFIX = "/dashboard"


def _presented_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if request.path.startswith(QUERY_TOKEN_PREFIX):
        return request.query.get("access_token", "")
    return ""


def is_authorised(request: web.Request, token: str) -> bool:
    """True when no token is configured or the request presents it."""
    if not token:
        return True
    return hmac.compare_digest(_presented_token(request).encode(), token.encode())


def _auth_middleware(token: str) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIX) or is_authorised(request, token):
            return await handler(request)
        return web.json_response(
            {"error": "UNAUTHORIZED"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="oexec"'},
        )

    return auth


def build_ops_app(
    *,
    metrics: Metrics,
    checks: Mapping[str, Check],
    readiness: Callable[[], bool] | None,
    bearer_token: str = "",
    started_at: float,
    check_timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
    snapshot_provider: SnapshotProvider | None = None,
    dashboard_interval_s: float = 1.0,
    health_refresh_s: float = DEFAULT_REFRESH_S,
    account_source: AccountSource | None = None,
) -> web.Application:
    """Build the ops app.

    ``readiness`` is the daemon's own verdict (False while starting or draining); the
    app also reports not-ready before its own startup and after shutdown begins.
    ``started_at`` is ``time.time()`` at daemon start. The live dashboard
    (oexec/ops/dashboard.py) is always mounted; ``snapshot_provider``'s mapping is
    added to each snapshot under ``extra`` (e.g. the risk kill switch). While the app
    runs, the dependency checks re-run every ``health_refresh_s`` (``HealthMonitor``),
    so ``dependency_up`` is current without anyone requesting /health.
    ``account_source`` feeds the dashboard's positions and balances panels.
    """
    app = web.Application(middlewares=[_auth_middleware(bearer_token)])
    app[METRICS_KEY] = metrics
    started = {"started": False}
    app[STARTED_KEY] = started

    async def on_startup(_: web.Application) -> None:
        started["started"] = True

    async def on_shutdown(_: web.Application) -> None:
        started["started"] = False

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    monitor = HealthMonitor(
        checks,
        metrics,
        started_at=started_at,
        interval_s=health_refresh_s,
        timeout_s=check_timeout_s,
    )
    app[HEALTH_KEY] = monitor
    if checks:
        app.cleanup_ctx.append(_run_monitor)

    async def health(request: web.Request) -> web.Response:
        report = await monitor.refresh()
        body = report.to_json(details=is_authorised(request, bearer_token))
        return web.json_response(body, status=200 if report.healthy else 503)

    async def ready(_: web.Request) -> web.Response:
        ok = started["started"] and (readiness is None or readiness())
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    async def metrics_text(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_text)
    feed = DashboardFeed(
        metrics,
        monitor,
        snapshot_provider,
        interval_s=dashboard_interval_s,
        account=account_source,
    )
    app[FEED_KEY] = feed
    add_dashboard_routes(app, feed)
    return app


async def _run_monitor(app: web.Application) -> AsyncIterator[None]:
    """The health timer lives as long as the app: started at setup, cancelled at cleanup."""
    task = asyncio.get_running_loop().create_task(app[HEALTH_KEY].run(), name="health-monitor")
    yield
    await cancel_and_wait([task])


async def start_ops_server(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Serve ``app``; returns the runner (call ``cleanup()`` to stop) and the bound port.

    ``port=0`` lets the OS choose (tests, several daemons in one process).
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])
