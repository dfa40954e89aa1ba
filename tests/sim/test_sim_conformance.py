"""Conformance: unmodified third-party clients run their usual calls against a real
``oexec sim`` process on 127.0.0.1 - ccxt ``binanceusdm`` (REST), python-binance's
``Client`` and binance-futures-connector's ``UMFutures``. Only base URLs are changed.

The simulator runs with a fast price path (so klines and trades exist) and a 1 s funding
interval (so funding history and FUNDING_FEE income exist within the test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..ports import free_port

binance_client = pytest.importorskip("binance.client")
um_futures = pytest.importorskip("binance.um_futures")
ccxt = pytest.importorskip("ccxt")

KEY, SECRET = "oexec-sim-key", "oexec-sim-secret"
SYMBOL = "BTC/USDT:USDT"
CONFIG = """
seed = 19
tick_interval_ms = 50
funding_interval_ms = 1000
"""


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``oexec sim`` process; yields its base URL."""
    config = Path(tmp_path_factory.mktemp("sim")) / "sim.toml"
    config.write_text(CONFIG)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oexec.cli.main",
            "sim",
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{base}/fapi/v1/ping", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "oexec sim did not come up"
            time.sleep(0.1)
        time.sleep(1.2)  # one funding settlement and some price-path trades
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_ccxt_binanceusdm_rest(venue: str) -> None:
    exchange = ccxt.binanceusdm(
        {
            "apiKey": KEY,
            "secret": SECRET,
            "enableRateLimit": False,
            "options": {
                "fetchMarkets": ["linear"],
                "fetchCurrencies": False,
                "warnOnFetchOpenOrdersWithoutSymbol": False,
            },
        }
    )
    for name, url in list(exchange.urls["api"].items()):
        exchange.urls["api"][name] = re.sub(r"^https://[^/]+", venue, url)
    exchange.load_markets()
    candles = exchange.fetch_ohlcv(SYMBOL, "1m", limit=5)
    assert candles and all(len(c) == 6 and c[4] > 0 for c in candles)
    assert exchange.fetch_trades(SYMBOL, limit=10)
    assert exchange.fetch_order_book(SYMBOL, 5)["bids"]
    assert exchange.fetch_funding_rate(SYMBOL)["fundingRate"] == 0.0001
    history = exchange.fetch_funding_rate_history(SYMBOL)
    assert history and history[-1]["fundingRate"] == 0.0001
    assert exchange.fetch_open_interest(SYMBOL)["symbol"] == SYMBOL

    bought = exchange.create_order(SYMBOL, "market", "buy", 0.01)
    resting = exchange.create_order(SYMBOL, "limit", "buy", 0.01, 20000)
    assert exchange.fetch_order(resting["id"], SYMBOL)["status"] == "open"
    assert exchange.cancel_order(resting["id"], SYMBOL)["status"] == "canceled"
    trades = exchange.fetch_my_trades(SYMBOL)
    assert bought["id"] in {t["order"] for t in trades}
    positions = exchange.fetch_positions([SYMBOL])
    assert [p["contracts"] for p in positions if p["symbol"] == SYMBOL] == [0.01]
    balance = exchange.fetch_balance()
    assert 0 < balance["USDT"]["total"] < 100000
    fee = exchange.fetch_trading_fee(SYMBOL)
    assert (fee["maker"], fee["taker"]) == (0.0002, 0.0005)
    ledger = exchange.fetch_ledger("USDT")
    assert "commission" in {entry["type"] for entry in ledger}


def test_python_binance_client(venue: str) -> None:
    client = binance_client.Client(KEY, SECRET, ping=False)
    client.FUTURES_URL = f"{venue}/fapi"
    client.FUTURES_DATA_URL = f"{venue}/futures/data"
    klines = client.futures_klines(symbol="BTCUSDT", interval="1m", limit=3)
    assert klines and isinstance(klines[0][1], str) and isinstance(klines[0][0], int)
    assert client.futures_mark_price(symbol="BTCUSDT")["symbol"] == "BTCUSDT"
    assert client.futures_funding_rate(symbol="BTCUSDT")
    assert client.futures_aggregate_trades(symbol="BTCUSDT")
    assert client.futures_recent_trades(symbol="BTCUSDT")
    assert client.futures_open_interest(symbol="BTCUSDT")["symbol"] == "BTCUSDT"
    order = client.futures_create_order(
        symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.002"
    )
    assert (
        client.futures_get_order(symbol="BTCUSDT", orderId=order["orderId"])["status"] == "FILLED"
    )
    assert client.futures_account_trades(symbol="BTCUSDT")
    assert client.futures_account()["assets"]
    assert client.futures_account_balance()[0]["asset"] == "USDT"
    assert client.futures_position_information(symbol="BTCUSDT")
    assert client.futures_income_history(incomeType="COMMISSION")
    assert client.futures_commission_rate(symbol="BTCUSDT")["symbol"] == "BTCUSDT"
    assert client.futures_symbol_config(symbol="BTCUSDT")[0]["marginType"] in (
        "CROSSED",
        "ISOLATED",
    )
    assert "dualSidePosition" in client.futures_account_config()
    client.close_connection()


def test_binance_futures_connector_um_futures(venue: str) -> None:
    client = um_futures.UMFutures(key=KEY, secret=SECRET, base_url=venue)
    assert client.klines("BTCUSDT", "1m", limit=3)
    assert client.mark_price_klines("BTCUSDT", "1m", limit=3)
    assert client.index_price_klines("BTCUSDT", "1m", limit=3)
    assert client.agg_trades("BTCUSDT")
    assert client.trades("BTCUSDT")
    assert client.funding_rate("BTCUSDT")
    assert client.funding_info()
    assert client.open_interest("BTCUSDT")["openInterest"]
    placed = client.new_order(
        symbol="ETHUSDT", side="BUY", type="LIMIT", quantity="0.05", price="1000", timeInForce="GTC"
    )
    assert client.query_order("ETHUSDT", orderId=placed["orderId"])["status"] == "NEW"
    assert client.cancel_order("ETHUSDT", orderId=placed["orderId"])["status"] == "CANCELED"
    client.new_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.05")
    assert client.get_account_trades("ETHUSDT")
    account = client.account()  # v3: no flags, only active positions, v3 field names
    assert "feeTier" not in account and "unrealizedProfit" in account["positions"][0]
    assert {p["symbol"] for p in account["positions"]} <= {"BTCUSDT", "ETHUSDT"}
    assert client.balance()[0]["asset"] == "USDT"
    risk = client.get_position_risk(symbol="ETHUSDT")
    assert risk[0]["positionAmt"] == "0.05"
    assert client.get_income_history(incomeType="REALIZED_PNL") is not None
    assert client.commission_rate("ETHUSDT")["makerCommissionRate"] == "0.0002"
    assert client.symbol_configuration(symbol="ETHUSDT")[0]["leverage"] == 20
    assert client.futures_account_configuration()["canTrade"] is True
    assert client.get_position_mode()["dualSidePosition"] is False
