"""``oexec sim``: serve the simulated venue until Ctrl-C.

Flags override the config file; with neither, a demo account with the documented key
``oexec-sim-key`` / secret ``oexec-sim-secret`` is used (and printed, since it is public).
A secret given by the user is never printed. Bad flags or config exit with code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

import attrs

from oexec.sim.config import (
    DEMO_API_KEY,
    AccountConfig,
    SimConfig,
    SimConfigError,
    load,
    validate,
)

DEFAULT_PORT = 8765


def register(subparsers: Any) -> None:
    """Add the ``sim`` sub-command to the ``oexec`` parser."""
    parser = subparsers.add_parser(
        "sim",
        help="run the bundled Binance USDⓈ-M futures simulator",
        description="Serve a faithful Binance USDⓈ-M futures venue on loopback (docs/sim.md).",
    )
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--seed", type=int, default=None, help="price path and fault seed")
    parser.add_argument("--api-key", default=None, help="API key of the (single) account")
    parser.add_argument("--api-secret", default=None, help="its HMAC secret")
    parser.add_argument("--config", default=None, help="TOML config file")
    parser.add_argument("--tick-ms", type=int, default=None, help="price step period; 0 = off")
    parser.add_argument("--no-rate-limits", action="store_true", help="lift all rate limits")
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> SimConfig:
    """Config file (if any) with the command-line flags applied; raises SimConfigError."""
    config = load(args.config) if args.config else SimConfig(port=DEFAULT_PORT)
    changes: dict[str, Any] = {}
    if args.host is not None:
        changes["host"] = args.host
    if args.port is not None:
        changes["port"] = args.port
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.tick_ms is not None:
        changes["tick_interval_ms"] = args.tick_ms
    if args.no_rate_limits:
        changes["rate_limits"] = attrs.evolve(config.rate_limits, enabled=False)
    if (args.api_key is None) != (args.api_secret is None):
        raise SimConfigError("--api-key and --api-secret go together")
    if args.api_key is not None:
        if config.accounts:
            raise SimConfigError("--api-key/--api-secret cannot be combined with config accounts")
        changes["accounts"] = (AccountConfig(key=args.api_key, secret=args.api_secret),)
    return validate(attrs.evolve(config, **changes)).with_accounts()


def banner(config: SimConfig, base_url: str, ws_url: str) -> list[str]:
    """The start-up lines: URLs and the account key(s); the secret only for the demo."""
    lines = [f"oexec sim: REST {base_url}", f"oexec sim: WebSocket {ws_url}/ws/<listenKey>"]
    for account in config.accounts:
        lines.append(f"oexec sim: account {account.account_id!r} API key {account.key}")
    demo = config.accounts[0]
    if len(config.accounts) == 1 and demo.key == DEMO_API_KEY:
        lines.append(
            f"oexec sim: demo API secret {demo.secret} (public demo credentials; "
            "pass --api-key/--api-secret or --config for your own)"
        )
    lines.append(
        f"oexec sim: streams {ws_url}/public/ws/<stream> (book data), "
        f"{ws_url}/market/ws/<stream> (the rest), {ws_url}/private/ws?listenKey=<key>"
    )
    lines.append(f"oexec sim: order entry (WebSocket API) {ws_url}/ws-fapi/v1")
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except SimConfigError as exc:
        print(f"oexec sim: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(config))
    except OSError as exc:
        print(f"oexec sim: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 2


async def serve(config: SimConfig, stop: asyncio.Event | None = None) -> int:
    """Serve until ``stop`` is set or SIGINT/SIGTERM arrives."""
    from oexec.sim.app import SimServer

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with SimServer(config) as sim:
            for line in banner(sim.config, sim.base_url, sim.ws_url):
                print(line, flush=True)
            await stop.wait()
            print("oexec sim: stopping", flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return 0
