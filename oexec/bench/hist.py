"""Latency recording: HdrHistogram in microseconds, and the summary a table row shows.

Why HdrHistogram: percentiles up to p99.9 and the max need every sample, not a mean or a
bucketed approximation, and the recorders must be merged across load-generator
processes (the encoded form is a few hundred bytes). Values are whole microseconds,
1 µs … 60 s at three significant digits.
"""

from __future__ import annotations

import attrs
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_us(histogram: HdrHistogram, seconds: float) -> None:
    """Record one latency given in seconds (clamped into the histogram's range)."""
    value = int(seconds * 1_000_000)
    histogram.record_value(min(max(value, LOWEST_US), HIGHEST_US))


def encode(histogram: HdrHistogram) -> str:
    return bytes(histogram.encode()).decode("ascii")


def decode(text: str) -> HdrHistogram:
    merged = new_histogram()
    merged.add(HdrHistogram.decode(text.encode("ascii")))
    return merged


@attrs.frozen
class Summary:
    """One row's numbers. Latencies in µs; ``ops_per_s`` = count / wall time of the run."""

    count: int
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    max_us: int
    ops_per_s: float


def summarize(histogram: HdrHistogram, wall_s: float) -> Summary:
    count = int(histogram.get_total_count())
    p50, p90, p99, p999 = (int(histogram.get_value_at_percentile(p)) for p in PERCENTILES)
    return Summary(
        count=count,
        p50_us=p50,
        p90_us=p90,
        p99_us=p99,
        p999_us=p999,
        max_us=int(histogram.get_max_value()),
        ops_per_s=count / wall_s if wall_s > 0 else 0.0,
    )
