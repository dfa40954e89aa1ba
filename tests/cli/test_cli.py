"""The command line as a user meets it: real daemon and simulator, argv in, output out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from oexec.app import Daemon
from oexec.cli.main import main

from ..e2e.conftest import endpoint, events_endpoint


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr().out
    return code, [line for line in out.splitlines() if line]


async def test_place_get_open_cancel_history_as_json(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    ep = ["--endpoint", endpoint(daemon), "--json"]
    code, lines = await run_cli(
        capsys,
        "place",
        *ep,
        "--symbol",
        "BTCUSDT",
        "--side",
        "buy",
        "--type",
        "limit",
        "--quantity",
        "0.010",
        "--price",
        "49000",
        "--request-id",
        "cli-1",
    )
    assert code == 0
    placed = json.loads(lines[0])
    assert placed["state"] == "NEW" and placed["time_in_force"] == "GTC"
    assert placed["quantity"] == "0.010" and placed["request_id"] == "cli-1"

    code, lines = await run_cli(capsys, "get", *ep, "--request-id", "cli-1")
    assert code == 0 and json.loads(lines[0])["id"] == placed["id"]
    code, lines = await run_cli(capsys, "open", *ep, "--symbol", "BTCUSDT")
    assert code == 0 and [json.loads(x)["id"] for x in lines] == [placed["id"]]
    code, lines = await run_cli(capsys, "cancel", *ep, "--order-id", placed["id"])
    assert code == 0 and json.loads(lines[0])["state"] == "CANCELED"
    code, lines = await run_cli(capsys, "history", *ep, "--limit", "5")
    assert code == 0 and json.loads(lines[0])["id"] == placed["id"]
    code, lines = await run_cli(capsys, "cancel-all", *ep, "--symbol", "BTCUSDT")
    assert code == 0 and lines == []
    code, lines = await run_cli(capsys, "health", *ep)
    assert code == 0 and json.loads(lines[0])["status"] == "healthy"


async def test_typed_errors_exit_non_zero(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    ep = ["--endpoint", endpoint(daemon), "--json"]
    code, lines = await run_cli(capsys, "get", *ep, "--order-id", "missing")
    assert code == 1
    assert json.loads(lines[0])["error"]["code"] == "NOT_FOUND"
    code, lines = await run_cli(
        capsys,
        "place",
        *ep,
        "--symbol",
        "BTCUSDT",
        "--side",
        "BUY",
        "--type",
        "LIMIT",
        "--quantity",
        "0.010",
        "--price",
        "49000.05",
    )
    assert code == 1
    error = json.loads(lines[0])["error"]
    assert error["code"] == "PRICE_TICK" and error["details"]["field"] == "price"
    code, lines = await run_cli(capsys, "halt", *ep)
    assert code == 0 and json.loads(lines[0])["halted"] is True
    code, lines = await run_cli(
        capsys,
        "place",
        *ep,
        "--symbol",
        "BTCUSDT",
        "--side",
        "BUY",
        "--type",
        "MARKET",
        "--quantity",
        "0.010",
    )
    assert code == 1 and json.loads(lines[0])["error"]["code"] == "RISK_HALTED"
    code, _ = await run_cli(capsys, "resume", *ep)
    assert code == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["place", "--symbol", "BTCUSDT", "--side", "BUY", "--type", "LIMIT", "--quantity", "abc"],
        ["place", "--symbol", "BTCUSDT", "--side", "HOLD", "--type", "LIMIT", "--quantity", "1"],
        ["place", "--symbol", "BTCUSDT", "--side", "BUY", "--type", "MARKET", "--quantity", "-1"],
        ["get"],
        ["cancel", "--order-id", "a", "--request-id", "b"],
        ["nonsense"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_no_daemon_says_what_it_waits_for_then_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Nothing listens (a free ipc path): each timed-out attempt is reported, not silence."""
    dead = f"ipc:///tmp/oexec-test-no-daemon-{id(capsys):x}"
    code = main(["get", "--order-id", "x", "--endpoint", dead, "--timeout", "0.05"])
    err = capsys.readouterr().err
    assert code == 1
    assert "attempt 1 of 3" in err and "attempt 2 of 3" in err and "attempt 3" not in err
    assert "CLIENT_TIMEOUT" in err


async def test_watch_prints_events(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    argv = ["watch", "--endpoint", events_endpoint(daemon), "--json", "--count", "1"]
    watcher = asyncio.create_task(asyncio.to_thread(main, argv))
    await asyncio.sleep(0.5)
    placed = await asyncio.to_thread(
        main,
        [
            "place",
            "--endpoint",
            endpoint(daemon),
            "--symbol",
            "ETHUSDT",
            "--side",
            "BUY",
            "--type",
            "MARKET",
            "--quantity",
            "0.010",
        ],
    )
    assert placed == 0
    assert await asyncio.wait_for(watcher, 10) == 0
    events = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert len(events) == 1
    assert events[0]["topic"].startswith("order.") and events[0]["order"]["symbol"] == "ETHUSDT"
    assert events[0]["seq"] >= 1


def test_run_refuses_bad_config_and_missing_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("OEXEC_API_KEY", "OEXEC_API_SECRET", "OEXEC_SECRETS_FILE"):
        monkeypatch.delenv(key, raising=False)
    assert main(["run", "--venue", "http://127.0.0.1:1"]) == 2
    assert "OEXEC_API_KEY" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[front]\nworkers = 0\n")
    assert main(["run", "--config", str(bad)]) == 2
    assert "front.workers" in capsys.readouterr().err
    assert main(["run", "--store", "mysql://x"]) == 2
    assert "store.url" in capsys.readouterr().err
