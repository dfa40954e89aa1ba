"""Fault injection: seeded, countable rules the HTTP layer and user stream consult.

A rule has a kind, a probability per eligible event (or ``every_n``: fire on eligible
events n, 2n, ... without randomness), an optional count (the rule retires after firing
that many times), an optional path filter and kind-specific parameters.

Each rule draws from its own ``random.Random``, seeded from the seed and the rule's
identity (kind, path, and how many rules of that kind and path were added before it since
start or reset). So whether a rule's n-th eligible event fires depends only on the seed and
that rule: concurrent requests and stream events interleaving differently, other rules
firing, retiring or being added never shift it. (One shared generator did: timing decided
which rule got which draw.) Kinds and their parameters (docs/sim.md):

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
from collections import Counter
from typing import Any

import attrs

from oexec.sim.config import FaultConfig, SimConfigError, check_fault


@attrs.define
class _Rule:
    config: FaultConfig
    remaining: int | None
    decisions: random.Random  # whether each chance fires
    values: random.Random  # the rule's parameter draws (latency), apart from its decisions
    chances: int = 0

    def matches(self, kind: str, path: str | None) -> bool:
        if self.config.kind != kind or self.remaining == 0:
            return False
        pattern = self.config.path
        if pattern is None or path is None:
            return True
        return path == pattern or fnmatch.fnmatchcase(path, pattern)

    def decide(self) -> bool:
        """Whether this rule's next chance fires: one draw of its own, or the every_n count."""
        self.chances += 1
        if self.config.every_n is not None:
            return self.chances % self.config.every_n == 0
        return self.decisions.random() < self.config.probability


class FaultInjector:
    """The active fault rules, each with a generator seeded from the seed and its identity."""

    def __init__(self, seed: int = 0, rules: tuple[FaultConfig, ...] = ()) -> None:
        self._seed = seed
        self._rules: list[_Rule] = []
        self._added: Counter[tuple[str, str | None]] = Counter()
        self._last_hit: _Rule | None = None
        self._spare = random.Random(f"{seed}/spare")  # delays for a config no rule owns
        self.fired: dict[str, int] = {}
        for rule in rules:
            self.add(rule)

    def add(self, rule: FaultConfig) -> None:
        """Activate a rule (validated); rules of the same kind are consulted in order."""
        check_fault(rule)
        if rule.kind == "latency" and not _latency_valid(rule.params):
            raise SimConfigError("latency needs params ms, min_ms/max_ms or mean_ms (>= 0)")
        identity = (rule.kind, rule.path)
        name = f"{self._seed}/{rule.kind}/{rule.path}/{self._added[identity]}"
        self._added[identity] += 1
        # str seeds hash with SHA-512: the same sequence in every process (no PYTHONHASHSEED).
        decisions, values = random.Random(name), random.Random(name + "/values")
        self._rules.append(_Rule(rule, rule.count, decisions, values))

    def clear(self) -> None:
        """Drop the rules; rules added later still get fresh sequences (reset restarts)."""
        self._rules.clear()
        self._last_hit = None

    def reset(self) -> None:
        """Drop all rules and counters; rules added next replay their sequences from the seed."""
        self.clear()
        self.fired.clear()
        self._added.clear()
        self._spare = random.Random(f"{self._seed}/spare")

    def active(self) -> list[dict[str, Any]]:
        """The rules still able to fire, for ``GET /_sim/faults``."""
        return [
            attrs.asdict(r.config) | {"remaining": r.remaining, "chances": r.chances}
            for r in self._rules
            if r.remaining != 0
        ]

    def has(self, kind: str) -> bool:
        return any(r.config.kind == kind and r.remaining != 0 for r in self._rules)

    def roll(self, kind: str, path: str | None = None) -> FaultConfig | None:
        """The first matching rule of ``kind`` that fires now, or None.

        Every matching rule takes its chance even when an earlier one fired, so a rule's
        n-th chance is the n-th eligible event whatever the rules before it did.
        """
        hit: _Rule | None = None
        for rule in self._rules:
            if not rule.matches(kind, path):
                continue
            fires = rule.decide()
            if fires and hit is None:
                hit = rule
        if hit is None:
            return None
        if hit.remaining is not None:
            hit.remaining -= 1
        self.fired[kind] = self.fired.get(kind, 0) + 1
        self._rules = [r for r in self._rules if r.remaining != 0]
        self._last_hit = hit
        return hit.config

    def latency_s(self, rule: FaultConfig) -> float:
        """Draw one delay, in seconds, from a latency rule's distribution (its own draws)."""
        owner = self._last_hit
        if owner is None or owner.config is not rule:
            owner = next((r for r in self._rules if r.config is rule), None)
        rng = owner.values if owner is not None else self._spare
        return latency_ms(rule.params, rng) / 1000.0


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
