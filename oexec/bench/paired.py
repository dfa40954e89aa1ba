"""Rows where oexec and ccxt take turns in one load generator: paced and ladder.

Why in turns, in one process: these rows compare what a strategy sees through oexec with
what it sees calling ccxt itself, and on a shared 2-core host the noise of the minute
(another process's burst) moves whichever side runs then. Alternating short turns
spreads that noise over both sides; both run on the same event loop (uvloop when
installed) against the same simulator. The daemon idles during ccxt's turns: the bench
gives the direct clients a simulator account of their own (procs.SIM_CONFIG), so their
user-stream events never reach the daemon.

* paced: Poisson arrivals at ``job.rate`` orders/s, one order at a time, as a strategy
  reacting to the market sends them; PACED_BLOCK arrivals per turn. An arrival due
  while the previous order is still out is sent when it returns (counted in
  ``extra["<side>_late"]``); the latency recorded is the call's, not that wait. Each
  turn's schedule starts no earlier than the turn, so one side's overrun never makes
  the other send back to back.
* ladder: ``job.inflight`` orders sent at once (``asyncio.gather`` of place_order or
  create_order), timed until the last is answered; sides alternate per ladder with
  LADDER_GAP_S of quiet after each, so every ladder starts from an idle daemon, as a
  ladder placed on a signal does.

Histograms and outcomes are named ``<side>`` and ``<side>:<outcome>``, and
``extra["<side>_wall_s"]`` is the time spent in that side's turns; ``Result.side``
splits them into one Result per side. A new side (another transport, another library)
is one entry in :data:`SIDES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable

from oexec.bench.direct import ccxt_caller, ccxt_ws_caller, open_ccxt, open_ccxt_ws
from oexec.bench.hist import record_us
from oexec.bench.job import Call, Job, Progress, Result
from oexec.bench.oexec_rows import async_caller
from oexec.client import AsyncClient

#: Arrivals per turn: ≈ 1 s at 20/s; a multiple of the mix's 4 orders keeps the
#: position flat.
PACED_BLOCK = 20
#: Unmeasured orders per side before the paced turns, sent back to back (connections,
#: caches); at most ``job.warmup``.
PACED_WARMUP = 20
#: Unmeasured ladders per side; at most ``job.warmup``.
LADDER_WARMUP = 3
LADDER_GAP_S = 0.05
#: The arrival times are the same in every run.
SEED = 14


@contextlib.asynccontextmanager
async def _oexec_side(job: Job) -> AsyncIterator[Call]:
    async with AsyncClient(job.endpoint, timeout_s=job.timeout_s, retries=0) as client:
        yield async_caller(client, job)


@contextlib.asynccontextmanager
async def _ccxt_side(job: Job) -> AsyncIterator[Call]:
    async with open_ccxt(job) as exchange:
        yield ccxt_caller(exchange, job)


@contextlib.asynccontextmanager
async def _ccxt_ws_side(job: Job) -> AsyncIterator[Call]:
    async with open_ccxt_ws(job) as exchange:
        yield ccxt_ws_caller(exchange, job)


#: Side name -> how to open it: an async context manager yielding ``call(i)``.
SIDES: dict[str, Callable[[Job], contextlib.AbstractAsyncContextManager[Call]]] = {
    "oexec": _oexec_side,
    "ccxt": _ccxt_side,
    "ccxt_ws": _ccxt_ws_side,
}


@contextlib.asynccontextmanager
async def open_sides(job: Job) -> AsyncIterator[dict[str, Call]]:
    """Every side of ``job.sides`` opened (ValueError for an unknown one), closed after."""
    unknown = set(job.sides) - set(SIDES)
    if unknown or not job.sides:
        raise ValueError(f"sides must be some of {sorted(SIDES)}, got {job.sides!r}")
    async with contextlib.AsyncExitStack() as stack:
        yield {side: await stack.enter_async_context(SIDES[side](job)) for side in job.sides}


def _record(result: Result, side: str, outcome: str, seconds: float) -> None:
    record_us(result.histogram(side if outcome == "ok" else f"{side}:{outcome}"), seconds)
    result.count(f"{side}:{outcome}")


def _add(extra: dict[str, float], key: str, amount: float = 1.0) -> None:
    extra[key] = extra.get(key, 0.0) + amount


async def paced_row(job: Job, progress: Progress) -> Result:
    """``job.count`` paced orders per side, in turns of PACED_BLOCK arrivals."""
    result = Result()
    arrivals = random.Random(SEED)
    loop = asyncio.get_running_loop()
    async with open_sides(job) as calls:
        for call in calls.values():
            for i in range(min(job.warmup, PACED_WARMUP)):
                await call(i)
        result.measuring = True
        done = dict.fromkeys(calls, 0)
        turns = itertools.cycle(calls)
        due = loop.time()
        started = time.perf_counter()
        while any(n < job.count for n in done.values()):
            side = next(turns)
            turn_started = time.perf_counter()
            # a side that overran the schedule does not make the next one's turn late
            due = max(due, loop.time())
            for _ in range(min(PACED_BLOCK, job.count - done[side])):
                due += arrivals.expovariate(job.rate)
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    _add(result.extra, f"{side}_late")
                sent = time.perf_counter()
                outcome = await calls[side](done[side])
                _record(result, side, outcome, time.perf_counter() - sent)
                done[side] += 1
            _add(result.extra, f"{side}_wall_s", time.perf_counter() - turn_started)
            progress(sum(done.values()) // len(done))
        result.wall_s = time.perf_counter() - started
    return result


async def _ladder(call: Call, size: int) -> tuple[float, list[str]]:
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(call(i) for i in range(size)))
    return time.perf_counter() - started, list(outcomes)


async def ladder_row(job: Job, progress: Progress) -> Result:
    """``job.count`` ladders of ``job.inflight`` orders per side, sides in turns."""
    result = Result()
    size = max(1, job.inflight)
    async with open_sides(job) as calls:
        for _ in range(min(job.warmup, LADDER_WARMUP)):
            for call in calls.values():
                await _ladder(call, size)
                await asyncio.sleep(LADDER_GAP_S)
        result.measuring = True
        started = time.perf_counter()
        for ladder in range(job.count):
            for side, call in calls.items():
                seconds, outcomes = await _ladder(call, size)
                failed = next((o for o in outcomes if o != "ok"), "ok")
                record_us(result.histogram(side if failed == "ok" else f"{side}:{failed}"), seconds)
                for outcome in outcomes:
                    result.count(f"{side}:{outcome}")
                _add(result.extra, f"{side}_wall_s", seconds)
                await asyncio.sleep(LADDER_GAP_S)
            if (ladder + 1) % 10 == 0:
                progress(ladder + 1)
        result.wall_s = time.perf_counter() - started
    progress(job.count)
    return result
