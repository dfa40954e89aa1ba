"""One bench run: start the processes, run every row in turn, stop everything.

Rows run one after another (never two load generators at once) against one simulator,
so every row sees the same venue. Order: the floors, the direct libraries, then per
store a fresh daemon with its rows, then the scaling run on a daemon of its own. The
paced and ladder rows run oexec and ccxt in turns in one load generator (paired.py):
on each store's daemon, with ccxt's turns of every store merged into its one row. The
table is then sorted by kinds.py, whatever order the rows ran in.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs

from oexec.bench import procs, stages
from oexec.bench.hist import summarize
from oexec.bench.job import Job, Result
from oexec.bench.kinds import BY_NAME, DIRECT, KINDS, PER_STORE, SCALING
from oexec.bench.progress import Bar
from oexec.bench.report import Report, Row, machine, set_ratios
from oexec.bench.scaling import cpu_s, run_scaling
from oexec.bench.targets import evaluate, own_time_us

OVERLOAD_ORDERS = 5000  # past saturation every order costs seconds: keep the row short
LADDER = 20  # orders per ladder (the kinds' "ladder20")

#: Rows run in turns (paired.py): worker row -> side -> the kind of that side's row.
PAIRED: dict[str, dict[str, str]] = {
    "paced": {"oexec": "oexec_paced", "ccxt": "ccxt_paced"},
    "ladder": {"oexec": "oexec_ladder20", "ccxt": "ccxt_ladder20"},
}
#: The same, on a daemon whose orders go over the venue's WebSocket API, against ccxt.pro
#: over the WebSocket API (issue 18).
WS_PAIRED: dict[str, dict[str, str]] = {
    "paced_ws": {"oexec": "oexec_paced_ws", "ccxt_ws": "ccxt_paced_ws"},
}
ALL_PAIRED = PAIRED | WS_PAIRED
WS_DAEMON_KINDS = ("oexec_sync_ws", "oexec_paced_ws")


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
    rate: float = 20.0  # paced rows: mean orders/s (Poisson arrivals)
    paced_orders: int = 1000  # per side and store: ≈ 2 × this / rate seconds per store
    ladders: int = 200  # per side and store
    kinds: frozenset[str] = frozenset()  # the rows to run (kinds.py); empty: every one

    def wants(self, kind: str) -> bool:
        if self.kinds and kind not in self.kinds:
            return False
        return self.direct or not BY_NAME[kind].direct


@attrs.define
class Context:
    plan: Plan
    workdir: Path
    sim: procs.SimInfo
    report: Report
    #: ccxt's turns of the paired rows, merged over the stores: kind -> (samples, size).
    direct_parts: dict[str, tuple[Result, int]] = attrs.field(factory=dict)

    def job(
        self,
        row: str,
        count: int,
        inflight: int = 1,
        *,
        warmup: int | None = None,
        daemon: procs.DaemonInfo | None = None,
        endpoint: str = "",
        sides: tuple[str, ...] = (),
    ) -> Job:
        """A load generator's job. Direct clients trade on the simulator's direct account;
        the fill row watches the daemon's account's user stream."""
        key, secret = (
            (self.sim.api_key, self.sim.api_secret)
            if row == "fill"
            else (self.sim.direct_api_key, self.sim.direct_api_secret)
        )
        return Job(
            row=row,
            count=count,
            warmup=min(self.plan.warmup, count) if warmup is None else warmup,
            inflight=inflight,
            sim_url=self.sim.base_url,
            mark=self.sim.mark,
            ws_url=self.sim.ws_url,
            api_key=key,
            api_secret=secret,
            timeout_s=self.plan.row_timeout_s,
            endpoint=daemon.endpoint if daemon is not None else endpoint,
            events_endpoint=daemon.events_endpoint if daemon is not None else "",
            rate=self.plan.rate,
            sides=sides,
        )

    def title(self, kind: str, store: str | None = None, **values: Any) -> str:
        plan = self.plan
        return BY_NAME[kind].title.format(
            **{
                "inflight": plan.inflight,
                "overload": plan.overload_inflight,
                "rate": plan.rate,
                "ladder": LADDER,
                "store": store or "",
                **values,
            }
        )

    async def run(self, label: str, job: Job) -> Result:
        bar = Bar(label, job.count)
        result = await procs.run_worker(job, self.workdir, bar.update)
        errors = {k: v for k, v in result.outcomes.items() if k.rpartition(":")[2] != "ok"}
        bar.finish(f"errors: {errors}" if errors else "")
        return result

    def add_row(
        self,
        kind: str,
        result: Result,
        *,
        store: str | None = None,
        concurrency: int = 1,
        note: str = "",
        orders_per_sample: int = 1,
        **title: Any,
    ) -> Row:
        """The row of ``kind`` from ``result``'s ``main`` histogram; ``orders_per_sample``
        > 1 for a row whose sample is a batch (a ladder), so ops/s counts orders."""
        errors = {k: v for k, v in result.outcomes.items() if k != "ok"}
        summary = summarize(result.histogram(), result.wall_s)
        summary = attrs.evolve(summary, ops_per_s=summary.ops_per_s * orders_per_sample)
        name = self.title(kind, store, **title)
        row = Row(name, summary, concurrency, errors, note=note, kind=kind, store=store)
        self.report.rows.append(row)
        return row

    async def row(
        self, kind: str, job: Job, *, store: str | None = None, note: str = "", **title: Any
    ) -> Result:
        result = await self.run(self.title(kind, store, **title), job)
        self.add_row(kind, result, store=store, concurrency=job.inflight, note=note, **title)
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


def _wants_section(plan: Plan, section: int) -> bool:
    return any(plan.wants(k.name) for k in KINDS if k.section == section)


async def run(plan: Plan) -> Report:
    report = Report(machine=machine())
    started = time.monotonic()
    async with _workdir(plan) as workdir:
        sim = await procs.start_sim(workdir)
        ctx = Context(plan, workdir, sim, report)
        try:
            await _floors(ctx)
            await _direct(ctx)
            if _wants_section(plan, PER_STORE):
                for store in ("sqlite", plan.redis) if plan.redis else ("sqlite",):
                    await _daemon_rows(ctx, store)
            for row in ALL_PAIRED:  # direct sides whose oexec side was not asked for
                if not any(plan.wants(k) for k in _store_kinds(row)):
                    await _paired(ctx, row)
            _direct_rows(ctx)
            if plan.scale_orders and _wants_section(plan, SCALING):
                await run_scaling(ctx, "sqlite")
        finally:
            await sim.child.stop()
    report.sort_rows()
    set_ratios(report.rows)
    own = own_time_us(report)
    if own is not None:
        report.facts["daemon's own time p50 (sqlite)"] = own[1]
    report.targets = evaluate(report)
    report.machine["load_average_at_end"] = list(os.getloadavg())
    report.machine["duration_s"] = round(time.monotonic() - started, 1)
    return report


async def _floors(ctx: Context) -> None:
    if ctx.plan.wants("floor_zmq"):
        echo, endpoint = await procs.start_echo(ctx.workdir)
        try:
            await ctx.row("floor_zmq", ctx.job("zmq_floor", ctx.plan.orders, endpoint=endpoint))
        finally:
            await echo.stop()
    if not ctx.plan.wants("floor_http"):
        return
    result = await ctx.row("floor_http", ctx.job("http_floor", ctx.plan.orders))
    service = summarize(result.histogram("sim_service"), result.wall_s)
    ctx.report.facts["simulator service time"] = (
        f"p50 {service.p50_us} µs, p99 {service.p99_us} µs (X-Sim-Service-Time-Us)"
    )
    ctx.report.values["sim_service_p50_us"] = float(service.p50_us)


async def _direct(ctx: Context) -> None:
    plan = ctx.plan
    if plan.wants("ccxt"):
        await ctx.row("ccxt", ctx.job("ccxt", plan.orders))
    if plan.wants("python_binance"):
        await ctx.row("python_binance", ctx.job("python_binance", plan.orders))
    if plan.wants("ccxt_async64"):
        await ctx.row("ccxt_async64", ctx.job("ccxt", plan.concurrent_orders, plan.inflight))
    if plan.wants("ccxt_ws"):
        await ctx.row("ccxt_ws", ctx.job("ccxt_ws", plan.orders))


def _store_kinds(row: str) -> list[str]:
    return [k for k in ALL_PAIRED[row].values() if BY_NAME[k].section == PER_STORE]


async def _paired(
    ctx: Context, row: str, daemon: procs.DaemonInfo | None = None, store: str | None = None
) -> None:
    """One paired row (paired.py): the oexec side on ``daemon`` (none without one) and
    the direct sides, in turns. The oexec side becomes its row now, each direct side is
    merged into its kind's samples (a row after the last store)."""
    plan = ctx.plan
    sides = {
        side: kind
        for side, kind in ALL_PAIRED[row].items()
        if plan.wants(kind) and (daemon is not None or BY_NAME[kind].section == DIRECT)
    }
    if not sides or (daemon is not None and not set(sides.values()) & set(_store_kinds(row))):
        return
    size = LADDER if row == "ladder" else 1
    count = plan.ladders if row == "ladder" else plan.paced_orders
    label = f"{row}: {' and '.join(sides)}" + (f" ({store})" if store else "")
    job = ctx.job(row, count, size, daemon=daemon, sides=tuple(sides))
    result = await ctx.run(label, job)
    for side, kind in sides.items():
        part = result.side(side)
        if BY_NAME[kind].section == PER_STORE:
            _paired_row(ctx, kind, part, size, store)
        elif kind in ctx.direct_parts:
            ctx.direct_parts[kind][0].merge(part)
        else:
            ctx.direct_parts[kind] = (part, size)


