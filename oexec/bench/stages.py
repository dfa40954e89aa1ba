"""Where the daemon's time goes: its per-stage histograms, read from ``/metrics``.

The daemon reports each stage to ``pipeline_stage_duration_seconds{stage}``, timed
where it happens: the front end (``decode``, ``reply``: encode and send), the pipeline
(``validation``, ``risk``, ``idempotency``, ``venue``, ``persist``, and ``breaker``: the
breaker's own share of the venue call) and the venue adapter for submits (``limiter``:
waiting for rate-limit tokens, ``sign``: parameters, signature and URL). The buckets
are too coarse for microsecond percentiles, but ``_sum`` and ``_count`` are exact, so
the breakdown is the mean per stage over one row (the difference of two scrapes taken
before and after it). ``limiter``, ``sign`` and ``breaker`` are parts of ``venue``
(:data:`WITHIN`); the others overlap nothing but are not exhaustive: what no stage
covers (ZeroMQ, the event loop, awaiting the store thread) is the remainder. Events are
published inside ``persist`` (by the order writer) and are not timed apart.
"""

from __future__ import annotations

import re

import aiohttp

_SAMPLE = re.compile(
    r"^(?:oexec_)?pipeline_stage_duration_seconds_(sum|count)\{stage=\"([^\"]+)\"\} (\S+)$",
    re.MULTILINE,
)
#: Display order: the path of one order through the daemon.
ORDER = (
    "decode",
    "validation",
    "risk",
    "idempotency",
    "venue",
    "limiter",
    "sign",
    "breaker",
    "persist",
    "publish",
    "reply",
)

#: Stages measured inside another one (stage -> the enclosing stage).
WITHIN = {"limiter": "venue", "sign": "venue", "breaker": "venue"}

Totals = dict[str, tuple[float, float]]  # stage -> (sum seconds, count)


def parse(text: str) -> Totals:
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for kind, stage, value in _SAMPLE.findall(text):
        (sums if kind == "sum" else counts)[stage] = float(value)
    return {stage: (sums.get(stage, 0.0), counts[stage]) for stage in counts}


async def scrape(http_url: str) -> Totals:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{http_url}/metrics") as resp,
    ):
        return parse(await resp.text())


def mean_us(before: Totals, after: Totals) -> dict[str, float]:
    """Mean microseconds per stage between two scrapes, in path order."""
    means: dict[str, float] = {}
    names = [s for s in ORDER if s in after] + sorted(set(after) - set(ORDER))
    for stage in names:
        total, count = after[stage]
        total0, count0 = before.get(stage, (0.0, 0.0))
        if count > count0:
            means[stage] = (total - total0) / (count - count0) * 1e6
    return means
