"""Fault injection: seeded, countable rules the HTTP layer and user stream consult.

A rule has a kind, a probability per eligible event, an optional count (the rule retires
after firing that many times), an optional path filter and kind-specific parameters.
All randomness comes from one ``random.Random(seed)``, so the same sequence of requests
fires the same faults on every run. Kinds and their parameters (docs/sim.md):

- ``latency``: delay before handling; ``ms`` fixed, or ``min_ms``/``max_ms`` uniform,
  or ``mean_ms`` exponential.
- ``error_5xx``: reply ``status`` (503) without processing the request.
- ``timeout_after_accept``: process, then reply 503 "unknown" (``reply = "503"``) or
  -1007 (``reply = "-1007"``): the order IS placed.
- ``reset_after_accept``: process, then drop the connection without a reply.
- ``stream_drop`` / ``stream_delay`` (``ms``) / ``stream_reorder`` / ``stream_disconnect``:
  user-stream events lost, late, swapped with the next one, or the socket closed.
- ``clock_skew``: the server clock seen by the request is shifted by ``offset_ms``.
- ``read_after_write_lag``: a just-accepted order answers -2013 to queries for ``ms``.
- ``listen_key_expiry``: an active listen key expires now.
"""

from __future__ import annotations

import fnmatch
import random
from typing import Any

import attrs

from oexec.sim.config import FaultConfig, SimConfigError, check_fault


@attrs.define
class _Rule:
    config: FaultConfig
    remaining: int | None

    def matches(self, kind: str, path: str | None) -> bool:
        if self.config.kind != kind or self.remaining == 0:
            return False
        pattern = self.config.path
        if pattern is None or path is None:
            return True
        return path == pattern or fnmatch.fnmatchcase(path, pattern)


class FaultInjector:
    """The active fault rules and the seeded generator deciding when they fire."""

    def __init__(self, seed: int = 0, rules: tuple[FaultConfig, ...] = ()) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._rules: list[_Rule] = []
        self.fired: dict[str, int] = {}
        for rule in rules:
            self.add(rule)

    def add(self, rule: FaultConfig) -> None:
        """Activate a rule (validated); rules of the same kind are consulted in order."""
        check_fault(rule)
        if rule.kind == "latency" and not _latency_valid(rule.params):
            raise SimConfigError("latency needs params ms, min_ms/max_ms or mean_ms (>= 0)")
        self._rules.append(_Rule(rule, rule.count))

    def clear(self) -> None:
        self._rules.clear()

    def reset(self) -> None:
        """Drop all rules, counters and restart the generator from the seed."""
        self.clear()
        self.fired.clear()
        self._rng = random.Random(self._seed)

    def active(self) -> list[dict[str, Any]]:
        """The rules still able to fire, for ``GET /_sim/faults``."""
        return [
            attrs.asdict(r.config) | {"remaining": r.remaining}
            for r in self._rules
            if r.remaining != 0
        ]

    def has(self, kind: str) -> bool:
        return any(r.config.kind == kind and r.remaining != 0 for r in self._rules)

    def roll(self, kind: str, path: str | None = None) -> FaultConfig | None:
        """The first matching rule of ``kind`` that fires now, or None.

        Every matching rule draws from the generator even when an earlier one fired, so
        one rule's outcome never shifts another's random sequence.
        """
        hit: _Rule | None = None
        for rule in self._rules:
            if not rule.matches(kind, path):
                continue
            fires = self._rng.random() < rule.config.probability
            if fires and hit is None:
                hit = rule
        if hit is None:
            return None
        if hit.remaining is not None:
            hit.remaining -= 1
        self.fired[kind] = self.fired.get(kind, 0) + 1
        self._rules = [r for r in self._rules if r.remaining != 0]
        return hit.config

    def latency_s(self, rule: FaultConfig) -> float:
        """Draw one delay, in seconds, from a latency rule's distribution."""
        return latency_ms(rule.params, self._rng) / 1000.0


def _latency_valid(params: dict[str, Any]) -> bool:
    try:
        return latency_ms(params, random.Random(0)) >= 0
    except (KeyError, TypeError, ValueError):
        return False


def latency_ms(params: dict[str, Any], rng: random.Random) -> float:
    """A delay in ms from ``ms`` (fixed), ``min_ms``/``max_ms`` (uniform) or ``mean_ms``."""
    if "ms" in params:
        return _non_negative(params["ms"])
    if "min_ms" in params or "max_ms" in params:
        low = _non_negative(params.get("min_ms", 0))
        high = _non_negative(params.get("max_ms", low))
        if high < low:
            raise ValueError("max_ms < min_ms")
        return rng.uniform(low, high)
    if "mean_ms" in params:
        mean = _non_negative(params["mean_ms"])
        return rng.expovariate(1.0 / mean) if mean > 0 else 0.0
    raise KeyError("ms")


def param_ms(rule: FaultConfig, name: str = "ms", default: float = 0.0) -> float:
    """A non-negative millisecond parameter of a rule."""
    return _non_negative(rule.params.get(name, default))


def _non_negative(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    number = float(value)
    if number < 0 or number != number:
        raise ValueError(f"must be >= 0: {value!r}")
    return number
