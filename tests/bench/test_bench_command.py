"""``oexec bench`` end to end with tiny sizes: every row runs, the table and JSON appear.

Real processes: the simulator, the daemon (SQLite, and Redis), load generators. Nothing
here asserts a latency; the test keeps the command working.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

REDIS_URL = os.environ.get("OEXEC_TEST_REDIS", "redis://127.0.0.1:6379/15")
TINY = [
    "--orders", "40",
    "--concurrent-orders", "120",
    "--inflight", "8",
    "--overload", "400",
    "--fills", "3",
    "--warmup", "5",
    "--scale", "400",
    "--paced-orders", "8",
    "--rate", "200",
    "--ladders", "2",
]  # fmt: skip
PER_STORE = ["oexec_sync", "oexec_paced", "oexec_ladder20", "oexec_async64", "overload", "fill"]
#: each store's second daemon, its orders over the WebSocket API (issue 18)
PER_STORE_WS = ["oexec_sync_ws", "oexec_paced_ws"]


def bench(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "oexec.cli.main", "bench", *TINY, "--json", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=130,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


@pytest.mark.redis
@pytest.mark.timeout(140)
def test_bench_prints_every_row_writes_json_and_cleans_redis(tmp_path: Path) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys_before = set(client.scan_iter(match="oexec-bench-*", count=1000))
    proc, data = bench(tmp_path, "--store", REDIS_URL, "--workdir", str(tmp_path / "work"))
    rows = {(row["kind"], row["store"]): row for row in data["rows"]}
    assert [(row["kind"], row["store"]) for row in data["rows"]] == [
        ("floor_zmq", None),
        ("floor_http", None),
        ("ccxt", None),
        ("python_binance", None),
        ("ccxt_async64", None),
        ("ccxt_paced", None),
        ("ccxt_ladder20", None),
        ("ccxt_ws", None),
        ("ccxt_paced_ws", None),
        *((kind, store) for store in ("sqlite", "redis") for kind in PER_STORE + PER_STORE_WS),
        ("scaling_100", "sqlite"),
        ("scaling_n", "sqlite"),
    ]
    assert rows[("ccxt_async64", None)]["name"] == "ccxt async ×8"
    assert rows[("oexec_paced", "redis")]["name"] == "oexec AsyncClient, paced 200/s (redis)"
    assert rows[("scaling_n", "sqlite")]["name"] == "oexec Client, 400 stored"
    for row in data["rows"]:
        assert set(row) >= {"name", "p50_us", "p99_us", "p999_us", "ops_per_s", "ratio_to_ccxt"}
        assert 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"], row
        assert row["count"] > 0, row
        if row["kind"] != "overload":
            assert row["errors"] == {}, row
            assert row["ratio_to_ccxt"] is not None and row["ratio_to_ccxt"] > 0, row
    for anchor in (
        "ccxt",
        "ccxt_async64",
        "ccxt_paced",
        "ccxt_ladder20",
        "ccxt_ws",
        "ccxt_paced_ws",
    ):
        assert rows[(anchor, None)]["ratio_to_ccxt"] == 1.0
    # ccxt's paced and ladder turns of both stores make one row each; a ladder is one
    # sample of 20 orders and its ops/s counts orders
    assert rows[("ccxt_paced", None)]["count"] == 2 * 8
    assert rows[("ccxt_paced_ws", None)]["count"] == 2 * 8
    assert rows[("oexec_paced", "sqlite")]["count"] == 8
    assert rows[("ccxt_ladder20", None)]["count"] == 2 * 2
    ladder = rows[("oexec_ladder20", "redis")]
    assert ladder["count"] == 2 and ladder["concurrency"] == 20
    assert ladder["ops_per_s"] > 1e6 / ladder["max_us"]  # > one ladder's worth of orders
    values = data["values"]
    for store in ("sqlite", "redis"):
        cpu = values[f"daemon_cpu_us_per_order_{store}"]
        assert 0 < cpu < 1_000_000
        assert rows[("oexec_sync", store)]["daemon_cpu_us_per_order"] == cpu
        assert rows[("oexec_async64", store)]["daemon_cpu_us_per_order"] > 0
    timed = {"decode", "idempotency", "venue", "limiter", "sign", "breaker", "persist", "reply"}
    assert timed <= set(data["stages_mean_us"]["sqlite"])
    assert timed <= set(data["stages_mean_us"]["redis"])
    assert "limiter (in venue)" in proc.stdout
    verdicts = {t["name"]: t for t in data["targets"]}
    for name in (
        "oexec_paced p50 vs ccxt_paced",
        "oexec_paced p99 vs ccxt_paced",
        "oexec_sync p50 vs ccxt",
        "oexec_sync p99 vs ccxt",
        "oexec_ladder20 p50 vs ccxt_ladder20",
        "daemon CPU per order, sync row (sqlite)",
        "oexec_async64 throughput vs ccxt_async64",
        "redis paced p50 vs sqlite",
        "redis ladder p50 vs sqlite",
        "redis ×N throughput vs sqlite",
        "oexec_sync_ws p50 vs ccxt_ws",
        "oexec_paced_ws p50 vs ccxt_paced_ws",
    ):
        target = verdicts[name]
        assert target["met"] in (True, False), target
        assert target["value"] > 0 and target["limit"] > 0 and target["margin"], target
    for row in data["rows"]:
        assert row["name"] in proc.stdout
    assert "targets (issue 14):" in proc.stdout
    assert "daemon's own time p50 (sqlite)" in data["facts"]
    assert set(client.scan_iter(match="oexec-bench-*", count=1000)) == keys_before
    client.close()


@pytest.mark.timeout(60)
def test_kinds_runs_only_the_rows_asked_for(tmp_path: Path) -> None:
    """``--kinds paced`` is the paced pairs alone (over REST and over the WebSocket API):
    no floors, no other daemon rows."""
    _proc, data = bench(tmp_path, "--kinds", "paced", "--scale", "0")
    assert [(row["kind"], row["store"]) for row in data["rows"]] == [
        ("ccxt_paced", None),
        ("ccxt_paced_ws", None),
        ("oexec_paced", "sqlite"),
        ("oexec_paced_ws", "sqlite"),
    ]
    verdicts = {t["name"]: t["met"] for t in data["targets"]}
    assert verdicts["oexec_paced p50 vs ccxt_paced"] in (True, False)
    assert verdicts["oexec_sync p50 vs ccxt"] is None


def test_kinds_refuses_a_word_that_names_no_row(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oexec.cli.main", "bench", "--kinds", "pacde"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "pacde" in proc.stderr


def test_bench_refuses_a_store_that_is_not_redis(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oexec.cli.main", "bench", "--store", "sqlite:///x.db"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "redis://" in proc.stderr
