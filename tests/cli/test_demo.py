"""``oexec demo``, README's first command: simulator + daemon in one process, a few orders
and their events. Real sockets on free loopback ports."""

from __future__ import annotations

import re

import pytest

from oexec.cli.demo import run_demo
from oexec.cli.main import build_parser

from ..ports import free_port


async def test_the_demo_prints_every_event_in_sequence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Positions and balances are printed too: a new user read '#3 ... #6' as lost events."""
    args = build_parser().parse_args(
        [
            "demo", "--duration", "0.1",
            "--listen", f"tcp://127.0.0.1:{free_port()}",
            "--publish", f"tcp://127.0.0.1:{free_port()}",
            "--http", f"127.0.0.1:{free_port()}",
            "--sim-port", str(free_port()),
        ]
    )  # fmt: skip
    assert await run_demo(args) == 0
    out = capsys.readouterr().out
    seqs = [int(n) for n in re.findall(r"event #(\d+)", out)]
    assert seqs == list(range(1, len(seqs) + 1)), out
    for topic in ("order.created", "order.filled", "position", "balance", "fill"):
        assert re.search(rf"event #\d+ +{re.escape(topic)} ", out), (topic, out)
    assert "order.rejected" in out and "PRICE_TICK" in out and "order.canceled" in out, out
