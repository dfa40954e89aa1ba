"""The bench's output: one table, the stage breakdown, the targets, and ``--json``.

``ratio_to_ccxt`` compares a row's p50 with the ccxt row of the same concurrency (one
in flight, or ``--inflight``): below 1.0 is faster than placing the order with ccxt
directly. The targets are issue 10's, each with the measured value and its verdict.
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
from oexec.bench.stages import WITHIN


@attrs.define
class Row:
    name: str
    summary: Summary
    concurrency: int = 1
    errors: dict[str, int] = attrs.field(factory=dict)
    ratio_to_ccxt: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
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
        }


@attrs.frozen
class Target:
    name: str
    measured: str
    goal: str
    met: bool | None  # None: not measured in this run


@attrs.define
class Report:
    rows: list[Row] = attrs.field(factory=list)
    stages: dict[str, dict[str, float]] = attrs.field(factory=dict)  # store -> stage -> µs
    targets: list[Target] = attrs.field(factory=list)
    facts: dict[str, str] = attrs.field(factory=dict)  # shown under the table
    values: dict[str, float] = attrs.field(factory=dict)  # the same, as numbers (targets)
    machine: dict[str, Any] = attrs.field(factory=dict)

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)

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


def set_ratios(rows: Sequence[Row], baselines: dict[int, str]) -> None:
    """``ratio_to_ccxt`` of each row against the ccxt row of its concurrency."""
    by_name = {r.name: r for r in rows}
    for row in rows:
        base = by_name.get(baselines.get(row.concurrency, ""))
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
    if report.targets:
        lines.append("")
        lines.append("targets (issue 10):")
        verdicts = {True: "met", False: "NOT MET", None: "not measured"}
        for t in report.targets:
            lines.append(f"  {verdicts[t.met]:<13}{t.name}: {t.measured} (goal {t.goal})")
    return "\n".join(lines)
