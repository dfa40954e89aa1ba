"""Issue 14's targets (and issue 10's kept ones), checked against one run's rows.

Each target is a :class:`Target`: what was measured, the goal, met or not, and by how
much (``margin``, with ``value`` and ``limit`` as numbers for --json). Rows are found by
their stable kind and store (kinds.py). A target whose rows were not run
(``--no-direct``, ``--kinds``, no ``--store``, ``--scale 0``) is "not measured", never
"met". The ratios come from one run, so host noise hits both sides alike.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from oexec.bench.report import Report, Row, Target

EMBEDDED, REDIS = "sqlite", "redis"
PACED_GOAL = 1.0  # p50 and p99, oexec paced / ccxt paced
SYNC_P50_GOAL = 1.0
SYNC_P99_GOAL = 1.2
LADDER_GOAL = 1.0  # p50 of the time until a ladder's last order is answered
CPU_GOAL_US = 600.0  # daemon CPU per order over the sync row
REDIS_TOLERANCE = 1.15  # each Redis figure within this factor of the embedded store's

WS_GOAL = 1.0  # issue 18: p50 over the WebSocket API against each ccxt anchor
KEPT = "issue 10, no regression"
FILL_GOAL_US = 300
SCALE_GOAL = 1.1
RSS_TOLERANCE = 0.10


def _pct(row: Row, which: str) -> int:
    return int(row.summary.p50_us if which == "p50" else row.summary.p99_us)


def _not_measured(name: str, goal: str, group: str = "issue 14") -> Target:
    return Target(name, "-", goal, None, group=group)


def _vs_anchor(report: Report, kind: str, anchor: str, which: str, limit: float) -> Target:
    """``kind``'s p50/p99 on the embedded store over ``anchor``'s: at most ``limit``."""
    name, goal = f"{kind} {which} vs {anchor}", f"≤ {limit:g}×"
    mine, base = report.row(kind, EMBEDDED), report.row(anchor)
    if mine is None or base is None:
        return _not_measured(name, goal)
    ours, theirs = _pct(mine, which), _pct(base, which)
    ratio = ours / max(1, theirs)
    met = ratio <= limit
    over_us = ours - limit * theirs
    margin = f"{'met' if met else 'missed'} by {abs(ratio - limit):.2f}× ({abs(over_us):,.0f} µs)"
    measured = f"{ratio:.2f}× ({ours:,} vs {theirs:,} µs)"
    return Target(name, measured, goal, met, margin, round(ratio, 3), limit)


def _cpu(report: Report, store: str = EMBEDDED) -> Target:
    name, goal = f"daemon CPU per order, sync row ({store})", f"≤ {CPU_GOAL_US:,.0f} µs"
    cpu = report.values.get(f"daemon_cpu_us_per_order_{store}")
    if cpu is None:
        return _not_measured(name, goal)
    met = cpu <= CPU_GOAL_US
    margin = f"{'met' if met else 'missed'} by {abs(cpu - CPU_GOAL_US):,.0f} µs"
    return Target(name, f"{cpu:,.0f} µs", goal, met, margin, cpu, CPU_GOAL_US)


def _throughput(report: Report) -> Target:
    name, goal = "oexec_async64 throughput vs ccxt_async64", "≥ 1×"
    mine, base = report.row("oexec_async64", EMBEDDED), report.row("ccxt_async64")
    if mine is None or base is None:
        return _not_measured(name, goal)
    ours, theirs = mine.summary.ops_per_s, base.summary.ops_per_s
    ratio = ours / max(1e-9, theirs)
    met = ratio >= 1.0
    margin = f"{'met' if met else 'missed'} by {abs(ours - theirs):,.0f} orders/s"
    measured = f"{ratio:.2f}× ({ours:,.0f} vs {theirs:,.0f} orders/s)"
    return Target(name, measured, goal, met, margin, round(ratio, 3), 1.0)


#: The figures the Redis store must keep within REDIS_TOLERANCE of the embedded one:
#: (label, kind, what, lower is better).
_REDIS_FIGURES = (
    ("paced p50", "oexec_paced", "p50", True),
    ("paced p99", "oexec_paced", "p99", True),
    ("sync p50", "oexec_sync", "p50", True),
    ("sync p99", "oexec_sync", "p99", True),
    ("ladder p50", "oexec_ladder20", "p50", True),
    ("daemon CPU per order", "oexec_sync", "cpu", True),
    ("×N throughput", "oexec_async64", "ops", False),
)


def _figure(report: Report, kind: str, what: str, store: str) -> float | None:
    if what == "cpu":
        return report.values.get(f"daemon_cpu_us_per_order_{store}")
    row = report.row(kind, store)
    if row is None:
        return None
    return row.summary.ops_per_s if what == "ops" else float(_pct(row, what))


def _redis(report: Report) -> list[Target]:
    out = []
    for label, kind, what, lower_better in _REDIS_FIGURES:
        name = f"redis {label} vs sqlite"
        limit = REDIS_TOLERANCE if lower_better else 1 / REDIS_TOLERANCE
        goal = f"{'≤' if lower_better else '≥'} {limit:.2f}×"
        redis, embedded = _figure(report, kind, what, REDIS), _figure(report, kind, what, EMBEDDED)
        if redis is None or embedded is None:
            out.append(_not_measured(name, goal))
            continue
        ratio = redis / max(1e-9, embedded)
        met = ratio <= limit if lower_better else ratio >= limit
        unit = "orders/s" if what == "ops" else "µs"
        measured = f"{ratio:.2f}× ({redis:,.0f} vs {embedded:,.0f} {unit})"
        gap = abs(redis - limit * embedded)
        margin = f"{'met' if met else 'missed'} by {abs(ratio - limit):.2f}× ({gap:,.0f} {unit})"
        out.append(Target(name, measured, goal, met, margin, round(ratio, 3), round(limit, 3)))
    return out


def _fill(report: Report) -> Target:
    name, goal = "fill event stream → PUB p50", f"≤ {FILL_GOAL_US} µs"
    row = report.row("fill", EMBEDDED)
    if row is None:
        return _not_measured(name, goal, KEPT)
    p50 = row.summary.p50_us
    met = p50 <= FILL_GOAL_US
    margin = f"{'met' if met else 'missed'} by {abs(p50 - FILL_GOAL_US):,} µs"
    return Target(name, f"{p50:,} µs", goal, met, margin, float(p50), FILL_GOAL_US, KEPT)


def _scaling(report: Report) -> list[Target]:
    v = report.values
    if "scale_p50_small_us" not in v:
        return [_not_measured("p50 with many stored orders", f"≤ {SCALE_GOAL}×", KEPT)]
    ratio = v["scale_p50_large_us"] / max(1.0, v["scale_p50_small_us"])
    rss = v["rss_last_mib"] / max(1.0, v["rss_first_mib"]) - 1
    orders = f"{v['scale_orders']:,.0f}"
    return [
        Target(
            f"p50 with {orders} vs 100 stored",
            f"{ratio:.2f}×",
            f"≤ {SCALE_GOAL}×",
            ratio <= SCALE_GOAL,
            f"{'met' if ratio <= SCALE_GOAL else 'missed'} by {abs(ratio - SCALE_GOAL):.2f}×",
            round(ratio, 3),
            SCALE_GOAL,
            KEPT,
        ),
        Target(
            f"RSS {v['rss_first_orders']:,.0f} → {orders} orders",
            f"{rss * 100:+.1f} % ({v['rss_first_mib']:.0f} → {v['rss_last_mib']:.0f} MiB)",
            f"within ±{RSS_TOLERANCE * 100:.0f} %",
            abs(rss) <= RSS_TOLERANCE,
            f"{'met' if abs(rss) <= RSS_TOLERANCE else 'missed'} by "
            f"{abs(abs(rss) - RSS_TOLERANCE) * 100:.1f} points",
            round(rss, 4),
            RSS_TOLERANCE,
            KEPT,
        ),
    ]


def _ws(report: Report) -> list[Target]:
    """Issue 18: oexec with its orders over the WebSocket API, p50 below ccxt over REST
    (paced and closed loop) and at most ccxt over the WebSocket API."""
    checks = [
        _vs_anchor(report, "oexec_paced_ws", "ccxt_paced", "p50", WS_GOAL),
        _vs_anchor(report, "oexec_sync_ws", "ccxt", "p50", WS_GOAL),
        _vs_anchor(report, "oexec_paced_ws", "ccxt_paced_ws", "p50", WS_GOAL),
        _vs_anchor(report, "oexec_sync_ws", "ccxt_ws", "p50", WS_GOAL),
    ]
    return [attrs.evolve(target, group="issue 18") for target in checks]


def own_time_us(report: Report) -> tuple[int, str] | None:
    """End to end minus both hops: the HTTP floor (which contains the simulator's service
    time) and the ZeroMQ floor. What is left is what the daemon itself adds (a fact)."""
    mine, zmq, http = (
        report.row("oexec_sync", EMBEDDED),
        report.row("floor_zmq"),
        report.row("floor_http"),
    )
    if mine is None or zmq is None or http is None:
        return None
    own = mine.summary.p50_us - http.summary.p50_us - zmq.summary.p50_us
    return own, (
        f"{own} µs (e2e {mine.summary.p50_us} − HTTP floor {http.summary.p50_us} "
        f"− zmq floor {zmq.summary.p50_us})"
    )


def evaluate(report: Report) -> list[Target]:
    checks: list[Callable[[], list[Target]]] = [
        lambda: [
            _vs_anchor(report, "oexec_paced", "ccxt_paced", "p50", PACED_GOAL),
            _vs_anchor(report, "oexec_paced", "ccxt_paced", "p99", PACED_GOAL),
            _vs_anchor(report, "oexec_sync", "ccxt", "p50", SYNC_P50_GOAL),
            _vs_anchor(report, "oexec_sync", "ccxt", "p99", SYNC_P99_GOAL),
            _vs_anchor(report, "oexec_ladder20", "ccxt_ladder20", "p50", LADDER_GOAL),
            _cpu(report),
            _throughput(report),
        ],
        lambda: _redis(report),
        lambda: [_fill(report)],
        lambda: _scaling(report),
        lambda: _ws(report),
    ]
    return [target for check in checks for target in check()]
