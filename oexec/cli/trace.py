"""``oexec trace``: the audit trail of one order, from a running daemon.

Merges the order's state history and its journal (requests, raw venue answers, stream
events, reconciliation decisions) into one timeline, oldest first. ``--json`` prints the
daemon's ``trace`` result as is. Exit 0, or 1 with the typed error (unknown order).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
#: How each journal kind is summarised in the human timeline.
SUMMARY: dict[str, Callable[[dict[str, Any]], str]] = {
    "request": lambda e: f"-> {e.get('op')} {json.dumps(e.get('fields') or {}, default=str)}",
    "response": lambda e: f"<- {e.get('op')} {json.dumps(e.get('raw'), default=str)}",
    "error": lambda e: f"<- {e.get('op')} ERROR {e.get('code')}: {e.get('message')}",
    "stream": lambda e: f"~~ {e.get('execution_type')} {json.dumps(e.get('raw'), default=str)}",
    "decision": lambda e: f"== {e.get('decision')}",
}


def timeline(trace: dict[str, Any]) -> list[tuple[int, str, str]]:
    """(ms, kind, text) rows: state changes and journal entries, oldest first."""
    rows = [
        (int(s.get("at", 0)), "state", f"{s.get('state')} v{s.get('version')} ({s.get('reason')})")
        for s in trace.get("states", [])
    ]
    for entry in trace.get("journal", []):
        kind = str(entry.get("kind"))
        summarise = SUMMARY.get(kind)
        text = summarise(entry) if summarise else json.dumps(entry, default=str)
        rows.append((int(entry.get("at", 0)), kind, text))
    for fill in trace.get("fills", []):
        text = f"trade {fill.get('trade_id')} {fill.get('quantity')} @ {fill.get('price')}"
        rows.append((int(fill.get("time", 0)), "fill", text))
    return sorted(rows, key=lambda r: r[0])


def render(trace: dict[str, Any]) -> str:
    head = (
        f"order {trace.get('order_id')}  request {trace.get('request_id')}  "
        f"client order id {trace.get('client_order_id')}"
    )
    lines = [head]
    for at, kind, text in timeline(trace):
        stamp = datetime.fromtimestamp(at / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
        lines.append(f"{stamp}  {kind:<8}  {text}")
    return "\n".join(lines)


def cmd_trace(args: argparse.Namespace) -> int:
    from oexec.client import Client, ClientError

    with Client(args.endpoint, timeout_s=args.timeout) as client:
        try:
            trace = client.trace(order_id=args.order_id, request_id=args.request_id)
        except ClientError as exc:
            error = {"code": str(exc.code), "message": exc.message, "details": exc.details}
            if args.json:
                print(json.dumps({"error": error}, default=str))
            else:
                print(f"oexec trace: {error['code']}: {exc.message}", file=sys.stderr)
            return 1
    print(json.dumps(trace, default=str) if args.json else render(trace), flush=True)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("trace", help="audit trail of one order")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--order-id")
    which.add_argument("--request-id")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="daemon request endpoint")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt")
    parser.add_argument("--json", action="store_true", help="the raw trace as JSON")
    parser.set_defaults(func=cmd_trace)
