"""Bad input a new user typed, each a usage error (exit 2, one line, no traceback) before
anything is sent: numbers the wire would refuse (``1e5``), endpoints ZeroMQ cannot use,
timeouts and counts that make no sense. Found trying the CLI as a new user: ``--price 1e5``
went to the daemon, ``--endpoint foo`` and ``tcp://127.0.0.1:abc`` ended in a ZMQError
traceback, ``--timeout -1`` retried three times at once, ``watch --from -5`` looped on
BAD_REQUEST forever.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from oexec.app import Daemon
from oexec.cli.main import main

from ..e2e.conftest import endpoint

PLACE = ["place", "--symbol", "BTCUSDT", "--side", "BUY", "--type", "LIMIT"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([*PLACE, "--quantity", "0.010", "--price", "1e5"], "--price: not a plain positive"),
        ([*PLACE, "--quantity", "1E-3", "--price", "1"], "--quantity: not a plain positive"),
        ([*PLACE, "--quantity", "0.010", "--price", "NaN"], "--price: not a plain positive"),
        ([*PLACE, "--quantity", "0.010", "--price", " 5"], "--price: not a plain positive"),
        ([*PLACE, "--quantity", "0", "--price", "5"], "--quantity: must be a positive"),
        ([*PLACE, "--quantity", "1", "--price", "5", "--timeout", "-1"], "--timeout: must be"),
        ([*PLACE, "--quantity", "1", "--price", "5", "--timeout", "inf"], "--timeout: must be"),
        (["amend", "--order-id", "x", "--price", "1e5"], "--price: not a plain positive"),
        (["open", "--endpoint", "foo"], "--endpoint: not a ZeroMQ endpoint"),
        (["watch", "--endpoint", "127.0.0.1:5556"], "--endpoint: not a ZeroMQ endpoint"),
        (["watch", "--daemon", "localhost"], "--daemon: not a ZeroMQ endpoint"),
        (["watch", "--from", "-5"], "--from: must be 0 or more"),
        (["watch", "--count", "-1"], "--count: must be 0 or more"),
        (["paper", "--quantity", "abc"], "--quantity: not a plain positive"),
        (["paper", "--http", "8080"], "--http: expected HOST:PORT"),
        (["demo", "--listen", "5555"], "--listen: not a ZeroMQ endpoint"),
        (["demo", "--http", "127.0.0.1:http"], "--http: expected HOST:PORT"),
    ],
)
def test_usage_errors_exit_2_before_sending(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert says in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [["open"], ["positions"], ["watch", "--count", "1"]])
def test_an_endpoint_zeromq_refuses_exits_2_without_a_traceback(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*command, "--endpoint", "tcp://127.0.0.1:abc"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: cannot connect") and "tcp://127.0.0.1:abc" in err


def test_a_plain_decimal_keeps_its_digits(capsys: pytest.CaptureFixture[str]) -> None:
    """The parser still takes what the wire takes, exactly (no float on the way)."""
    from oexec.cli.client_cmds import _decimal

    assert str(_decimal("0.010")) == "0.010"
    assert str(_decimal("49000")) == "49000"


async def test_human_lines_name_the_refused_order_and_a_market_fill(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused batch order was shown as '... such as "0.010" 0' (the batch's own index,
    restarting every 50 orders); a MARKET order as 'price=None'."""
    rows = [
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010",
         "price": price, "request_id": f"h-{n}"}
        for n, price in enumerate(["48000", "48000.05"], start=1)
    ]  # fmt: skip
    orders = tmp_path / "ladder.jsonl"
    orders.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    ep = ["--endpoint", endpoint(daemon)]
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["place", *ep, "--file", str(orders)])
    err = capsys.readouterr().err
    assert code == 1
    assert "PRICE_TICK" in err and f"(order 2 of {orders}, request_id h-2)" in err
    market = ["place", *ep, "--symbol", "BTCUSDT", "--side", "BUY", "--type", "MARKET"]
    code = await asyncio.to_thread(main, [*market, "--quantity", "0.010"])
    out = capsys.readouterr().out
    assert code == 0
    assert " price=- state=FILLED " in out and " avg=" in out, out


def test_place_file_with_order_flags_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--symbol`` & co. next to ``--file`` were dropped without a word."""
    orders = tmp_path / "orders.jsonl"
    orders.write_text('{"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}\n')
    code = main(["place", "--file", str(orders), "--symbol", "ETHUSDT", "--reduce-only"])
    assert code == 2
    assert "drop --symbol, --reduce-only" in capsys.readouterr().err


async def test_place_takes_the_fields_its_order_types_need(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--type TRAILING_STOP_MARKET`` and ``--time-in-force GTD`` were offered with no way
    to give a callback rate or a good-till date: always CALLBACK_RATE_REQUIRED /
    GOOD_TILL_DATE_INVALID."""
    place = ["place", "--endpoint", endpoint(daemon), "--json", "--symbol", "BTCUSDT"]
    good_till = (int(time.time()) + 3600) * 1000
    orders = [
        ["--side", "SELL", "--type", "TRAILING_STOP_MARKET", "--quantity", "0.010",
         "--callback-rate", "1.5", "--activation-price", "51000"],
        ["--side", "SELL", "--type", "STOP_MARKET", "--quantity", "0.010",
         "--stop-price", "45000", "--working-type", "mark_price"],
        ["--side", "BUY", "--type", "LIMIT", "--quantity", "0.010", "--price", "49000",
         "--time-in-force", "GTD", "--good-till-date", str(good_till)],
    ]  # fmt: skip
    placed = []
    for flags in orders:
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*place, *flags])
        out = capsys.readouterr().out
        assert code == 0, out
        placed.append(json.loads(out))
    assert (placed[0]["callback_rate"], placed[0]["activation_price"]) == ("1.5", "51000")
    assert placed[1]["working_type"] == "MARK_PRICE"
    assert placed[2]["good_till_date"] == good_till
