"""The bench's output: one table, the stage breakdown, the targets, and ``--json``.

Every row carries a stable ``kind`` and ``store`` (oexec/bench/kinds.py); the table is
printed in the kinds' order. ``ratio_to_ccxt`` compares a row's p50 with its anchor's
(the ccxt row doing the same: one in flight, ``--inflight`` at once, paced, a ladder):
below 1.0 is faster than placing the order with ccxt directly. The targets are issue
14's, each with the measured value, its verdict and by how much.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from oexec.bench.hist import Summary
from oexec.bench.kinds import BY_NAME, table_key
from oexec.bench.stages import WITHIN


@attrs.define
class Row:
    name: str
    summary: Summary
    concurrency: int = 1
    errors: dict[str, int] = attrs.field(factory=dict)
    ratio_to_ccxt: float | None = None
    note: str = ""
    kind: str = ""  # oexec/bench/kinds.py: stable across runs and versions
    store: str | None = None  # sqlite | redis for a daemon's rows, None for the others
    daemon_cpu_us_per_order: float | None = None  # over the row, warmup included

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "kind": self.kind,
            "store": self.store,
            "name": self.name,
            "p50_us": s.p50_us,
            "p90_us": s.p90_us,
            "p99_us": s.p99_us,
            "p999_us": s.p999_us,
            "max_us": s.max_us,
            "ops_per_s": round(s.ops_per_s, 1),
            "ratio_to_ccxt": None if self.ratio_to_ccxt is None else round(self.ratio_to_ccxt, 3),
            "count": s.count,
            "concurrency": self.concurrency,
            "errors": self.errors,
            "note": self.note,
            "daemon_cpu_us_per_order": self.daemon_cpu_us_per_order,
        }


@attrs.frozen
class Target:
    name: str
    measured: str
    goal: str
    met: bool | None  # None: not measured in this run
    margin: str = ""  # by how much it is met or missed, in the goal's terms
    value: float | None = None  # the measured figure the goal is about (a ratio, µs, /s)
    limit: float | None = None  # the goal's bound on ``value``
    group: str = "issue 14"


@attrs.define
class Report:
    rows: list[Row] = attrs.field(factory=list)
    stages: dict[str, dict[str, float]] = attrs.field(factory=dict)  # store -> stage -> µs
    targets: list[Target] = attrs.field(factory=list)
    facts: dict[str, str] = attrs.field(factory=dict)  # shown under the table
    values: dict[str, float] = attrs.field(factory=dict)  # the same, as numbers (targets)
    machine: dict[str, Any] = attrs.field(factory=dict)

    def row(self, kind: str, store: str | None = None) -> Row | None:
        """The row of ``kind`` (on ``store`` for a daemon's rows)."""
        return next((r for r in self.rows if r.kind == kind and r.store == store), None)

    def sort_rows(self) -> None:
        """Table order: oexec/bench/kinds.py's sections, stores and kinds."""
        self.rows.sort(key=lambda r: table_key(r.kind, r.store))

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "machine": self.machine,
                "rows": [r.to_json() for r in self.rows],
                "stages_mean_us": self.stages,
                "targets": [attrs.asdict(t) for t in self.targets],
                "facts": self.facts,
                "values": self.values,
            },
            option=orjson.OPT_INDENT_2,
        )


def set_ratios(rows: Sequence[Row]) -> None:
    """``ratio_to_ccxt`` of each row: its p50 over its anchor kind's (kinds.py)."""
    anchors = {r.kind: r for r in rows if r.store is None}
    for row in rows:
        kind = BY_NAME.get(row.kind)
        base = anchors.get(kind.anchor or "") if kind is not None else None
        if base is not None and base.summary.p50_us > 0:
            row.ratio_to_ccxt = row.summary.p50_us / base.summary.p50_us


def machine() -> dict[str, Any]:
    """What the numbers were measured on, including how busy the machine was."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        loop = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        loop = "asyncio"
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "event_loop": loop,
        "load_average_at_start": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _us(value: float) -> str:
    return f"{value / 1000:.2f} ms" if value >= 10_000 else f"{value:.0f} µs"


def _stage_line(stage: str, us: float) -> str:
    outer = WITHIN.get(stage)
    if outer is None:
        return f"  {stage:<24}{_us(us):>10}"
    return f"    {f'{stage} (in {outer})':<22}{_us(us):>10}"


def render(report: Report) -> str:
    header = (
        f"{'row':<44}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}{'max':>9}{'ops/s':>9}{'×ccxt':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in report.rows:
        s = row.summary
        ratio = f"{row.ratio_to_ccxt:.2f}" if row.ratio_to_ccxt is not None else "-"
        lines.append(
            f"{row.name:<44}{s.p50_us:>9}{s.p90_us:>9}{s.p99_us:>9}{s.p999_us:>9}{s.max_us:>9}"
            f"{s.ops_per_s:>9.0f}{ratio:>7}" + (f"  errors: {row.errors}" if row.errors else "")
        )
    lines.append("(latencies in µs, measured by the load generator around one call)")
    for store, means in report.stages.items():
        lines.append("")
        lines.append(f"daemon stages, mean per order ({store}, sync client):")
        lines.extend(_stage_line(stage, us) for stage, us in means.items())
    if report.facts:
        lines.append("")
        lines.extend(f"{key}: {value}" for key, value in report.facts.items())
    verdicts = {True: "met", False: "NOT MET", None: "not measured"}
    for group in dict.fromkeys(t.group for t in report.targets):
        lines.append("")
        lines.append(f"targets ({group}):")
        for t in (t for t in report.targets if t.group == group):
            margin = f"; {t.margin}" if t.margin else ""
            lines.append(f"  {verdicts[t.met]:<13}{t.name}: {t.measured} (goal {t.goal}{margin})")
    return "\n".join(lines)
