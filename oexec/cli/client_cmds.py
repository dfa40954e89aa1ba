"""Client commands: talk to a running daemon over ZeroMQ with the sync Client.

Each prints one JSON object per result with ``--json`` (machine use), or a short human
line otherwise. Exit code 0 on success; on a typed error, 1 and the error (as JSON on
stdout with ``--json``, else on stderr). Bad arguments exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from oexec.models import Order
from oexec.models.serde import order_to_dict
from oexec.wire.fields import DECIMAL_RE

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")


def _decimal(text: str) -> Decimal:
    """A plain decimal as the wire takes it (``0.010``): ``1e5``, ``NaN`` or ``-5`` are
    usage errors here, not a round trip to the daemon."""
    if not DECIMAL_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not a plain positive decimal (digits, optional point: 0.010): {text!r}"
        )
    value = Decimal(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive decimal: {text!r}")
    return value


def _endpoint(text: str) -> str:
    """A ZeroMQ endpoint; anything else would fail inside ZeroMQ with a traceback."""
    if not text.startswith(ENDPOINT_SCHEMES):
        raise argparse.ArgumentTypeError(
            f"not a ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH): {text!r}"
        )
    return text


def _host_port(text: str) -> str:
    """``HOST:PORT`` for an HTTP listener (``oexec demo``/``paper --http``)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:8080: {text!r}")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _emit(result: Any, as_json: bool) -> None:
    if isinstance(result, Order):
        data: Any = order_to_dict(result)
        human = (
            f"{result.id} {result.symbol} {result.side.value} {result.type.value} "
            f"qty={result.quantity} price={result.price or '-'} state={result.state.value} "
            f"filled={result.filled_quantity}"
            + (f" avg={result.average_price}" if result.average_price else "")
        )
    elif isinstance(result, list):
        for item in result:
            _emit(item, as_json)
        if not result and not as_json:
            print("(none)")
        return
    else:
        data, human = result, json.dumps(result, default=str)
    print(json.dumps(data, default=str) if as_json else human, flush=True)


def _call(
    args: argparse.Namespace,
    fn: Callable[[Any], Any],
    show: Callable[[Any], None] | None = None,
) -> int:
    import zmq

    from oexec.client import Client, ClientError

    def waiting(attempt: int, attempts: int) -> None:
        print(
            f"no reply from {args.endpoint} within {args.timeout:g}s "
            f"(attempt {attempt} of {attempts}); is the daemon running? retrying",
            file=sys.stderr,
            flush=True,
        )

    client = Client(args.endpoint, timeout_s=args.timeout, on_retry=waiting)
    try:
        result = fn(client)
        if show is not None:
            show(result)
        else:
            _emit(result, args.json)
        return 0
    except ClientError as exc:
        error = {"error": {"code": str(exc.code), "message": exc.message, "details": exc.details}}
        if args.json:
            print(json.dumps(error, default=str))
        else:
            print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except zmq.ZMQError as exc:  # an endpoint ZeroMQ cannot connect to: tcp://127.0.0.1:abc
        print(f"error: cannot connect to {args.endpoint}: {exc.strerror}", file=sys.stderr)
        return 2
    finally:
        client.close()


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint", type=_endpoint, default=DEFAULT_ENDPOINT, help="daemon request endpoint"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per result")
    parser.add_argument("--timeout", type=_seconds, default=10.0, help="seconds per attempt")


#: ``place``'s per-order flags (flag, dest): one order's fields, not a batch's.
ORDER_FLAGS = (
    ("--symbol", "symbol"),
    ("--side", "side"),
    ("--type", "type"),
    ("--quantity", "quantity"),
    ("--price", "price"),
    ("--time-in-force", "time_in_force"),
    ("--stop-price", "stop_price"),
    ("--reduce-only", "reduce_only"),
    ("--request-id", "request_id"),
    ("--callback-rate", "callback_rate"),
    ("--activation-price", "activation_price"),
    ("--working-type", "working_type"),
    ("--good-till-date", "good_till_date"),
)
#: place_order's optional wire fields with a flag, sent only when given.
OPTIONAL_FIELDS = ("callback_rate", "activation_price", "working_type", "good_till_date")


