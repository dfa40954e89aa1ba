"""The long seeded random-bytes fuzz run behind scripts/fuzz.

``python -m tests.reliability.fuzz_run --messages N --seed S`` starts the simulator host
and ``oexec run``, sends N random messages (fuzzgen.random_messages), checks every reply
(wireprobe.check_reply), samples the daemon's RSS ten times and prints a table, then
checks the venue saw no order traffic. Exit 0 when every property held.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from . import fuzzgen
from .procs import DaemonProc, SimHost
from .test_fuzz_wire import venue_footprint
from .wireprobe import WireProbe


def run(messages: int, seed: int, workdir: Path) -> bool:
    sim = SimHost(workdir)
    sim.start()
    daemon = DaemonProc(workdir, sim)
    try:
        daemon.start()
        before = venue_footprint(sim)
        probe = WireProbe(daemon.endpoint)
        step = max(1, messages // 10)
        started = time.monotonic()
        print(f"{'sent':>9} {'msg/s':>7} {'rss MiB':>8}  replies by code", flush=True)
        rss = [daemon.rss()]
        for n, frames in enumerate(fuzzgen.random_messages(seed, messages), start=1):
            probe.call(frames)
            if n % step == 0 or n == messages:
                rss.append(daemon.rss())
                rate = n / (time.monotonic() - started)
                codes = ", ".join(f"{k}={v}" for k, v in probe.codes.most_common(5))
                print(f"{n:>9} {rate:>7.0f} {rss[-1] / 2**20:>8.1f}  {codes}", flush=True)
        probe.close()
        untouched = venue_footprint(sim) == before
        alive = daemon.alive()
    finally:
        daemon.stop()
        sim.stop()
    growth = (rss[-1] - rss[1]) / 2**20 if len(rss) > 2 else 0.0
    print(
        f"seed {seed}: {messages} messages, every reply typed; daemon alive: {alive}; "
        f"venue untouched: {untouched}; ok place_order replies: {probe.ok_place_orders}; "
        f"RSS growth after the first sample: {growth:+.1f} MiB"
    )
    return alive and untouched and probe.ok_place_orders == 0 and growth < 16


def main() -> int:
    parser = argparse.ArgumentParser(prog="fuzz_run")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oexec-fuzz-") as tmp:
        return 0 if run(args.messages, args.seed, Path(tmp)) else 1


if __name__ == "__main__":
    sys.exit(main())
