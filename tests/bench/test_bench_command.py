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
]  # fmt: skip


def bench(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "oexec.cli.main", "bench", *TINY, "--json", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


@pytest.mark.redis
@pytest.mark.timeout(120)
def test_bench_prints_every_row_writes_json_and_cleans_redis(tmp_path: Path) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys_before = set(client.scan_iter(match="oexec-bench-*", count=1000))
    proc, data = bench(tmp_path, "--store", REDIS_URL, "--workdir", str(tmp_path / "work"))
    names = [row["name"] for row in data["rows"]]
    assert names == [
        "floor: raw zmq round trip",
        "floor: signed aiohttp POST",
        "ccxt create_order",
        "python-binance futures_create_order",
        "ccxt async ×8",
        *(
            f"{row} ({store})"
            for store in ("sqlite", "redis")
            for row in (
                "oexec Client",
                "oexec AsyncClient ×8",
                "oexec overload ×400, accepted",
                "fill event: stream → PUB",
            )
        ),
        "oexec Client, 100 stored",
        "oexec Client, 400 stored",
    ]
    for row in data["rows"]:
        assert set(row) >= {"name", "p50_us", "p99_us", "p999_us", "ops_per_s", "ratio_to_ccxt"}
        assert row["count"] > 0, row
        if "overload" not in row["name"]:
            assert row["errors"] == {}, row
    assert data["rows"][2]["ratio_to_ccxt"] == 1.0
    timed = {"decode", "idempotency", "venue", "limiter", "sign", "breaker", "persist", "reply"}
    assert timed <= set(data["stages_mean_us"]["sqlite"])
    assert timed <= set(data["stages_mean_us"]["redis"])
    assert "limiter (in venue)" in proc.stdout
    assert len(data["targets"]) >= 10
    for name in names:
        assert name in proc.stdout
    assert "targets (issue 10):" in proc.stdout
    assert set(client.scan_iter(match="oexec-bench-*", count=1000)) == keys_before
    client.close()


def test_bench_refuses_a_store_that_is_not_redis(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oexec.cli.main", "bench", "--store", "sqlite:///x.db"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "redis://" in proc.stderr
