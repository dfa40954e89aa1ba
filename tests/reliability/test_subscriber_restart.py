"""Issue 17's "done when": one subscriber stays connected while the daemon is SIGKILLed
and restarted in the middle of a burst with the venue's faults on, on either store.

It ends with every venue fill delivered exactly once (flagged repeats dropped), every
order's final state delivered, and no unexplained gap in the one sequence. The same
subscriber runs in the bounded chaos run (test_chaos.py) on Redis with all actions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .chaos import ChaosPlan, run_chaos

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_subscriber_sees_every_fill_once_across_a_sigkill(store: str, tmp_path: Path) -> None:
    if store == "redis" and shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    plan = ChaosPlan(
        orders=60,
        clients=4,
        rounds=1,
        seed=17,
        venue_limits={"orders_per_10s": 1500, "orders_per_minute": 6000},
        settle_timeout_s=30.0,
        daemon_env={"OEXEC_TRACKING_SWEEP_INTERVAL_S": "2"},
        store=store,
        actions=("kill_daemon",),
    )
    lines: list[str] = []
    report = await run_chaos(plan, tmp_path, lines.append)
    summary = "\n".join([*lines, report.table(), json.dumps(report.details, default=str)])
    assert report.details["actions"]["kill_daemon"] == 1, summary
    seen = report.subscriber
    assert seen is not None and seen.delivered > 0, summary
    assert report.details["venue_fills"] > 0, summary
    assert seen.fills_missed == 0, summary
    assert seen.fills_duplicated == 0, summary
    assert seen.state_mismatches == 0, summary
    assert seen.gaps == 0, summary
    assert report.duplicates == 0 and report.lost == 0, summary
    assert report.fills_missed == 0 and report.fills_duplicated == 0, summary
    # the view matches the venue again within 3 s of the round's end (issue 17)
    assert report.max_wrong_view_s <= 3.0, summary
