"""Client commands beyond one order: amend, positions, balances, leverage, margin type,
and ``place --file`` (a batch from a JSON-lines file).

Output and exit codes as in client_cmds: one JSON object per result with ``--json``,
a short line otherwise; 0 on success, 1 when the daemon (or any batch element) answered
with an error, 2 for bad input (nothing is sent).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from oexec.cli.client_cmds import _call, _common, _decimal, default_time_in_force
from oexec.models import Order
from oexec.models.account import Balance, Position
from oexec.models.serde import converter, order_to_dict
from oexec.wire.strategy import MAX_BATCH

#: Fields of a JSON-lines order that are decimals (JSON numbers are read exactly).
DECIMAL_KEYS = ("quantity", "price", "stop_price", "callback_rate", "activation_price")


class BadInput(Exception):
    """Input the command refuses before talking to the daemon."""


def _bad_input(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


# --- place --file -----------------------------------------------------------------------
def read_orders(path: str) -> list[dict[str, Any]]:
    """The orders of a JSON-lines file: one object per line (blank and ``#`` lines are
    skipped); numbers are read as exact decimals. Raises BadInput naming the line."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    orders = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            order = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(order, dict):
            raise BadInput(f"{path}:{number}: expected a JSON object per line")
        for key in DECIMAL_KEYS:
            if isinstance(order.get(key), int) and not isinstance(order[key], bool):
                order[key] = Decimal(order[key])
        missing = [key for key in ("symbol", "side", "type", "quantity") if key not in order]
        if missing:
            raise BadInput(f"{path}:{number}: missing {', '.join(missing)}")
        if isinstance(order["type"], str) and "time_in_force" not in order:
            tif = default_time_in_force(order["type"].upper())
            if tif is not None:
                order["time_in_force"] = tif
        orders.append(order)
    if not orders:
        raise BadInput(f"{path}: no orders")
    return orders


def cmd_place_file(args: argparse.Namespace) -> int:
    try:
        orders = read_orders(args.file)
    except BadInput as exc:
        return _bad_input(str(exc))
    failed = False

    def run(client: Any) -> list[tuple[int, dict[str, Any]]]:
        nonlocal failed
        lines = []
        for start in range(0, len(orders), MAX_BATCH):
            batch = client.place_orders(orders[start : start + MAX_BATCH])
            for number, result in enumerate(batch, start=start + 1):
                if isinstance(result, Order):
                    lines.append((number, {"order": order_to_dict(result)}))
                else:
                    failed = True
                    error = {"code": str(result.code), "message": result.message}
                    lines.append((number, {"error": {**error, "details": result.details}}))
        return lines

    def show(lines: list[tuple[int, dict[str, Any]]]) -> None:
        for number, line in lines:
            if args.json:
                print(json.dumps(line, default=str))
            elif "order" in line:
                o = line["order"]
                print(f"{o['id']} {o['request_id']} {o['symbol']} {o['state']}")
            else:  # which order: the batch's own index restarts at 0 every 50 orders
                e, request_id = line["error"], orders[number - 1].get("request_id")
                where = f"order {number} of {args.file}" + (
                    f", request_id {request_id}" if request_id else ""
                )
                print(f"error {e['code']}: {e['message']} ({where})", file=sys.stderr)

    code = _call(args, run, show=show)
    return 1 if code == 0 and failed else code


# --- amend, positions, balances, settings -------------------------------------------------
def cmd_amend(args: argparse.Namespace) -> int:
    if args.price is None and args.quantity is None:
        return _bad_input("amend needs --price, --quantity or both")
    return _call(
        args,
        lambda c: c.modify_order(
            order_id=args.order_id,
            request_id=args.request_id,
            price=args.price,
            quantity=args.quantity,
        ),
    )


def _position_line(p: Position) -> str:
    return (
        f"{p.symbol} {p.position_side.value} amount={p.amount} entry={p.entry_price} "
        f"break_even={p.break_even_price} upnl={p.unrealized_pnl} "
        f"liquidation={p.liquidation_price} leverage={p.leverage} margin={p.margin_type}"
    )


def _balance_line(b: Balance) -> str:
    return (
        f"{b.asset} wallet={b.wallet_balance} available={b.available_balance} "
        f"margin={b.margin_balance} upnl={b.unrealized_pnl}"
    )


def _rows(line: Callable[[Any], str]) -> Callable[[argparse.Namespace], Callable[[Any], None]]:
    def shower(args: argparse.Namespace) -> Callable[[Any], None]:
        def show(rows: list[Any]) -> None:
            for row in rows:
                print(json.dumps(converter.unstructure(row)) if args.json else line(row))
            if not rows and not args.json:
                print("(none)")

        return show

    return shower


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "amend", help="change a resting LIMIT order's price and/or quantity in place"
    )
    _common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--order-id")
    g.add_argument("--request-id")
    p.add_argument("--price", type=_decimal, help="new price")
    p.add_argument("--quantity", type=_decimal, help="new quantity (more than filled)")
    p.set_defaults(func=cmd_amend)

    p = subparsers.add_parser("positions", help="open positions (the daemon's account view)")
    _common(p)
    p.add_argument("--symbol", type=str.upper)
    show_positions = _rows(_position_line)
    p.set_defaults(func=lambda a: _call(a, lambda c: c.positions(a.symbol), show=show_positions(a)))

    p = subparsers.add_parser("balances", help="balances per asset (the daemon's account view)")
    _common(p)
    show_balances = _rows(_balance_line)
    p.set_defaults(func=lambda a: _call(a, lambda c: c.balances(), show=show_balances(a)))

    p = subparsers.add_parser("leverage", help="set a symbol's leverage at the venue")
    _common(p)
    p.add_argument("--symbol", required=True, type=str.upper)
    p.add_argument("--leverage", required=True, type=int, help="1..125")
    p.set_defaults(func=lambda a: _call(a, lambda c: c.set_leverage(a.symbol, a.leverage)))

    p = subparsers.add_parser("margin-type", help="set a symbol's margin type at the venue")
    _common(p)
    p.add_argument("--symbol", required=True, type=str.upper)
    p.add_argument("--type", required=True, type=str.lower, choices=["cross", "isolated"])
    p.set_defaults(func=lambda a: _call(a, lambda c: c.set_margin_type(a.symbol, a.type)))
