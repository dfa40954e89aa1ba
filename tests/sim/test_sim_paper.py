"""``oexec paper`` for a few seconds: a strategy on the public streams, orders through the
daemon, the venue's own P&L at the end."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from oexec.cli.main import build_parser
from oexec.cli.paper import Crossover, run_paper

from ..ports import free_port


def test_crossover_wants_the_side_of_the_fast_average() -> None:
    strategy = Crossover(2, 4, Decimal("1"))
    assert [strategy.on_trade(Decimal(p)) for p in ("10", "10", "10")] == [None] * 3
    assert strategy.on_trade(Decimal("12")) == Decimal("1")  # rising: fast above slow
    targets = [strategy.on_trade(Decimal(p)) for p in ("11", "9", "8")]
    assert targets[-1] == Decimal("-1")


async def test_paper_trades_on_live_streams_through_the_daemon(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(
        [
            "paper", "--duration", "3", "--tick-ms", "50", "--seed", "3",
            "--listen", f"tcp://127.0.0.1:{free_port()}",
            "--publish", f"tcp://127.0.0.1:{free_port()}",
            "--http", f"127.0.0.1:{free_port()}",
            "--sim-port", str(free_port()),
        ]
    )  # fmt: skip
    assert await run_paper(args) == 0
    out = capsys.readouterr().out
    streams = re.search(r"streams +(\d+) trades, (\d+) kline updates .* (\d+) book tickers", out)
    assert streams, out
    assert all(int(n) > 0 for n in streams.groups()), out
    orders = re.search(r"orders +(\d+) through the daemon; venue position (\S+)", out)
    assert orders and int(orders.group(1)) >= 2, out  # at least one entry and the flatten
    assert Decimal(orders.group(2)) == 0, out  # flattened on the venue itself
    assert "FILLED" in out and "fill " in out and "COMMISSION" in out, out
