"""`oexec amend`, `positions`, `balances`, `leverage`, `margin-type` and `place --file` as
a new user would try them: real daemon and simulator, argv in, output out."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from oexec.app import Daemon
from oexec.cli.main import main

from ..e2e.conftest import endpoint


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, [line for line in captured.out.splitlines() if line], captured.err


async def test_amend_positions_balances_settings_as_json(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    ep = ["--endpoint", endpoint(daemon), "--json"]
    place = ["place", *ep, "--symbol", "BTCUSDT", "--side", "BUY", "--type", "LIMIT"]
    code, lines, _ = await run_cli(
        capsys, *place, "--quantity", "0.010", "--price", "49000", "--request-id", "cli-a1"
    )
    assert code == 0
    placed = json.loads(lines[0])

    code, lines, _ = await run_cli(
        capsys, "amend", *ep, "--order-id", placed["id"], "--price", "48800"
    )
    assert code == 0
    amended = json.loads(lines[0])
    assert amended["id"] == placed["id"] and Decimal(amended["price"]) == Decimal("48800")
    code, lines, _ = await run_cli(
        capsys, "amend", *ep, "--request-id", "cli-a1", "--quantity", "0.005"
    )
    assert code == 0 and Decimal(json.loads(lines[0])["quantity"]) == Decimal("0.005")

    # bad input: nothing to change (exit 2, nothing sent), a bad decimal, an unknown order
    code, lines, err = await run_cli(capsys, "amend", *ep, "--order-id", placed["id"])
    assert code == 2 and "--price, --quantity or both" in err and lines == []
    code, lines, _ = await run_cli(capsys, "amend", *ep, "--order-id", "nope", "--price", "1")
    assert code == 1 and json.loads(lines[0])["error"]["code"] == "NOT_FOUND"
    code, lines, _ = await run_cli(
        capsys, "amend", *ep, "--order-id", placed["id"], "--price", "48800.05"
    )
    assert code == 1 and json.loads(lines[0])["error"]["code"] == "PRICE_TICK"

    code, lines, _ = await run_cli(capsys, "positions", *ep)
    assert code == 0 and lines == []  # flat: no rows (JSON lines), nothing else
    code, lines, _ = await run_cli(capsys, "positions", "--endpoint", endpoint(daemon))
    assert code == 0 and lines == ["(none)"]
    code, lines, _ = await run_cli(
        capsys, "leverage", *ep, "--symbol", "btcusdt", "--leverage", "5"
    )
    assert code == 0 and json.loads(lines[0])["leverage"] == 5
    code, lines, _ = await run_cli(
        capsys, "leverage", *ep, "--symbol", "BTCUSDT", "--leverage", "0"
    )
    assert code == 1 and json.loads(lines[0])["error"]["details"]["field"] == "leverage"

    market = ["place", *ep, "--symbol", "BTCUSDT", "--side", "SELL", "--type", "MARKET"]
    code, lines, _ = await run_cli(capsys, *market, "--quantity", "0.003")
    assert code == 0 and json.loads(lines[0])["state"] == "FILLED"

    async def short_position() -> dict[str, str]:
        for _ in range(80):
            code, lines, _ = await run_cli(capsys, "positions", *ep, "--symbol", "btcusdt")
            if code == 0 and lines:
                return dict(json.loads(lines[0]))
            await asyncio.sleep(0.1)
        raise AssertionError("no position")

    position = await short_position()
    assert Decimal(position["amount"]) == Decimal("-0.003") and position["leverage"] == 5
    assert position["position_side"] == "BOTH" and position["margin_type"] == "cross"

    code, lines, _ = await run_cli(capsys, "balances", *ep)
    assert code == 0
    (usdt,) = [json.loads(line) for line in lines]
    assert usdt["asset"] == "USDT" and Decimal(usdt["wallet_balance"]) > 0
    code, lines, _ = await run_cli(capsys, "balances", "--endpoint", endpoint(daemon))
    assert code == 0 and lines[0].startswith("USDT wallet=")

    code, lines, _ = await run_cli(
        capsys, "margin-type", *ep, "--symbol", "BTCUSDT", "--type", "isolated"
    )
    assert code == 1  # a position is open: the venue's own refusal, typed
    assert json.loads(lines[0])["error"]["code"] == "VENUE_REJECTED"


async def test_place_file_sends_a_batch_and_reports_each_line(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    orders = tmp_path / "orders.jsonl"
    rows = [
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": 0.01,
            "price": 48000 + i,
            "request_id": f"file-{i}",
        }
        for i in range(3)
    ]
    rows[1]["quantity"] = "-1"  # one bad line: its own error, the others go on
    orders.write_text("# a ladder\n" + "\n".join(json.dumps(row) for row in rows) + "\n\n")
    ep = ["--endpoint", endpoint(daemon), "--json"]
    code, lines, _ = await run_cli(capsys, "place", *ep, "--file", str(orders))
    results = [json.loads(line) for line in lines]
    assert code == 1  # one element failed
    assert [("order" in r, "error" in r) for r in results] == [
        (True, False),
        (False, True),
        (True, False),
    ]
    assert results[0]["order"]["time_in_force"] == "GTC"  # the same default as `place`
    assert (
        results[1]["error"]["code"] == "BAD_REQUEST"
        and results[1]["error"]["details"]["index"] == 1
    )
    code, again, _ = await run_cli(capsys, "place", *ep, "--file", str(orders))
    assert [json.loads(line).get("order", {}).get("id") for line in again] == [
        r.get("order", {}).get("id") for r in results
    ]

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"symbol": "BTCUSDT"}\nnot json\n')
    code, lines, err = await run_cli(capsys, "place", *ep, "--file", str(broken))
    assert code == 2 and lines == [] and "broken.jsonl:1: missing side, type, quantity" in err
    code, lines, err = await run_cli(capsys, "place", *ep, "--file", str(tmp_path / "none"))
    assert code == 2 and "cannot read" in err
    code, lines, err = await run_cli(capsys, "place", *ep, "--symbol", "BTCUSDT")
    assert code == 2 and "--side, --type, --quantity" in err
