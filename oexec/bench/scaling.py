"""Scaling of cost: latency with 100 vs ``scale_orders`` stored orders, and the daemon's RSS.

A fresh daemon (its own store) is measured right after its first orders, then filled
through the async client to 10,000 and to ``scale_orders`` orders (RSS read from
/proc at both points), then measured again with the same row. Every order of the mix
is terminal at once, so this grows stored orders, not open ones.

The readings right after a load include what the daemon still has to do: the fill
runs 64 orders in flight, faster than the daemon applies the venue's user-stream events
of those orders, so they wait in the stream's queue (~4 KB each: the event as decoded
JSON and parsed; 10,000-20,000 of them at the end of the bench's load, session 5 in
docs/bench.md). So the run also waits until the daemon is idle again and reads RSS then
(``rss_drained_mib``) and the peak (``rss_peak_mib``, VmHWM); the latency with
``scale_orders`` stored is measured after that wait, so it is not the backlog's.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from oexec.bench import procs
from oexec.bench.hist import summarize

if TYPE_CHECKING:
    from oexec.bench.runner import Context

PROBE_ORDERS = 1000
SEED_ORDERS = 100
RSS_FIRST = 10_000  # the first RSS reading; the second is at ``scale_orders``
#: The daemon is idle once it used less CPU than this in ``IDLE_POLL_S``; the wait for
#: that is bounded by ``DRAIN_TIMEOUT_S``.
IDLE_CPU_S = 0.03
IDLE_POLL_S = 0.5
DRAIN_TIMEOUT_S = 180.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (0 when /proc does not say).

    Why: on a shared 2-core host latencies move with other load; CPU per order does not.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident set size of ``pid`` in MiB (``field="VmHWM"``: its peak; 0 when /proc
    does not say)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def wait_idle(pid: int) -> float:
    """Wait until ``pid`` is idle (or ``DRAIN_TIMEOUT_S``); returns the seconds waited."""
    began = time.monotonic()
    last = cpu_s(pid)
    while time.monotonic() - began < DRAIN_TIMEOUT_S:
        await asyncio.sleep(IDLE_POLL_S)
        now = cpu_s(pid)
        if now - last < IDLE_CPU_S:
            break
        last = now
    return time.monotonic() - began


async def run_scaling(ctx: Context, store: str) -> None:
    plan = ctx.plan
    prefix = f"oexec-bench-{uuid.uuid4().hex[:10]}:"
    daemon = await procs.start_daemon(
        ctx.sim, store if store != "sqlite" else "", ctx.workdir, prefix
    )
    placed = 0
    probe = min(PROBE_ORDERS, plan.orders)
    first = min(RSS_FIRST, plan.scale_orders // 10)

    async def fill_to(total: int) -> None:
        nonlocal placed
        if total > placed:
            job = ctx.job("oexec_async", total - placed, plan.inflight, warmup=0, daemon=daemon)
            await ctx.run(f"scaling: place to {total}", job)
            placed = total

    try:
        small = await ctx.row(
            "scaling_100",
            ctx.job("oexec_sync", probe, warmup=SEED_ORDERS, daemon=daemon),
            store=store,
            stored=SEED_ORDERS,
        )
        placed = SEED_ORDERS + probe
        await fill_to(max(first, placed))
        rss_first = rss_mib(daemon.pid)
        await fill_to(max(plan.scale_orders, placed))
        rss_last = rss_mib(daemon.pid)
        drain_s = await wait_idle(daemon.pid)
        rss_drained = rss_mib(daemon.pid)
        rss_peak = rss_mib(daemon.pid, "VmHWM")
        large = await ctx.row(
            "scaling_n",
            ctx.job("oexec_sync", probe, warmup=SEED_ORDERS, daemon=daemon),
            store=store,
            stored=placed,
        )
    finally:
        await daemon.child.stop()
    p50_small = summarize(small.histogram(), small.wall_s).p50_us
    p50_large = summarize(large.histogram(), large.wall_s).p50_us
    values = {
        "scale_p50_small_us": float(p50_small),
        "scale_p50_large_us": float(p50_large),
        "scale_orders": float(placed),
        "rss_first_mib": rss_first,
        "rss_first_orders": float(first),
        "rss_last_mib": rss_last,
        "rss_drained_mib": rss_drained,
        "rss_peak_mib": rss_peak,
        "drain_s": drain_s,
    }
    ctx.report.values.update(values)
    ctx.report.facts["scaling"] = (
        f"p50 {p50_small} µs with {SEED_ORDERS} stored, {p50_large} µs with {placed:,} "
        f"(×{p50_large / max(1, p50_small):.2f}); daemon RSS {rss_first:.1f} MiB at "
        f"{first:,} orders, {rss_last:.1f} MiB at {placed:,} ({rss_drained:.1f} MiB once idle "
        f"after {drain_s:.0f} s; peak {rss_peak:.1f} MiB)"
    )
