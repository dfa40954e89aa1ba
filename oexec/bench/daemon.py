"""``python -m oexec.bench.daemon CONFIG PREFIX``: the daemon under test, in its own process.

The same ``Daemon`` with the same config loading, logging and secret redaction as
``oexec run``; it differs only where a bench must: the store key prefix is unique per
run (a Redis given with ``--store`` may be shared, and the bench deletes its own keys
afterwards), the OS-assigned endpoints are printed once bound (``READY <front>
<events> <http> <pid>``), and it stops when its stdin closes, so a killed bench never
leaves it behind.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from oexec.bench.worker import new_event_loop


async def serve(config_path: str, prefix: str) -> int:
    from oexec.app import Daemon
    from oexec.cli.run import secrets_of
    from oexec.config_loader import load_config
    from oexec.ops.logging import configure_logging

    config = load_config(config_path)
    configure_logging(config.logging, secrets=secrets_of(config))
    daemon = Daemon(config, store_prefix=prefix)
    await daemon.start()
    try:
        front = daemon.front.endpoints[0]
        events = daemon.events.endpoints[0]
        print(f"READY {front} {events} {daemon.http_url} {os.getpid()}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
    finally:
        await daemon.stop()
    return 0


def main(argv: list[str]) -> int:
    """``OEXEC_BENCH_PROFILE=FILE``: profile the run (scripts/profile); ``.txt``: pyinstrument
    (where the time goes, by call tree), anything else: cProfile stats (call counts)."""
    loop = new_event_loop()
    target = os.environ.get("OEXEC_BENCH_PROFILE")
    try:
        if not target:
            return loop.run_until_complete(serve(argv[0], argv[1]))
        if target.endswith(".txt"):
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            try:
                return loop.run_until_complete(serve(argv[0], argv[1]))
            finally:
                profiler.stop()
                Path(target).write_text(profiler.output_text(unicode=True))
        import cProfile

        with cProfile.Profile() as profile:
            try:
                return loop.run_until_complete(serve(argv[0], argv[1]))
            finally:
                profile.dump_stats(target)
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
