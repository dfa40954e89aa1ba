"""``python -m oexec.bench.worker``: one load generator (or the echo server) per process.

Reads one Job as JSON from stdin's first line, runs its row, prints ``P <done>`` lines
while running and ``R <result json>`` at the end. Async rows run on uvloop when it is
installed, like the daemon, so no row gets a faster event loop than another.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

from oexec.bench.job import Job, Result

RowFn = Callable[[Job, Callable[[int], None]], Any]


def rows() -> dict[str, RowFn]:
    """Row name -> its load function (imported here so each process loads only its own)."""
    from oexec.bench import direct, fills, oexec_rows, paired

    return {
        "zmq_echo": oexec_rows.zmq_echo_server,
        "zmq_floor": oexec_rows.zmq_floor_row,
        "http_floor": direct.http_floor_row,
        "ccxt": direct.ccxt_row,
        "ccxt_ws": direct.ccxt_ws_row,
        "python_binance": direct.python_binance_row,
        "oexec_sync": oexec_rows.oexec_sync_row,
        "oexec_async": oexec_rows.oexec_async_row,
        "overload": oexec_rows.overload_row,
        "fill": fills.fill_row,
        "paced": paired.paced_row,
        "paced_ws": paired.paced_row,  # the same row; its sides are oexec (ws daemon), ccxt_ws
        "ladder": paired.ladder_row,
    }


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed, else asyncio's (``OEXEC_BENCH_LOOP=asyncio`` forces
    asyncio's, to measure what uvloop buys)."""
    if os.environ.get("OEXEC_BENCH_LOOP") == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def progress(done: int) -> None:
    print(f"P {done}", flush=True)


def run_job(job: Job) -> Result:
    fn = rows()[job.row]
    if not inspect.iscoroutinefunction(fn):
        result: Result = fn(job, progress)
        return result
    loop = new_event_loop()
    try:
        done: Result = loop.run_until_complete(asyncio.wait_for(fn(job, progress), job.timeout_s))
        return done
    finally:
        loop.close()


def main() -> int:
    job = Job.from_json(sys.stdin.readline())
    result = run_job(job)
    print(f"R {result.to_json().decode()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
