"""SimConfig loading: TOML, strict keys, accounts, symbols, faults; the CLI flag merge."""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path

import pytest

from oexec.sim import cli
from oexec.sim.config import DEMO_API_KEY, SimConfig, SimConfigError, load, structure_fault
from oexec.sim.state import build_symbols

EXAMPLE = """
seed = 42
tick_interval_ms = 250

[[accounts]]
name = "alice"
key = "alice-key"
secret = "alice-secret"
balances = { USDT = "2500.5", BNB = "3" }

[rate_limits]
weight_per_minute = 1200

[symbols.BTCUSDT]
price = "65000.1"
[symbols.XYZUSDT]
price = "2"
base_asset = "XYZ"
max_num_orders = "50"

[[faults]]
kind = "latency"
probability = 0.5
path = "/fapi/v1/order"
params = { min_ms = 1, max_ms = 5 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return path


def test_load_full_example(tmp_path: Path) -> None:
    config = load(write(tmp_path, EXAMPLE))
    assert config.seed == 42 and config.tick_interval_ms == 250
    alice = config.accounts[0]
    assert alice.account_id == "alice"
    assert alice.balances == {"USDT": Decimal("2500.5"), "BNB": Decimal(3)}
    assert config.rate_limits.weight_per_minute == 1200
    assert config.rate_limits.orders_per_10s == 300
    assert config.faults[0].params == {"min_ms": 1, "max_ms": 5}
    specs = {s.symbol: s for s in build_symbols(config.symbols)}
    assert set(specs) == {"BTCUSDT", "XYZUSDT"}
    assert specs["BTCUSDT"].initial_price == Decimal("65000.1")
    assert specs["XYZUSDT"].base_asset == "XYZ" and specs["XYZUSDT"].max_num_orders == 50


@pytest.mark.parametrize(
    "text",
    [
        "sed = 1",  # unknown key
        "seed = 'x'",
        "[[accounts]]\nkey='k'\n",  # neither secret nor public key
        "[[accounts]]\nkey='k'\nsecret='s'\n[[accounts]]\nkey='k'\nsecret='t'\n",
        "[[accounts]]\nkey='k'\nsecret='s'\nbalances={USDT=1.5}\n",  # float money
        "[[faults]]\nkind='bogus'\n",
        "port = 70000",
        "[[accounts]]\nkey='k'\ned25519_public_key='not a pem'\n",
        "not toml [",
    ],
)
def test_bad_configs_rejected(tmp_path: Path, text: str) -> None:
    with pytest.raises(SimConfigError):
        load(write(tmp_path, text))


def test_missing_file_and_bad_symbol_field(tmp_path: Path) -> None:
    with pytest.raises(SimConfigError):
        load(tmp_path / "absent.toml")
    with pytest.raises(SimConfigError):
        build_symbols({"BTCUSDT": {"colour": "red"}})
    with pytest.raises(SimConfigError):
        build_symbols({"BTCUSDT": {"tick_size": "abc"}})


def test_structure_fault_from_json() -> None:
    rule = structure_fault({"kind": "error_5xx", "probability": 0.25, "count": 3})
    assert (rule.kind, rule.count) == ("error_5xx", 3)
    with pytest.raises(SimConfigError):
        structure_fault({"kind": "error_5xx", "extra": 1})
    assert structure_fault({"kind": "stream_drop", "every_n": 50}).every_n == 50
    with pytest.raises(SimConfigError):
        structure_fault({"kind": "stream_drop", "every_n": 50, "probability": 0.1})


def test_default_demo_account() -> None:
    config = SimConfig().with_accounts()
    assert config.accounts[0].key == DEMO_API_KEY


def args(**values: object) -> argparse.Namespace:
    base = dict(
        host=None,
        port=None,
        seed=None,
        api_key=None,
        api_secret=None,
        config=None,
        tick_ms=None,
        no_rate_limits=False,
    )
    return argparse.Namespace(**(base | values))


def test_cli_flags_override_config(tmp_path: Path) -> None:
    path = write(tmp_path, "seed = 1\n")
    config = cli.build_config(
        args(
            config=str(path),
            seed=9,
            port=0,
            tick_ms=10,
            no_rate_limits=True,
            api_key="k1",
            api_secret="s1",
        )
    )
    assert (config.seed, config.port, config.tick_interval_ms) == (9, 0, 10)
    assert not config.rate_limits.enabled
    assert config.accounts[0].key == "k1"
    lines = cli.banner(config, "http://h", "ws://h")
    assert not any("s1" in line for line in lines)


def test_cli_demo_banner_prints_public_secret() -> None:
    config = cli.build_config(args())
    assert config.port == cli.DEFAULT_PORT
    text = "\n".join(cli.banner(config, "http://h", "ws://h"))
    assert DEMO_API_KEY in text and "oexec-sim-secret" in text
    assert "oexec sim: order entry (WebSocket API) ws://h/ws-fapi/v1" in text


@pytest.mark.parametrize(
    "values",
    [{"api_key": "k"}, {"port": -1}],
)
def test_cli_bad_flags_exit_2(
    values: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(args(**values)) == 2
    assert "oexec sim:" in capsys.readouterr().err


def test_cli_registered_in_main_parser() -> None:
    from oexec.cli.main import build_parser

    parsed = build_parser().parse_args(["sim", "--port", "1", "--seed", "3", "--no-rate-limits"])
    assert parsed.func is cli.run and parsed.seed == 3 and parsed.no_rate_limits


def test_docs_example_config_loads(tmp_path: Path) -> None:
    docs = Path(__file__).parents[2] / "docs" / "sim.md"
    block = docs.read_text().split("```toml\n", 1)[1].split("```", 1)[0]
    config = load(write(tmp_path, block))
    assert [a.account_id for a in config.accounts] == ["alice", "bob"]
    assert {f.kind for f in config.faults} == {"latency", "timeout_after_accept"}
    specs = {s.symbol: s for s in build_symbols(config.symbols)}
    assert specs["BTCUSDT"].initial_price == Decimal("65000")
    assert specs["ETHUSDT"].min_notional == Decimal("5")
