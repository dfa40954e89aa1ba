"""``oexec reconcile --check``: does the store agree with the venue?

Reads the same ``--config`` / ``OEXEC_*`` environment / flags as ``oexec run``, opens the
daemon's store and the venue (read-only: open orders, order queries), and prints one
row per difference (``oexec.service.reconcile.compare``). Safe beside a running daemon:
it changes nothing. Exit 0 only when they agree, 1 on differences, 2 on bad config or
an unreachable store/venue. The daemon itself reconciles at start and after long
stream disconnects; this command is the proof.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import attrs

from oexec.cli.run import add_daemon_flags, config_from
from oexec.config import Config
from oexec.config_loader import ConfigError
from oexec.errors import OexecError
from oexec.service.reconcile import Difference, compare

COLUMNS = ("client_order_id", "symbol", "order_id", "field", "store", "venue")


def table(differences: list[Difference]) -> str:
    """A plain fixed-width table (one header, one row per difference)."""
    rows = [COLUMNS, *(tuple(str(getattr(d, c)) for c in COLUMNS) for d in differences)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


async def check(config: Config, *, prefix: str, history: int) -> list[Difference]:
    from oexec.store import open_store
    from oexec.venue import open_venue

    store = open_store(config.store, prefix=prefix)
    await store.start()
    try:
        venue = (await open_venue(config.venue)).venue
        try:
            return await compare(store, venue, history_limit=history)
        finally:
            await venue.close()
    finally:
        await store.close()


def cmd_reconcile(args: argparse.Namespace) -> int:
    if not args.check:
        print("oexec reconcile: only --check is supported (the daemon reconciles itself)")
        return 2
    try:
        config = config_from(args)
        prefix = args.prefix or config.cluster.key_prefix  # the daemon's namespace
        differences = asyncio.run(check(config, prefix=prefix, history=args.history))
    except ConfigError as exc:
        print(f"oexec reconcile: {exc.message}", file=sys.stderr)
        return 2
    except OexecError as exc:
        print(f"oexec reconcile: {exc.code.value}: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([attrs.asdict(d) for d in differences]))
    elif differences:
        print(table(differences))
    else:
        print("store and venue agree")
    return 1 if differences else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("reconcile", help="compare the store with the venue")
    add_daemon_flags(parser)
    parser.add_argument("--check", action="store_true", help="compare and report (read-only)")
    parser.add_argument("--prefix", help="Redis key prefix (default: [cluster] key_prefix)")
    parser.add_argument(
        "--history", type=int, default=200, help="also compare this many latest orders"
    )
    parser.add_argument("--json", action="store_true", help="differences as a JSON list")
    parser.set_defaults(func=cmd_reconcile)
