"""Dependency health checks and the /health report (plan §6.6).

A check is an ``async`` callable that returns on success and raises on failure (store
ping, venue reachability, user stream connected, breaker closed, NATS connected). Checks
run concurrently, each under its own timeout, so one hung dependency cannot hold up the
probe. Failure reasons are redacted and truncated: they go to whoever can reach the
port.

:class:`HealthMonitor` runs the checks on a timer inside the daemon, so
``dependency_up``, the dashboard and the ``OexecDependencyDown`` alert stay current
when nothing polls ``/health`` (a daemon under systemd with only Prometheus scraping
``/metrics``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from oexec.errors import OexecError
from oexec.ops.logging import redact
from oexec.ops.metrics import Metrics

Check = Callable[[], Awaitable[None]]

HEALTHY = "healthy"
DEGRADED = "degraded"
DEFAULT_CHECK_TIMEOUT_S = 2.0
#: How often the daemon re-runs its dependency checks by itself (one venue mark-price
#: read of weight 1 each time: 12 a minute against a 2,400 budget).
DEFAULT_REFRESH_S = 5.0
_MAX_REASON = 200


@attrs.frozen
class HealthReport:
    """Plan §6.6 body: status, timestamp, uptime, checks{name: healthy|unhealthy: why}."""

    status: str
    timestamp: str
    uptime: str
    uptime_seconds: float
    checks: dict[str, str]

    @property
    def healthy(self) -> bool:
        return self.status == HEALTHY

    def to_json(self, *, details: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.status,
            "timestamp": self.timestamp,
            "uptime": self.uptime,
            "uptime_seconds": self.uptime_seconds,
        }
        if details:
            body["checks"] = dict(self.checks)
        return body


def format_uptime(seconds: float) -> str:
    """Go-style duration, as the plan's body had it: ``26h3m7s``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def failure_reason(exc: BaseException) -> str:
    """``unhealthy: <code or type>: <message>``, redacted and bounded."""
    kind = exc.code.value if isinstance(exc, OexecError) else type(exc).__name__
    text = redact(str(exc))
    reason = f"{kind}: {text}" if text else kind
    return "unhealthy: " + reason[:_MAX_REASON]


async def run_check(check: Check, timeout_s: float) -> str:
    """Run one check; never raises (except cancellation of the caller)."""
    try:
        async with asyncio.timeout(timeout_s):
            await check()
    except TimeoutError:
        return f"unhealthy: timeout after {timeout_s:g}s"
    except Exception as exc:  # any failure of a dependency is a reported state, not a crash
        return failure_reason(exc)
    return HEALTHY


async def check_health(
    checks: Mapping[str, Check],
    *,
    started_at: float,
    timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
    metrics: Metrics | None = None,
) -> HealthReport:
    """Run all checks concurrently and build the report; updates ``dependency_up``."""
    names = list(checks)
    results = await asyncio.gather(*(run_check(checks[n], timeout_s) for n in names))
    outcome = dict(zip(names, results, strict=True))
    if metrics is not None:
        for name, result in outcome.items():
            metrics.set_dependency(name, result == HEALTHY)
    now = time.time()
    uptime = max(0.0, now - started_at)
    return HealthReport(
        status=HEALTHY if all(r == HEALTHY for r in results) else DEGRADED,
        timestamp=datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
        uptime=format_uptime(uptime),
        uptime_seconds=round(uptime, 3),
        checks=outcome,
    )


class HealthMonitor:
    """The dependency checks re-run every ``interval_s``; the latest report is kept.

    ``/health`` asks for a fresh report (:meth:`refresh`); the dashboard reads
    :attr:`latest`; :meth:`run` is the timer. Every refresh sets ``dependency_up``, so
    the metric moves with the dependency whether or not anyone asks.
    """

    def __init__(
        self,
        checks: Mapping[str, Check],
        metrics: Metrics,
        *,
        started_at: float,
        interval_s: float = DEFAULT_REFRESH_S,
        timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
    ) -> None:
        self.checks = checks
        self.metrics = metrics
        self.started_at = started_at
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.latest: HealthReport | None = None

    async def refresh(self) -> HealthReport:
        """Run every check now; the report becomes :attr:`latest`."""
        report = await check_health(
            self.checks, started_at=self.started_at, timeout_s=self.timeout_s, metrics=self.metrics
        )
        self.latest = report
        return report

    async def current(self) -> HealthReport:
        """The latest report, running the checks first if none ran yet."""
        return self.latest if self.latest is not None else await self.refresh()

    async def run(self) -> None:
        """Refresh forever (until cancelled); a check's failure is a report, never a stop."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval_s)
