"""One bench run: start the processes, run every row in turn, stop everything.

Rows run one after another (never two load generators at once) against one simulator,
so every row sees the same venue. Order: the floors, the direct libraries, then per
store a fresh daemon with its rows, then the scaling run on a daemon of its own.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import attrs

from oexec.bench import procs, stages
from oexec.bench.hist import summarize
from oexec.bench.job import Job, Result
from oexec.bench.progress import Bar
from oexec.bench.report import Report, Row, machine, set_ratios
from oexec.bench.scaling import cpu_s, run_scaling
from oexec.bench.targets import evaluate

OVERLOAD_ORDERS = 5000  # past saturation every order costs seconds: keep the row short


@attrs.frozen
class Plan:
    orders: int = 3000  # measured orders per one-in-flight row
    concurrent_orders: int = 10000  # per row with ``inflight`` in flight
    inflight: int = 64
    overload_inflight: int = 1024
    fills: int = 200
    warmup: int = 300
    scale_orders: int = 20_000  # orders placed in the scaling run; 0 = skip it
    redis: str = ""  # also run the daemon rows on this Redis
    direct: bool = True  # ccxt and python-binance rows (the bench extra)
    workdir: str = ""  # keep logs here (default: a temporary directory)
    row_timeout_s: float = 240.0


@attrs.define
class Context:
    plan: Plan
    workdir: Path
    sim: procs.SimInfo
    report: Report

    def job(
        self,
        row: str,
        count: int,
        inflight: int = 1,
        *,
        warmup: int | None = None,
        daemon: procs.DaemonInfo | None = None,
        endpoint: str = "",
    ) -> Job:
        return Job(
            row=row,
            count=count,
            warmup=min(self.plan.warmup, count) if warmup is None else warmup,
            inflight=inflight,
            sim_url=self.sim.base_url,
            mark=self.sim.mark,
            ws_url=self.sim.ws_url,
            api_key=self.sim.api_key,
            api_secret=self.sim.api_secret,
            timeout_s=self.plan.row_timeout_s,
            endpoint=daemon.endpoint if daemon is not None else endpoint,
            events_endpoint=daemon.events_endpoint if daemon is not None else "",
        )

    async def run(self, label: str, job: Job) -> Result:
        bar = Bar(label, job.count)
        result = await procs.run_worker(job, self.workdir, bar.update)
        errors = {k: v for k, v in result.outcomes.items() if k != "ok"}
        bar.finish(f"errors: {errors}" if errors else "")
        return result

    async def row(self, name: str, job: Job, note: str = "") -> Result:
        result = await self.run(name, job)
        errors = {k: v for k, v in result.outcomes.items() if k != "ok"}
        summary = summarize(result.histogram(), result.wall_s)
        self.report.rows.append(Row(name, summary, job.inflight, errors, note=note))
        return result


@contextlib.asynccontextmanager
async def _workdir(plan: Plan) -> AsyncIterator[Path]:
    if plan.workdir:
        yield _make_dir(plan.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="oexec-bench-") as tmp:
        yield Path(tmp)


def _make_dir(path: str) -> Path:
    made = Path(path)
    made.mkdir(parents=True, exist_ok=True)
    return made


async def run(plan: Plan) -> Report:
    report = Report(machine=machine())
    started = time.monotonic()
    async with _workdir(plan) as workdir:
        sim = await procs.start_sim(workdir)
        ctx = Context(plan, workdir, sim, report)
        try:
            await _floors(ctx)
            if plan.direct:
                await _direct(ctx)
            for store in ("sqlite", plan.redis) if plan.redis else ("sqlite",):
                await _daemon_rows(ctx, store)
            if plan.scale_orders:
                await run_scaling(ctx, "sqlite")
        finally:
            await sim.child.stop()
    set_ratios(report.rows, {1: "ccxt create_order", plan.inflight: f"ccxt async ×{plan.inflight}"})
    report.targets = evaluate(report, plan.inflight)
    report.machine["load_average_at_end"] = list(os.getloadavg())
    report.machine["duration_s"] = round(time.monotonic() - started, 1)
    return report


async def _floors(ctx: Context) -> None:
    echo, endpoint = await procs.start_echo(ctx.workdir)
    try:
        await ctx.row(
            "floor: raw zmq round trip", ctx.job("zmq_floor", ctx.plan.orders, endpoint=endpoint)
        )
    finally:
        await echo.stop()
    result = await ctx.row("floor: signed aiohttp POST", ctx.job("http_floor", ctx.plan.orders))
    service = summarize(result.histogram("sim_service"), result.wall_s)
    ctx.report.facts["simulator service time"] = (
        f"p50 {service.p50_us} µs, p99 {service.p99_us} µs (X-Sim-Service-Time-Us)"
    )
    ctx.report.values["sim_service_p50_us"] = float(service.p50_us)


async def _direct(ctx: Context) -> None:
    plan = ctx.plan
    await ctx.row("ccxt create_order", ctx.job("ccxt", plan.orders))
    await ctx.row("python-binance futures_create_order", ctx.job("python_binance", plan.orders))
    await ctx.row(
        f"ccxt async ×{plan.inflight}", ctx.job("ccxt", plan.concurrent_orders, plan.inflight)
    )


async def _daemon_rows(ctx: Context, store: str) -> None:
    plan = ctx.plan
    label = "redis" if store != "sqlite" else "sqlite"
    prefix = f"oexec-bench-{uuid.uuid4().hex[:10]}:"
    daemon = await procs.start_daemon(
        ctx.sim, "" if store == "sqlite" else store, ctx.workdir, prefix
    )
    try:
        before = await stages.scrape(daemon.http_url)
        cpu_before = cpu_s(daemon.pid), cpu_s(ctx.sim.child.proc.pid)
        sync = await ctx.row(
            f"oexec Client ({label})", ctx.job("oexec_sync", plan.orders, daemon=daemon)
        )
        cpu_after = cpu_s(daemon.pid), cpu_s(ctx.sim.child.proc.pid)
        ctx.report.stages[label] = stages.mean_us(before, await stages.scrape(daemon.http_url))
        orders = max(1, plan.warmup + sum(sync.outcomes.values()))
        daemon_cpu, sim_cpu = (
            (b - a) / orders * 1e6 for a, b in zip(cpu_before, cpu_after, strict=True)
        )
        ctx.report.values[f"daemon_cpu_us_per_order_{label}"] = round(daemon_cpu, 1)
        ctx.report.facts[f"CPU per order, sync row ({label})"] = (
            f"daemon {daemon_cpu:.0f} µs, simulator {sim_cpu:.0f} µs (all threads, /proc)"
        )
        await ctx.row(
            f"oexec AsyncClient ×{plan.inflight} ({label})",
            ctx.job("oexec_async", plan.concurrent_orders, plan.inflight, daemon=daemon),
        )
        overload = await ctx.row(
            f"oexec overload ×{plan.overload_inflight}, accepted ({label})",
            ctx.job(
                "overload",
                min(plan.concurrent_orders, OVERLOAD_ORDERS),
                plan.overload_inflight,
                daemon=daemon,
            ),
        )
        busy = summarize(overload.histogram("BUSY"), overload.wall_s)
        lag = summarize(overload.histogram("lag"), overload.wall_s)
        ctx.report.facts[f"overload ({label})"] = (
            f"{busy.count} of {busy.count + overload.outcomes.get('ok', 0)} answered BUSY, "
            f"BUSY p50/p99/max {busy.p50_us}/{busy.p99_us}/{busy.max_us} µs; "
            f"the load generator's own timer lag p50/p99 {lag.p50_us}/{lag.p99_us} µs"
        )
        ctx.report.values[f"busy_p99_us_{label}"] = float(busy.p99_us)
        await ctx.row(
            f"fill event: stream → PUB ({label})",
            ctx.job("fill", plan.fills, warmup=10, daemon=daemon),
            note="sim's WebSocket send to the daemon's PUB subscriber",
        )
    finally:
        await daemon.child.stop()
        if store != "sqlite":
            await _delete_keys(store, prefix)


async def _delete_keys(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()
