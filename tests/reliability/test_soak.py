"""The soak run's bounded form (scripts/soak runs it for minutes) and its verdict rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .soak import GAUGES, Sample, scrape, soak, verdict


def test_scrape_sums_each_gauge_over_labels() -> None:
    text = "\n".join(
        [
            "# HELP oexec_open_orders open orders",
            'oexec_open_orders{symbol="ETHUSDT"} 3.0',
            'oexec_open_orders{symbol="BTCUSDT"} 2.0',
            "requests_queued 4.0",
            "requests_in_flight_total 99.0",
        ]
    )
    gauges = scrape(text)
    assert gauges["open_orders"] == 5.0
    assert gauges["requests_queued"] == 4.0
    assert gauges["requests_in_flight"] == 0.0


def _samples(rss: list[float], queued: list[float]) -> list[Sample]:
    return [
        Sample(float(n), n, 0, r, {**dict.fromkeys(GAUGES, 0.0), "requests_queued": q})
        for n, (r, q) in enumerate(zip(rss, queued, strict=True))
    ]


def test_verdict_flags_growing_memory_and_queues() -> None:
    flat = _samples([60, 64, 64, 64, 64.5, 64, 64.2, 64.3], [0, 1, 0, 2, 1, 0, 1, 0])
    assert verdict(flat, 10.0)[0]
    leaking = _samples([60, 64, 70, 76, 82, 88, 94, 100], [0] * 8)
    assert not verdict(leaking, 10.0)[0]
    backlog = _samples([64] * 8, [0, 1, 2, 4, 8, 16, 32, 64])
    ok, summary = verdict(backlog, 10.0)
    assert not ok and "requests_queued" in summary


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_short_soak_is_flat(tmp_path: Path) -> None:
    samples = await soak(rate=8.0, duration_s=8.0, every_s=1.0, workdir=tmp_path)
    ok, summary = verdict(samples, rss_slack_mib=10.0)
    assert ok, summary
    assert samples[-1].done >= 40 and samples[-1].errors == 0, samples[-1]