def _paired_row(ctx: Context, kind: str, part: Result, size: int, store: str | None) -> None:
    row = ctx.add_row(kind, part, store=store, concurrency=size, orders_per_sample=size)
    if part.extra.get("late"):
        where = f"{kind}, {store}" if store else kind
        ctx.report.facts[f"paced arrivals sent late ({where})"] = (
            f"{part.extra['late']:.0f} of {row.summary.count}, "
            "due while the previous order was still out"
        )


def _direct_rows(ctx: Context) -> None:
    for kind, (part, size) in ctx.direct_parts.items():
        _paired_row(ctx, kind, part, size, None)


async def _daemon_rows(ctx: Context, store: str) -> None:
    plan = ctx.plan
    label = "redis" if store != "sqlite" else "sqlite"
    prefix = f"oexec-bench-{uuid.uuid4().hex[:10]}:"
    daemon = await procs.start_daemon(
        ctx.sim, "" if store == "sqlite" else store, ctx.workdir, prefix
    )
    try:
        if plan.wants("oexec_sync"):
            before = await stages.scrape(daemon.http_url)
            sim_before = cpu_s(ctx.sim.child.proc.pid)
            sync = await _measured(ctx, daemon, label, "oexec_sync", "oexec_sync", plan.orders, 1)
            ctx.report.stages[label] = stages.mean_us(before, await stages.scrape(daemon.http_url))
            orders = max(1, plan.warmup + sum(sync.outcomes.values()))
            sim_cpu = (cpu_s(ctx.sim.child.proc.pid) - sim_before) / orders * 1e6
            daemon_cpu = ctx.report.rows[-1].daemon_cpu_us_per_order or 0.0
            ctx.report.values[f"daemon_cpu_us_per_order_{label}"] = daemon_cpu
            ctx.report.facts[f"CPU per order, sync row ({label})"] = (
                f"daemon {daemon_cpu:.0f} µs, simulator {sim_cpu:.0f} µs (all threads, /proc)"
            )
        for row in PAIRED:
            await _paired(ctx, row, daemon, label)
        if plan.wants("oexec_async64"):
            await _measured(
                ctx, daemon, label, "oexec_async64", "oexec_async", plan.concurrent_orders
            )
        if plan.wants("overload"):
            await _overload(ctx, daemon, label)
        if plan.wants("fill"):
            await ctx.row(
                "fill",
                ctx.job("fill", plan.fills, warmup=10, daemon=daemon),
                store=label,
                note="sim's WebSocket send to the daemon's PUB subscriber",
            )
    finally:
        await daemon.child.stop()
        if store != "sqlite":
            await _delete_keys(store, prefix)
    if any(plan.wants(kind) for kind in WS_DAEMON_KINDS):
        await _ws_daemon_rows(ctx, store)


