"""``oexec bench``: oexec end to end against ccxt, python-binance and the raw floors.

Starts the simulator, the daemon and one load generator per row, each in its own
process, prints one table (docs/bench.md explains how to read it) and, with ``--json``,
writes it machine-readably. ccxt and python-binance come with the ``bench`` extra;
without them ``--no-direct`` still measures oexec and the floors.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure oexec against ccxt, python-binance and the raw floors",
        description="Benchmark oexec end to end on the bundled simulator (docs/bench.md).",
    )
    parser.add_argument("--orders", type=int, default=3000, help="orders per one-in-flight row")
    parser.add_argument(
        "--concurrent-orders", type=int, default=10000, help="orders per concurrent row"
    )
    parser.add_argument("--inflight", type=int, default=64, help="concurrency of those rows")
    parser.add_argument(
        "--overload", type=int, default=1024, help="requests kept in flight by the overload row"
    )
    parser.add_argument(
        "--rate", type=float, default=20.0, help="paced rows: mean orders/s (Poisson arrivals)"
    )
    parser.add_argument(
        "--paced-orders", type=int, default=1000, help="orders per side of a paced row"
    )
    parser.add_argument("--ladders", type=int, default=200, help="ladders per side of a ladder row")
    parser.add_argument("--fills", type=int, default=200, help="fill events to time")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured orders per row")
    parser.add_argument(
        "--scale", type=int, default=20_000, help="orders placed in the scaling run; 0 = skip"
    )
    parser.add_argument(
        "--store", metavar="URL", default="", help="also run the daemon rows on this Redis"
    )
    parser.add_argument("--no-direct", action="store_true", help="skip ccxt and python-binance")
    parser.add_argument(
        "--kinds",
        metavar="K,...",
        default="",
        help="run only these row kinds, or parts of their names (e.g. paced,ladder,oexec_sync)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--workdir", help="keep configs and process logs here")
    parser.add_argument("--quick", action="store_true", help="a few seconds: smoke-test sizes")
    parser.set_defaults(func=cmd_bench)


def plan_from(args: argparse.Namespace) -> Any:
    from oexec.bench.kinds import select
    from oexec.bench.runner import Plan

    if args.quick:
        sizes = dict(
            orders=200,
            concurrent_orders=500,
            overload_inflight=512,
            fills=10,
            warmup=20,
            paced_orders=60,
            ladders=10,
        )
        scale = min(args.scale, 1000)
    else:
        sizes = dict(
            orders=args.orders,
            concurrent_orders=args.concurrent_orders,
            overload_inflight=args.overload,
            fills=args.fills,
            warmup=args.warmup,
            paced_orders=args.paced_orders,
            ladders=args.ladders,
        )
        scale = args.scale
    return Plan(
        inflight=args.inflight,
        scale_orders=scale,
        redis=args.store,
        direct=not args.no_direct,
        workdir=args.workdir or "",
        rate=args.rate,
        kinds=select(args.kinds.split(",")),
        **sizes,
    )


def missing_extra() -> list[str]:
    wanted = {"ccxt": "ccxt", "binance": "python-binance", "hdrh": "hdrhistogram"}
    return [dist for module, dist in wanted.items() if importlib.util.find_spec(module) is None]


def cmd_bench(args: argparse.Namespace) -> int:
    missing = missing_extra()
    if "hdrhistogram" in missing or (missing and not args.no_direct):
        print(
            f"oexec bench: missing {', '.join(missing)}; install the extra: "
            "pip install 'oexec[bench]' (or pass --no-direct to skip ccxt/python-binance)",
            file=sys.stderr,
        )
        return 2
    if args.store and not args.store.startswith(("redis://", "rediss://", "unix://")):
        print("oexec bench: --store takes a redis:// URL", file=sys.stderr)
        return 2
    if args.rate <= 0:
        print("oexec bench: --rate must be above 0", file=sys.stderr)
        return 2
    from oexec.bench.report import render
    from oexec.bench.runner import run

    try:
        plan = plan_from(args)
    except ValueError as exc:
        print(f"oexec bench: --kinds: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(run(plan))
    print(render(report))
    if args.json:
        Path(args.json).write_bytes(report.to_json())
    return 0
