"""``oexec paper``: paper-trade a small strategy on the simulator's live market data.

The simulator (its seeded price path stepping every ``--tick-ms``) and the daemon run in
this process, as in ``oexec demo``. The strategy reads the venue's public streams the way
a desk would read Binance's: trades and 1 s klines from ``/market/stream`` and the best
bid/ask from ``/public/ws/<symbol>@bookTicker``. It keeps a fast and a slow exponential
moving average of trade prices and holds ``+quantity`` while the fast one is above the
slow one, ``-quantity`` otherwise; every change of target is a MARKET order sent through
the daemon (ZeroMQ), whose events are printed. On exit it flattens and prints the venue's
own account of the run (position, realized PnL, commission and funding from
``/fapi/v1/income``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import uuid
from decimal import Decimal
from typing import Any

import attrs
import orjson

from oexec.cli.client_cmds import _decimal, _endpoint, _host_port

ZERO = Decimal(0)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "paper", help="paper-trade a small strategy on the simulator's live market data"
    )
    parser.add_argument("--duration", type=float, default=0.0, help="stop after S seconds")
    parser.add_argument("--symbol", default="BTCUSDT", type=str.upper)
    parser.add_argument(
        "--quantity", default="0.010", type=_decimal, help="position size (contracts)"
    )
    parser.add_argument("--fast", type=int, default=3, help="fast EMA span (trades)")
    parser.add_argument("--slow", type=int, default=12, help="slow EMA span (trades)")
    parser.add_argument("--tick-ms", type=int, default=100, help="simulator price-path step")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--listen", type=_endpoint, default="tcp://127.0.0.1:5555")
    parser.add_argument("--publish", type=_endpoint, default="tcp://127.0.0.1:5556")
    parser.add_argument("--http", type=_host_port, default="127.0.0.1:8080", metavar="HOST:PORT")
    parser.add_argument("--sim-port", type=int, default=8765)
    parser.set_defaults(func=cmd_paper)


def cmd_paper(args: argparse.Namespace) -> int:
    if args.duration < 0 or not 1 <= args.fast < args.slow or args.tick_ms < 1:
        print("oexec paper: need --duration >= 0, 1 <= --fast < --slow, --tick-ms >= 1",
              file=sys.stderr)  # fmt: skip
        return 2
    import zmq

    from oexec.sim.engine.errors import SimError

    try:
        return asyncio.run(run_paper(args))
    except (OSError, zmq.ZMQError) as exc:
        print(f"oexec paper: {exc} (is another oexec using these ports?)", file=sys.stderr)
        return 1
    except SimError as exc:  # e.g. --symbol NOPEUSDT: the simulator lists no such symbol
        print(f"oexec paper: the simulator refused --symbol {args.symbol}: {exc}", file=sys.stderr)
        return 2


def _say(text: str) -> None:
    print(text, flush=True)


@attrs.define
class Crossover:
    """Fast/slow EMA crossover on trade prices: the position it wants, given a price."""

    fast_span: int
    slow_span: int
    quantity: Decimal
    fast: Decimal | None = None
    slow: Decimal | None = None
    seen: int = 0

    def on_trade(self, price: Decimal) -> Decimal | None:
        """Update with one trade price; the target position once warmed up, else None."""
        self.fast = _ema(self.fast, price, self.fast_span)
        self.slow = _ema(self.slow, price, self.slow_span)
        self.seen += 1
        if self.seen < self.slow_span:
            return None
        return self.quantity if self.fast > self.slow else -self.quantity


def _ema(previous: Decimal | None, price: Decimal, span: int) -> Decimal:
    if previous is None:
        return price
    alpha = Decimal(2) / (span + 1)
    return previous + alpha * (price - previous)


@attrs.define
class Book:
    """What the public streams told us so far."""

    bid: Decimal = ZERO
    ask: Decimal = ZERO
    trades: int = 0
    klines: int = 0
    book_updates: int = 0


async def run_paper(args: argparse.Namespace) -> int:
    from oexec.app import Daemon
    from oexec.cli.demo import sim_daemon_config
    from oexec.client import AsyncClient, ClientError, Subscriber
    from oexec.sim.app import SimServer
    from oexec.sim.config import SimConfig

    with tempfile.TemporaryDirectory(prefix="oexec-paper-") as tmp:
        sim_config = SimConfig(port=args.sim_port, seed=args.seed, tick_interval_ms=args.tick_ms)
        async with SimServer(sim_config) as sim:
            _say(f"simulator   {sim.base_url}  streams {sim.ws_url}/market, {sim.ws_url}/public")
            config = sim_daemon_config(args, sim, tmp)
            async with Daemon(config), Subscriber(args.publish, topics=[""]) as events:
                _say(f"daemon      requests {args.listen}  events {args.publish}")
                printer = asyncio.create_task(_print_fills(events))
                async with AsyncClient(args.listen) as client:
                    trader = _Trader(args, client, ClientError)
                    await trader.run(sim.ws_url, args.duration)
                    await trader.flatten()
                await asyncio.sleep(0.3)
                printer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await printer
                _summary(sim, args.symbol, trader)
    return 0


class _Trader:
    """Streams in, decisions, orders out through the daemon."""

    def __init__(self, args: argparse.Namespace, client: Any, client_error: type[Exception]):
        self.symbol = args.symbol.upper()
        self.client = client
        self.client_error = client_error
        self.strategy = Crossover(args.fast, args.slow, Decimal(args.quantity))
        self.book = Book()
        self.position = ZERO
        self.orders = 0
        #: held while an order is out: the stop waits for it, so its fill is counted
        #: before ``flatten`` (cancelled mid-order, the position went stale and the
        #: flatten went the wrong way: REDUCE_ONLY_CONFLICT, a position left open)
        self._trading = asyncio.Lock()

    async def run(self, ws_url: str, duration: float) -> None:
        import aiohttp

        name = self.symbol.lower()
        market = f"{ws_url}/market/stream?streams={name}@aggTrade/{name}@kline_1s"
        public = f"{ws_url}/public/ws/{name}@bookTicker"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(market) as trades,
            session.ws_connect(public) as book,
        ):
            readers = [
                asyncio.create_task(self._read_book(book)),
                asyncio.create_task(self._read_market(trades)),
            ]
            stop = asyncio.Event()
            if not duration:  # interactive: until Ctrl-C
                _on_signals(stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration or None)
            async with self._trading:  # an order in flight is answered and counted first
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)

    async def _read_book(self, ws: Any) -> None:
        async for message in ws:
            data = orjson.loads(message.data)
            self.book.bid, self.book.ask = Decimal(data["b"]), Decimal(data["a"])
            self.book.book_updates += 1

    async def _read_market(self, ws: Any) -> None:
        async for message in ws:
            wrapped = orjson.loads(message.data)
            data = wrapped["data"]
            if data["e"] == "kline":
                self.book.klines += 1
                if data["k"]["x"]:
                    k = data["k"]
                    _say(f"  kline 1s  o={k['o']} h={k['h']} l={k['l']} c={k['c']} n={k['n']}")
                continue
            self.book.trades += 1
            target = self.strategy.on_trade(Decimal(data["p"]))
            if target is not None and target != self.position:
                await self._trade_to(target, Decimal(data["p"]))

    async def _trade_to(self, target: Decimal, last: Decimal) -> None:
        async with self._trading:
            await self._trade_locked(target, last)

    async def _trade_locked(self, target: Decimal, last: Decimal) -> None:
        delta = target - self.position
        side = "BUY" if delta > 0 else "SELL"
        _say(
            f"> signal: fast EMA {'above' if target > 0 else 'below'} slow at {last} "
            f"(book {self.book.bid}/{self.book.ask}): {side} {abs(delta)} -> position {target}"
        )
        await self._market(side, abs(delta), reduce_only=False)

    async def _market(self, side: str, quantity: Decimal, reduce_only: bool) -> None:
        try:
            order = await self.client.place_order(
                symbol=self.symbol,
                side=side,
                type="MARKET",
                quantity=str(quantity),
                reduce_only=reduce_only,
                request_id=f"paper-{uuid.uuid4().hex[:12]}",
            )
        except self.client_error as exc:
            _say(f"  rejected: {getattr(exc, 'code', '?')}: {getattr(exc, 'message', exc)}")
            return
        self.orders += 1
        order = await self._settled(order)
        signed = order.filled_quantity if side == "BUY" else -order.filled_quantity
        self.position += signed
        _say(f"  {order.id} {order.state.value} filled={order.filled_quantity}")

    async def _settled(self, order: Any) -> Any:
        """The order once final: the reply may come before its fill is known (a busy host),
        and the position is counted from what actually filled."""
        for _ in range(50):
            if order.state.is_terminal:
                break
            await asyncio.sleep(0.05)
            order = await self.client.get_order(order_id=order.id)
        return order

    async def flatten(self) -> None:
        if self.position != 0:
            _say(f"> flatten {self.position}")
            side = "SELL" if self.position > 0 else "BUY"
            await self._market(side, abs(self.position), reduce_only=True)


async def _print_fills(events: Any) -> None:
    async for event in events:
        fill = event.fill
        if fill is not None:
            _say(f"  event #{event.seq} fill {fill.quantity} @ {fill.price}")


def _summary(sim: Any, symbol: str, trader: _Trader) -> None:
    account = sim.config.accounts[0].account_id
    income = sim.exchange.income(account, {"limit": "1000"})
    totals: dict[str, Decimal] = {}
    for row in income:
        totals[row["incomeType"]] = totals.get(row["incomeType"], ZERO) + Decimal(row["income"])
    risk = sim.exchange.position_risk(account, {"symbol": symbol}, 3)
    venue_position = risk[0]["positionAmt"] if risk else "0"
    book = trader.book
    _say(
        f"streams     {book.trades} trades, {book.klines} kline updates (/market), "
        f"{book.book_updates} book tickers (/public)"
    )
    _say(f"orders      {trader.orders} through the daemon; venue position {venue_position}")
    _say(
        "venue P&L   "
        + ", ".join(f"{kind} {amount}" for kind, amount in sorted(totals.items()))
        + f"; net {sum(totals.values(), ZERO)} USDT"
    )


def _on_signals(stop: asyncio.Event) -> None:
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
