"""What a load-generator process is asked to do, and what it answers.

A job travels to ``python -m oexec.bench.worker`` as one JSON line on stdin (never on
the command line: the API secret would show in ``ps``); the worker answers on stdout
with ``P <done>`` progress lines and one final ``R <json>`` result line.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

import attrs
import cattrs
import orjson
from hdrh.histogram import HdrHistogram

from oexec.bench.hist import decode, encode, new_histogram, record_us

_converter = cattrs.Converter(forbid_extra_keys=True)


@attrs.frozen(repr=False)
class Job:
    row: str
    count: int = 1000
    warmup: int = 100
    inflight: int = 1
    sim_url: str = ""
    ws_url: str = ""
    api_key: str = ""
    api_secret: str = ""
    endpoint: str = ""  # the daemon's (or the echo server's) ZeroMQ request endpoint
    events_endpoint: str = ""
    mark: str = "50000"
    timeout_s: float = 60.0  # the whole job's budget: a stuck row never hangs the bench
    rate: float = 20.0  # paced rows: mean arrivals per second (Poisson)
    sides: tuple[str, ...] = ()  # paced and ladder rows: "oexec", "ccxt" or both, in turns

    def to_json(self) -> bytes:
        return orjson.dumps(_converter.unstructure(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Job:
        return _converter.structure(orjson.loads(raw), cls)

    def __repr__(self) -> str:
        return f"Job(row={self.row!r}, count={self.count}, inflight={self.inflight})"


@attrs.define
class Result:
    """Latency histograms by name (``main`` is the row's), wall time and outcome counts."""

    wall_s: float = 0.0
    histograms: dict[str, HdrHistogram] = attrs.field(factory=dict)
    outcomes: dict[str, int] = attrs.field(factory=dict)
    extra: dict[str, float] = attrs.field(factory=dict)
    measuring: bool = False  # False during the warmup

    def histogram(self, name: str = "main") -> HdrHistogram:
        found = self.histograms.get(name)
        if found is None:
            found = self.histograms[name] = new_histogram()
        return found

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "wall_s": self.wall_s,
                "histograms": {k: encode(v) for k, v in self.histograms.items()},
                "outcomes": self.outcomes,
                "extra": self.extra,
            }
        )

    def side(self, name: str) -> Result:
        """One side of a row run in turns (paired.py): its histograms and outcomes without
        the ``<side>:`` prefix (its own latency as ``main``), its turns' time as wall."""
        prefix = f"{name}:"
        histograms = {
            "main" if key == name else key.removeprefix(prefix): histogram
            for key, histogram in self.histograms.items()
            if key == name or key.startswith(prefix)
        }
        outcomes = {
            key.removeprefix(prefix): count
            for key, count in self.outcomes.items()
            if key.startswith(prefix)
        }
        extra = {
            key.removeprefix(f"{name}_"): value
            for key, value in self.extra.items()
            if key.startswith(f"{name}_")
        }
        return Result(extra.pop("wall_s", 0.0), histograms, outcomes, extra)

    def merge(self, other: Result) -> None:
        """Add ``other``'s samples, outcomes, wall time and extras to this one."""
        for key, histogram in other.histograms.items():
            self.histogram(key).add(histogram)
        for key, count in other.outcomes.items():
            self.outcomes[key] = self.outcomes.get(key, 0) + count
        for key, value in other.extra.items():
            self.extra[key] = self.extra.get(key, 0.0) + value
        self.wall_s += other.wall_s

    @classmethod
    def from_json(cls, raw: bytes | str) -> Result:
        data = orjson.loads(raw)
        return cls(
            wall_s=float(data["wall_s"]),
            histograms={k: decode(v) for k, v in data["histograms"].items()},
            outcomes={k: int(v) for k, v in data["outcomes"].items()},
            extra={k: float(v) for k, v in data["extra"].items()},
        )


Progress = Callable[[int], None]
Call = Callable[[int], Awaitable[str]]


async def run_closed_loop(
    call: Call, job: Job, progress: Progress, result: Result | None = None
) -> Result:
    """``job.inflight`` tasks each send, await, record, repeat: warmup first, then count.

    ``call(i)`` returns the outcome label ("ok", an error code...); only "ok" latencies
    go into ``main``, every other outcome into a histogram of its own name.
    """
    import asyncio

    result = result or Result()
    for phase_count, measured in ((job.warmup, False), (job.count, True)):
        next_index = iter(range(phase_count))
        done = 0

        async def lane(measured: bool = measured, indexes: Iterator[int] = next_index) -> None:
            nonlocal done
            for i in indexes:
                started = time.perf_counter()
                outcome = await call(i)
                if not measured:
                    continue
                record_us(result.histogram("main" if outcome == "ok" else outcome), _since(started))
                result.count(outcome)
                done += 1
                if done % 100 == 0:
                    progress(done)

        result.measuring = measured
        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(max(1, job.inflight))))
        if measured:
            result.wall_s = time.perf_counter() - started
            progress(done)
    return result


def _since(started: float) -> float:
    return time.perf_counter() - started
