"""``oexec run``: the daemon. One line starts it against any venue.

Flags override the config file and ``OEXEC_*`` environment; credentials come from
``OEXEC_API_KEY`` / ``OEXEC_API_SECRET`` or a secrets file (never from flags, which
would show in ``ps``). SIGTERM/SIGINT stop intake (new requests get SHUTTING_DOWN),
let in-flight submits finish or resolve, flush state and events, exit 0; a second
signal forces exit. SIGHUP re-reads the config and reloads what is safe (log level,
risk limits, validation overrides: oexec/ops/reload.py); a bad file changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import zmq

from oexec.config import Config
from oexec.config_loader import ConfigError, load_config
from oexec.errors import OexecError, StoreError, VenueError
from oexec.ops.logging import redact

log = logging.getLogger("oexec.run")


def add_daemon_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (see etc/oexec.toml)")
    parser.add_argument("--venue", metavar="URL", help="venue REST base URL")
    parser.add_argument(
        "--listen",
        metavar="ENDPOINT",
        action="append",
        help="ZeroMQ request endpoint (repeatable), e.g. tcp://127.0.0.1:5555",
    )
    parser.add_argument(
        "--publish",
        metavar="ENDPOINT",
        action="append",
        help="ZeroMQ event PUB endpoint (repeatable)",
    )
    parser.add_argument("--http", metavar="HOST:PORT", help="ops HTTP (/health, /metrics)")
    parser.add_argument(
        "--store", metavar="URL", help="redis://…, sqlite:////abs/path.db or sqlite:///rel.db"
    )
    parser.add_argument("--secrets-file", help="KEY=VALUE file with OEXEC_API_KEY/SECRET")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if args.venue:
        out.setdefault("venue", {})["base_url"] = args.venue
    if args.listen:
        out.setdefault("front", {})["listen"] = list(args.listen)
    if args.publish:
        out.setdefault("events", {})["publish"] = list(args.publish)
    if args.http:
        host, _, port = args.http.rpartition(":")
        out.setdefault("http", {}).update({"host": host or "127.0.0.1", "port": port})
    if args.store:
        if args.store.startswith("sqlite:///"):
            out.setdefault("store", {})["sqlite_path"] = args.store[len("sqlite:///") :]
            out["store"]["url"] = ""
        else:
            out.setdefault("store", {})["url"] = args.store
    if args.log_level:
        out.setdefault("logging", {})["level"] = args.log_level
    return out


def config_from(args: argparse.Namespace) -> Config:
    env = dict(os.environ)
    if getattr(args, "secrets_file", None):
        env["OEXEC_SECRETS_FILE"] = args.secrets_file
    return load_config(args.config, env=env, overrides=overrides_from(args))


def secrets_of(config: Config) -> list[str]:
    """Every secret value the logs must never show."""
    secrets = [config.venue.api_key, config.venue.api_secret, config.http.bearer_token]
    if config.venue.private_key_file:
        with contextlib.suppress(OSError):
            secrets.append(Path(config.venue.private_key_file).read_text())
    return [s for s in secrets if s]


async def serve(config: Config, reread: Callable[[], Config] | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; ``reread`` loads the config again on SIGHUP."""
    from oexec.app import Daemon
    from oexec.ops.logging import configure_logging

    configure_logging(config.logging, secrets=secrets_of(config))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.error("second signal: exiting now")
            os._exit(1)
        stop.set()

    daemon = Daemon(config)

    def on_hangup() -> None:
        if reread is None or not daemon.ready:
            return
        try:
            daemon.reload(reread())
        except (ConfigError, ValueError) as exc:
            log.error("reload refused, nothing changed: %s", getattr(exc, "message", exc))

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        await daemon.start()
    except (OexecError, OSError, zmq.ZMQError) as exc:  # start() has closed what it opened
        print(f"oexec run: cannot start: {start_failure(exc, config)}", file=sys.stderr)
        return 1
    print(
        f"oexec: listening on {', '.join(config.front.listen)}; "
        f"events on {', '.join(config.events.publish)}; ops {daemon.http_url}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        log.warning("stopping: refusing new requests, draining in-flight ones")
        await daemon.stop()
        log.warning("stopped")
    return 0


def start_failure(exc: BaseException, config: Config) -> str:
    """One line for a daemon that could not start (a port in use, an unreachable venue, a
    store that cannot open): what failed and where - no traceback."""
    message = exc.message if isinstance(exc, OexecError) else str(exc)
    if isinstance(exc, StoreError):
        url = re.sub(r"//[^/@]*@", "//***@", config.store.url)  # no Redis password
        where = url or (
            f"sqlite file {config.store.sqlite_path!r}; "
            "sqlite:///rel.db is relative, sqlite:////abs.db absolute"
        )
        message += f" ({where})"
    elif isinstance(exc, VenueError):
        message += f" (venue {config.venue.base_url})"
    return redact(message)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config = config_from(args)
    except ConfigError as exc:
        print(f"oexec run: {exc.message}", file=sys.stderr)
        return 2
    if not config.venue.api_key or not (config.venue.api_secret or config.venue.private_key_file):
        print(
            "oexec run: set OEXEC_API_KEY and OEXEC_API_SECRET (or a secrets file)", file=sys.stderr
        )
        return 2
    return run_on_fast_loop(serve(config, reread=lambda: config_from(args)))


def run_on_fast_loop(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run`` on uvloop when it is installed (the ``fast`` extra): the bench
    measured +40 % orders/s at 64 in flight (452 → 641/s, docs/bench.md)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return int(uvloop.run(main))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run the order-execution daemon")
    add_daemon_flags(parser)
    parser.set_defaults(func=cmd_run)
