"""``oexec demo``: the simulator and the daemon in one process, on embedded defaults.

Needs nothing installed (SQLite store in a temporary directory, the bundled venue
simulator on loopback). Places a few orders that show the lifecycle — a resting limit
order, a marketable one that fills, a cancel, a pre-trade rejection — prints their events,
then keeps serving (ZeroMQ, ops HTTP) until Ctrl-C or ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from oexec.cli.client_cmds import _endpoint, _host_port
from oexec.config import (
    Config,
    EventsConfig,
    FrontConfig,
    HttpConfig,
    LoggingConfig,
    StoreConfig,
    VenueConfig,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="simulator + daemon with embedded defaults")
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    parser.add_argument("--listen", type=_endpoint, default="tcp://127.0.0.1:5555")
    parser.add_argument("--publish", type=_endpoint, default="tcp://127.0.0.1:5556")
    parser.add_argument("--http", type=_host_port, default="127.0.0.1:8080", metavar="HOST:PORT")
    parser.add_argument("--sim-port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=7)
    parser.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.duration < 0:
        print("oexec demo: --duration must be >= 0", file=sys.stderr)
        return 2
    import zmq

    try:
        return asyncio.run(run_demo(args))
    except (OSError, zmq.ZMQError) as exc:
        print(f"oexec demo: {exc} (is another oexec already using these ports?)", file=sys.stderr)
        return 1


def _say(text: str) -> None:
    print(text, flush=True)


def sim_daemon_config(args: argparse.Namespace, sim: Any, store_dir: str) -> Config:
    """The daemon of ``oexec demo`` and ``oexec paper``: the endpoints the user gave
    (``--listen``, ``--publish``, ``--http``), a throwaway SQLite store in ``store_dir``,
    the bundled simulator ``sim`` (a running SimServer) as its venue, warnings only."""
    host, _, port = args.http.rpartition(":")
    return Config(
        front=FrontConfig(listen=(args.listen,)),
        events=EventsConfig(publish=(args.publish,)),
        http=HttpConfig(host=host or "127.0.0.1", port=int(port)),
        store=StoreConfig(sqlite_path=str(Path(store_dir) / "oexec.sqlite")),
        venue=VenueConfig(base_url=sim.base_url, api_key=sim.api_key, api_secret=sim.api_secret),
        logging=LoggingConfig(level="WARNING"),
    )


async def run_demo(args: argparse.Namespace) -> int:
    from oexec.app import Daemon
    from oexec.client import AsyncClient, ClientError, Subscriber
    from oexec.sim.app import SimServer
    from oexec.sim.config import SimConfig

    with tempfile.TemporaryDirectory(prefix="oexec-demo-") as tmp:
        sim_config = SimConfig(port=args.sim_port, seed=args.seed, tick_interval_ms=500)
        async with SimServer(sim_config) as sim:
            _say(f"simulator   {sim.base_url}  (control API {sim.base_url}/_sim/)")
            config = sim_daemon_config(args, sim, tmp)
            async with Daemon(config) as daemon:
                _say(f"daemon      requests {args.listen}  events {args.publish}")
                _say(
                    f"ops         {daemon.http_url}/health  {daemon.http_url}/metrics  "
                    f"{daemon.http_url}/dashboard"
                )
                async with Subscriber(args.publish, topics=[""]) as events:
                    printer = asyncio.create_task(_print_events(events))
                    async with AsyncClient(args.listen) as client:
                        await _demo_orders(client, sim, ClientError)
                    await asyncio.sleep(0.5)
                    _say(
                        "demo orders done; serving until Ctrl-C"
                        + (f" or {args.duration:g}s" if args.duration else "")
                    )
                    await _wait(args.duration)
                    printer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await printer
    _say("bye")
    return 0


async def _print_events(events: Any) -> None:
    async for event in events:
        order, fill = event.order, event.fill
        if order is not None:
            _say(
                f"  event #{event.seq:<3} {event.topic:<15} {order.symbol} {order.side.value} "
                f"{order.type.value} state={order.state.value} filled={order.filled_quantity}"
            )
        elif fill is not None:
            _say(
                f"  event #{event.seq:<3} {event.topic:<15} trade {fill.trade_id} "
                f"{fill.quantity} @ {fill.price} ({'maker' if fill.is_maker else 'taker'})"
            )
        elif position := event.data.get("position"):  # shown so the seq has no holes
            _say(
                f"  event #{event.seq:<3} {event.topic:<15} {position.get('symbol')} "
                f"amount={position.get('amount')} entry={position.get('entry_price')}"
            )
        elif balance := event.data.get("balance"):
            _say(
                f"  event #{event.seq:<3} {event.topic:<15} {balance.get('asset')} "
                f"wallet={balance.get('wallet_balance')}"
            )


async def _demo_orders(client: Any, sim: Any, client_error: type[Exception]) -> None:
    ticker = sim.exchange.ticker_price("BTCUSDT")
    price = Decimal(ticker["price"]).quantize(Decimal("0.1"))

    async def place(label: str, **fields: Any) -> Any:
        fields.setdefault("request_id", f"demo-{uuid.uuid4().hex[:12]}")
        _say(f"> {label}")
        try:
            order = await client.place_order(**fields)
        except client_error as exc:
            _say(f"  rejected: {getattr(exc, 'code', '?')}: {getattr(exc, 'message', exc)}")
            return None
        _say(f"  {order.id} state={order.state.value} filled={order.filled_quantity}")
        return order

    resting = await place(
        "LIMIT BUY 0.010 BTCUSDT 2% below the market (rests)",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.010",
        price=str((price * Decimal("0.98")).quantize(Decimal("0.1"))),
        time_in_force="GTC",
    )
    await place(
        "MARKET BUY 0.005 BTCUSDT (fills at once)",
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="0.005",
    )
    await place(
        "LIMIT SELL 0.005 BTCUSDT below the market (marketable, fills)",
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT",
        quantity="0.005",
        price=str((price * Decimal("0.99")).quantize(Decimal("0.1"))),
        time_in_force="GTC",
    )
    await place(
        "LIMIT BUY with a price off the tick size (rejected before the venue)",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.010",
        price=str(price - Decimal("0.05")),
        time_in_force="GTC",
    )
    if resting is not None:
        _say("> cancel the resting order")
        order = await client.cancel_order(order_id=resting.id)
        _say(f"  {order.id} state={order.state.value}")


async def _wait(duration: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if duration:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    else:
        await stop.wait()