async def _ws_daemon_rows(ctx: Context, store: str) -> None:
    """A fresh daemon with ``[venue] order_transport = "ws"``: the sync row and the paced
    row against ccxt.pro's ``create_order_ws`` (issue 18's target: ≤ 1.0× it)."""
    plan = ctx.plan
    label = "redis" if store != "sqlite" else "sqlite"
    prefix = f"oexec-bench-{uuid.uuid4().hex[:10]}:"
    daemon = await procs.start_daemon(
        ctx.sim, "" if store == "sqlite" else store, ctx.workdir, prefix, order_transport="ws"
    )
    try:
        if plan.wants("oexec_sync_ws"):
            before = await stages.scrape(daemon.http_url)
            await _measured(ctx, daemon, label, "oexec_sync_ws", "oexec_sync", plan.orders, 1)
            after = await stages.scrape(daemon.http_url)
            ctx.report.stages[f"{label}, venue over WebSocket API"] = stages.mean_us(before, after)
        for row in WS_PAIRED:
            await _paired(ctx, row, daemon, label)
    finally:
        await daemon.child.stop()
        if store != "sqlite":
            await _delete_keys(store, prefix)


async def _measured(
    ctx: Context,
    daemon: procs.DaemonInfo,
    store: str,
    kind: str,
    worker_row: str,
    count: int,
    inflight: int | None = None,
) -> Result:
    """A closed-loop row with the daemon's CPU per order over it (/proc, all threads)."""
    job = ctx.job(worker_row, count, inflight or ctx.plan.inflight, daemon=daemon)
    before = cpu_s(daemon.pid)
    result = await ctx.row(kind, job, store=store)
    orders = max(1, job.warmup + sum(result.outcomes.values()))
    ctx.report.rows[-1].daemon_cpu_us_per_order = round(
        (cpu_s(daemon.pid) - before) / orders * 1e6, 1
    )
    return result


async def _overload(ctx: Context, daemon: procs.DaemonInfo, store: str) -> None:
    plan = ctx.plan
    count = min(plan.concurrent_orders, OVERLOAD_ORDERS)
    job = ctx.job("overload", count, plan.overload_inflight, daemon=daemon)
    overload = await ctx.row("overload", job, store=store)
    busy = summarize(overload.histogram("BUSY"), overload.wall_s)
    lag = summarize(overload.histogram("lag"), overload.wall_s)
    ctx.report.facts[f"overload ({store})"] = (
        f"{busy.count} of {busy.count + overload.outcomes.get('ok', 0)} answered BUSY, "
        f"BUSY p50/p99/max {busy.p50_us}/{busy.p99_us}/{busy.max_us} µs; "
        f"the load generator's own timer lag p50/p99 {lag.p50_us}/{lag.p99_us} µs"
    )
    ctx.report.values[f"busy_p99_us_{store}"] = float(busy.p99_us)


async def _delete_keys(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()
