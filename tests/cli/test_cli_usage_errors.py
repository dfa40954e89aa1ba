"""Bad input a new user typed, each a usage error (exit 2, one line, no traceback) before
anything is sent: numbers the wire would refuse (``1e5``), endpoints ZeroMQ cannot use,
timeouts and counts that make no sense. Found trying the CLI as a new user: ``--price 1e5``
went to the daemon, ``--endpoint foo`` and ``tcp://127.0.0.1:abc`` ended in a ZMQError
traceback, ``--timeout -1`` retried three times at once, ``watch --from -5`` looped on
BAD_REQUEST forever.
"""

from __future__ import annotations

import pytest

from oexec.cli.main import main

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