def default_time_in_force(order_type: str) -> str | None:
    """The venue needs a time in force for priced orders; GTC is what people mean."""
    return "GTC" if order_type in ("LIMIT", "STOP", "TAKE_PROFIT") else None


def cmd_place(args: argparse.Namespace) -> int:
    if args.file is not None:
        from oexec.cli.account_cmds import cmd_place_file

        ignored = [flag for flag, dest in ORDER_FLAGS if getattr(args, dest) not in (None, False)]
        if ignored:  # each line of the file is a whole order: these would be dropped silently
            print(f"error: --file takes every field from the file; drop {', '.join(ignored)}",
                  file=sys.stderr)  # fmt: skip
            return 2
        return cmd_place_file(args)
    missing = [
        flag
        for flag, value in (
            ("--symbol", args.symbol),
            ("--side", args.side),
            ("--type", args.type),
            ("--quantity", args.quantity),
        )
        if value is None
    ]
    if missing:
        print(f"error: place needs {', '.join(missing)} (or --file orders.jsonl)", file=sys.stderr)
        return 2
    return _call(
        args,
        lambda c: c.place_order(
            symbol=args.symbol,
            side=args.side,
            type=args.type,
            quantity=args.quantity,
            price=args.price,
            time_in_force=args.time_in_force or default_time_in_force(args.type),
            stop_price=args.stop_price,
            reduce_only=args.reduce_only,
            request_id=args.request_id,
            **{dest: getattr(args, dest) for dest in OPTIONAL_FIELDS if getattr(args, dest)},
        ),
    )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("place", help="place an order (or a batch: --file orders.jsonl)")
    _common(p)
    p.add_argument(
        "--file",
        help="JSON lines, one order per line (place_order's fields; '-' for stdin): "
        "sent as place_orders batches of up to 50",
    )
    p.add_argument("--symbol")
    p.add_argument("--side", choices=["BUY", "SELL"], type=str.upper)
    p.add_argument(
        "--type",
        type=str.upper,
        choices=[
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
    )
    p.add_argument("--quantity", type=_decimal)
    p.add_argument("--price", type=_decimal)
    p.add_argument(
        "--time-in-force",
        type=str.upper,
        choices=["GTC", "IOC", "FOK", "GTX", "GTD"],
        help="default GTC for LIMIT, STOP and TAKE_PROFIT",
    )
    p.add_argument("--stop-price", type=_decimal)
    p.add_argument("--callback-rate", type=_decimal, help="TRAILING_STOP_MARKET: percent")
    p.add_argument("--activation-price", type=_decimal, help="TRAILING_STOP_MARKET (optional)")
    p.add_argument(
        "--working-type", type=str.upper, choices=["MARK_PRICE", "CONTRACT_PRICE"]
    )  # what a stop triggers on
    p.add_argument("--good-till-date", type=_count, metavar="MS", help="GTD: epoch ms")
    p.add_argument("--reduce-only", action="store_true")
    p.add_argument("--request-id", help="idempotency key (generated when absent)")
    p.set_defaults(func=cmd_place)

    p = subparsers.add_parser("get", help="show one order")
    _common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--order-id")
    g.add_argument("--request-id")
    p.set_defaults(
        func=lambda a: _call(a, lambda c: c.get_order(order_id=a.order_id, request_id=a.request_id))
    )

    p = subparsers.add_parser("cancel", help="cancel one order")
    _common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--order-id")
    g.add_argument("--request-id")
    p.set_defaults(
        func=lambda a: _call(
            a, lambda c: c.cancel_order(order_id=a.order_id, request_id=a.request_id)
        )
    )

    p = subparsers.add_parser("cancel-all", help="cancel every open order on a symbol")
    _common(p)
    p.add_argument("--symbol", required=True)
    p.set_defaults(func=lambda a: _call(a, lambda c: c.cancel_all(a.symbol)))

    p = subparsers.add_parser("open", help="list open orders")
    _common(p)
    p.add_argument("--symbol")
    p.set_defaults(func=lambda a: _call(a, lambda c: c.open_orders(symbol=a.symbol)))

    p = subparsers.add_parser("history", help="list recent orders, newest first")
    _common(p)
    p.add_argument("--symbol")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(
        func=lambda a: _call(a, lambda c: c.order_history(symbol=a.symbol, limit=a.limit))
    )

    p = subparsers.add_parser("health", help="daemon health")
    _common(p)
    p.set_defaults(func=lambda a: _call(a, lambda c: c.health()))

    p = subparsers.add_parser("halt", help="kill switch: reject new orders")
    _common(p)
    p.add_argument("--cancel-all", action="store_true", help="also cancel every open order")
    p.set_defaults(func=lambda a: _call(a, lambda c: c.halt(cancel_all=a.cancel_all)))

    p = subparsers.add_parser("resume", help="lift the kill switch")
    _common(p)
    p.set_defaults(func=lambda a: _call(a, lambda c: c.resume()))

    p = subparsers.add_parser("watch", help="print events from the daemon's PUB socket")
    p.add_argument(
        "--endpoint", type=_endpoint, default="tcp://127.0.0.1:5556", help="daemon PUB endpoint"
    )
    p.add_argument("--topic", action="append", help="topic prefix (repeatable; default all)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--count", type=_count, default=0, help="stop after N events (0 = forever)")
    p.add_argument(
        "--from",
        dest="from_seq",
        type=_count,
        metavar="SEQ",
        help="replay every event after SEQ (the daemon's replay op, either store), then "
        "follow live; without it, gaps seen live are healed the same way",
    )
    p.add_argument(
        "--daemon",
        type=_endpoint,
        default="tcp://127.0.0.1:5555",
        metavar="ENDPOINT",
        help="the daemon's request socket, for replay (default tcp://127.0.0.1:5555)",
    )
    p.add_argument("--no-heal", action="store_true", help="report gaps instead of replaying them")
    p.add_argument(
        "--redis",
        default=None,
        help="read the Redis Stream directly instead of the daemon (with --from)",
    )
    p.add_argument(
        "--stream-key", default="oexec:events", help="<[cluster] key_prefix>events (with --redis)"
    )
    p.set_defaults(func=cmd_watch)


def cmd_watch(args: argparse.Namespace) -> int:
    import asyncio

    import zmq

    from oexec.client import StreamSubscriber, Subscriber

    def source() -> Any:
        if args.from_seq is not None and args.redis:
            return StreamSubscriber(
                args.redis, args.stream_key, from_seq=args.from_seq, topics=args.topic or ()
            )
        if args.no_heal:
            return Subscriber(args.endpoint, topics=args.topic or [""])
        return Subscriber(
            args.endpoint, topics=args.topic or [""], daemon=args.daemon, from_seq=args.from_seq
        )

    async def run() -> int:
        seen = 0
        async with source() as sub:
            async for event in sub:
                record = {"seq": event.seq, "topic": event.topic, "ts": event.ts, **event.data}
                if event.gap is not None:
                    record["gap"] = {"first": event.gap.first, "last": event.gap.last}
                text = json.dumps(event.data, default=str)
                print(
                    json.dumps(record, default=str)
                    if args.json
                    else f"{event.seq} {event.topic} {text}",
                    flush=True,
                )
                seen += 1
                if args.count and seen >= args.count:
                    return 0
        return 0

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0
    except zmq.ZMQError as exc:  # an endpoint ZeroMQ cannot connect to, e.g. tcp://h:abc
        print(f"error: cannot connect: {exc.strerror}", file=sys.stderr)
        return 2
