"""Issue 10's targets, checked against one run's rows and values.

Each target is a (name, measured, goal, met) line; a target whose rows were not run
(``--no-direct``, no ``--store``, ``--scale 0``) is "not measured", never "met".
"""

from __future__ import annotations

from collections.abc import Callable

from oexec.bench.report import Report, Target

ZMQ_FLOOR = "floor: raw zmq round trip"
HTTP_FLOOR = "floor: signed aiohttp POST"
CCXT = "ccxt create_order"
PYTHON_BINANCE = "python-binance futures_create_order"


def ccxt_concurrent(inflight: int) -> str:
    return f"ccxt async ×{inflight}"


def oexec_sync(store: str) -> str:
    return f"oexec Client ({store})"


def oexec_async(inflight: int, store: str) -> str:
    return f"oexec AsyncClient ×{inflight} ({store})"


def fill_row(store: str) -> str:
    return f"fill event: stream → PUB ({store})"


OWN_TIME_GOAL_US = 150
THROUGHPUT_GOAL = 5000
FILL_GOAL_US = 300
SCALE_GOAL = 1.1
RSS_TOLERANCE = 0.10


def _ratio_target(report: Report, store: str, limit: float) -> list[Target]:
    mine, base = report.row(oexec_sync(store)), report.row(CCXT)
    if mine is None or base is None:
        return [Target(f"oexec {store} vs ccxt, one in flight", "-", f"≤ {limit}×", None)]
    out = []
    for label, ours, theirs in (
        ("p50", mine.summary.p50_us, base.summary.p50_us),
        ("p99", mine.summary.p99_us, base.summary.p99_us),
    ):
        ratio = ours / max(1, theirs)
        measured = f"{ratio:.2f}× ({ours} vs {theirs} µs)"
        out.append(
            Target(f"oexec {store} {label} vs ccxt", measured, f"≤ {limit}×", ratio <= limit)
        )
    return out


def _own_time(report: Report) -> Target:
    """End to end minus both hops: the HTTP floor (which contains the simulator's service
    time) and the ZeroMQ floor. What is left is what the daemon itself adds."""
    mine, zmq, http = (
        report.row(oexec_sync("sqlite")),
        report.row(ZMQ_FLOOR),
        report.row(HTTP_FLOOR),
    )
    goal = f"≤ {OWN_TIME_GOAL_US} µs"
    if mine is None or zmq is None or http is None:
        return Target("daemon's own time p50", "-", goal, None)
    own = mine.summary.p50_us - http.summary.p50_us - zmq.summary.p50_us
    measured = (
        f"{own} µs (e2e {mine.summary.p50_us} − HTTP floor {http.summary.p50_us} "
        f"− zmq floor {zmq.summary.p50_us})"
    )
    return Target("daemon's own time p50", measured, goal, own <= OWN_TIME_GOAL_US)


def _throughput(report: Report, inflight: int) -> list[Target]:
    mine, base = report.row(oexec_async(inflight, "sqlite")), report.row(ccxt_concurrent(inflight))
    out = []
    if mine is None:
        return [Target(f"throughput ×{inflight}", "-", f"≥ {THROUGHPUT_GOAL}/s", None)]
    ops = mine.summary.ops_per_s
    out.append(
        Target(
            f"throughput ×{inflight}",
            f"{ops:.0f}/s",
            f"≥ {THROUGHPUT_GOAL}/s",
            ops >= THROUGHPUT_GOAL,
        )
    )
    if base is not None:
        theirs = base.summary.ops_per_s
        out.append(
            Target(
                f"throughput ×{inflight} vs ccxt async",
                f"{ops:.0f}/s vs {theirs:.0f}/s",
                "≥ ccxt",
                ops >= theirs,
            )
        )
    return out


def _fill(report: Report) -> Target:
    row = report.row(fill_row("sqlite"))
    if row is None:
        return Target("fill event stream → PUB p50", "-", f"≤ {FILL_GOAL_US} µs", None)
    p50 = row.summary.p50_us
    return Target(
        "fill event stream → PUB p50", f"{p50} µs", f"≤ {FILL_GOAL_US} µs", p50 <= FILL_GOAL_US
    )


def _scaling(report: Report) -> list[Target]:
    v = report.values
    if "scale_p50_small_us" not in v:
        return [Target("p50 with many stored orders", "-", f"≤ {SCALE_GOAL}×", None)]
    ratio = v["scale_p50_large_us"] / max(1.0, v["scale_p50_small_us"])
    rss = v["rss_last_mib"] / max(1.0, v["rss_first_mib"]) - 1
    orders = f"{v['scale_orders']:,.0f}"
    return [
        Target(
            f"p50 with {orders} vs 100 stored",
            f"{ratio:.2f}×",
            f"≤ {SCALE_GOAL}×",
            ratio <= SCALE_GOAL,
        ),
        Target(
            f"RSS {v['rss_first_orders']:,.0f} → {orders} orders",
            f"{rss * 100:+.1f} % ({v['rss_first_mib']:.0f} → {v['rss_last_mib']:.0f} MiB)",
            f"within ±{RSS_TOLERANCE * 100:.0f} %",
            abs(rss) <= RSS_TOLERANCE,
        ),
    ]


def evaluate(report: Report, inflight: int) -> list[Target]:
    checks: list[Callable[[], list[Target]]] = [
        lambda: _ratio_target(report, "sqlite", 1.0),
        lambda: _ratio_target(report, "redis", 1.15),
        lambda: [_own_time(report)],
        lambda: _throughput(report, inflight),
        lambda: [_fill(report)],
        lambda: _scaling(report),
    ]
    return [target for check in checks for target in check()]
