"""The soak run behind scripts/soak: a steady order rate for a bounded time, sampled.

``python -m tests.reliability.soak --rate 10 --duration 300 --every 10`` starts its own
redis-server, the simulator host and ``oexec run`` (all on 127.0.0.1), then paces
``rate`` orders per second from four clients: resting LIMIT orders cancelled again a
moment later and MARKET orders that fill, so the open book stays small. Every
``every`` seconds it prints one row: orders done, the daemon's RSS, and from /metrics
requests in flight, requests queued, open orders and unknown outcomes. It passes when,
after the first quarter (warm-up), RSS grows less than ``--rss-slack-mib`` and no queue
grows: the last samples' queue depths are no higher than the early ones' maximum.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import attrs

from oexec.client import AsyncClient, ClientError

from .procs import DaemonProc, RedisServer, SimHost

GAUGES = ("requests_in_flight", "requests_queued", "open_orders", "orders_unknown_outcome")
_LINE = re.compile(r"^(?:\w*?_)?(" + "|".join(GAUGES) + r")(?:\{[^}]*\})? ([0-9.eE+-]+)$")


MARKET = {"symbol": "ETHUSDT", "type": "MARKET", "quantity": "0.010"}
RESTING = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010",
           "price": "2700.00", "time_in_force": "GTC"}  # fmt: skip


@attrs.define
class Sample:
    at_s: float
    done: int
    errors: int
    rss_mib: float
    gauges: dict[str, float]


def scrape(text: str) -> dict[str, float]:
    """Sum each gauge of GAUGES over its labels in a Prometheus text exposition."""
    sums = dict.fromkeys(GAUGES, 0.0)
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            sums[match.group(1)] += float(match.group(2))
    return sums


async def _pace(endpoint: str, rate: float, until: float, counts: dict[str, int], n: int) -> None:
    rng = random.Random(n)
    period = 4 / rate  # four clients share the rate
    async with AsyncClient(endpoint, timeout_s=5.0) as client:
        next_at = time.monotonic()
        seq = 0
        while time.monotonic() < until:
            seq += 1
            rid = f"soak{n}-{seq}"
            try:
                side = rng.choice(["BUY", "SELL"])
                if rng.random() < 0.3:
                    await client.place_order(**MARKET, side=side, request_id=rid)
                else:
                    await client.place_order(**RESTING, request_id=rid)
                    await client.cancel_order(request_id=rid)
                counts["done"] += 1
            except ClientError as exc:
                counts["errors"] += 1
                counts[f"error:{exc.code}"] = counts.get(f"error:{exc.code}", 0) + 1
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


def _metrics(daemon: DaemonProc) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(daemon.http_url + "/metrics", timeout=5) as response:
        return scrape(response.read().decode())


async def soak(rate: float, duration_s: float, every_s: float, workdir: Path) -> list[Sample]:
    redis, sim = RedisServer(workdir), SimHost(workdir)
    redis.start()
    sim.start()
    daemon = DaemonProc(workdir, sim, store=redis.url, log_level="WARNING")
    samples: list[Sample] = []
    try:
        daemon.start()
        started = time.monotonic()
        counts = {"done": 0, "errors": 0}
        clients = [
            asyncio.create_task(_pace(daemon.endpoint, rate, started + duration_s, counts, n))
            for n in range(4)
        ]
        print(f"{'t s':>6} {'orders':>7} {'errors':>6} {'rss MiB':>8} "
              + " ".join(f"{g:>22}" for g in GAUGES), flush=True)  # fmt: skip
        while not all(c.done() for c in clients):
            await asyncio.sleep(every_s)
            gauges = await asyncio.to_thread(_metrics, daemon)
            sample = Sample(
                round(time.monotonic() - started, 1),
                counts["done"],
                counts["errors"],
                daemon.rss() / 2**20,
                gauges,
            )
            samples.append(sample)
            print(f"{sample.at_s:>6.0f} {sample.done:>7} {sample.errors:>6} "
                  f"{sample.rss_mib:>8.1f} "
                  + " ".join(f"{gauges[g]:>22.0f}" for g in GAUGES), flush=True)  # fmt: skip
        await asyncio.gather(*clients)
        kinds = {k.removeprefix("error:"): v for k, v in counts.items() if k.startswith("error:")}
        if kinds:
            print(f"errors by code: {kinds}", flush=True)
    finally:
        daemon.stop()
        sim.stop()
        redis.stop()
    return samples


def verdict(samples: list[Sample], rss_slack_mib: float) -> tuple[bool, str]:
    """Flat memory after warm-up, and no queue deeper at the end than early on."""
    if len(samples) < 4:
        return False, "too few samples"
    warm = samples[len(samples) // 4 :]
    rss_growth = warm[-1].rss_mib - warm[0].rss_mib
    early, late = warm[: len(warm) // 2], warm[len(warm) // 2 :]
    growing = [
        g
        for g in ("requests_queued", "requests_in_flight", "orders_unknown_outcome", "open_orders")
        if max(s.gauges[g] for s in late[-2:]) > max(max(s.gauges[g] for s in early), 1.0)
    ]
    ok = rss_growth < rss_slack_mib and not growing
    return ok, (
        f"RSS after warm-up {warm[0].rss_mib:.1f} -> {warm[-1].rss_mib:.1f} MiB "
        f"({rss_growth:+.1f}); growing gauges: {growing or 'none'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="soak")
    parser.add_argument("--rate", type=float, default=10.0, help="orders per second")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds")
    parser.add_argument("--every", type=float, default=10.0, help="sample period, seconds")
    parser.add_argument("--rss-slack-mib", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oexec-soak-") as tmp:
        samples = asyncio.run(soak(args.rate, args.duration, args.every, Path(tmp)))
    ok, summary = verdict(samples, args.rss_slack_mib)
    print(f"{summary}; {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
