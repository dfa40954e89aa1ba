"""Fault rules: probability, count, path filter, determinism under the seed."""

from __future__ import annotations

import random

import pytest

from oexec.sim.config import FaultConfig, SimConfigError
from oexec.sim.faults import FaultInjector, latency_ms


def fires(injector: FaultInjector, kind: str, path: str | None, n: int) -> list[bool]:
    return [injector.roll(kind, path) is not None for _ in range(n)]


def test_same_seed_same_sequence() -> None:
    rule = FaultConfig(kind="error_5xx", probability=0.3)
    a = fires(FaultInjector(7, (rule,)), "error_5xx", "/x", 200)
    b = fires(FaultInjector(7, (rule,)), "error_5xx", "/x", 200)
    c = fires(FaultInjector(8, (rule,)), "error_5xx", "/x", 200)
    assert a == b and a != c
    assert 20 < sum(a) < 100


def test_count_retires_rule() -> None:
    injector = FaultInjector(0, (FaultConfig(kind="stream_drop", count=2),))
    assert fires(injector, "stream_drop", None, 5) == [True, True, False, False, False]
    assert injector.fired == {"stream_drop": 2}
    assert injector.active() == []


def test_path_filter_exact_and_glob() -> None:
    injector = FaultInjector(
        0,
        (
            FaultConfig(kind="latency", path="/fapi/v1/order", params={"ms": 5}),
            FaultConfig(kind="error_5xx", path="/fapi/v2/*"),
        ),
    )
    assert injector.roll("latency", "/fapi/v1/order") is not None
    assert injector.roll("latency", "/fapi/v1/openOrders") is None
    assert injector.roll("error_5xx", "/fapi/v2/account") is not None
    assert injector.roll("error_5xx", "/fapi/v1/account") is None
    assert injector.roll("stream_drop", "/x") is None


def test_reset_restores_seed_and_clears() -> None:
    injector = FaultInjector(3, (FaultConfig(kind="clock_skew", probability=0.5),))
    first = fires(injector, "clock_skew", None, 20)
    injector.reset()
    assert not injector.has("clock_skew")
    injector.add(FaultConfig(kind="clock_skew", probability=0.5))
    assert fires(injector, "clock_skew", None, 20) == first


@pytest.mark.parametrize(
    "params",
    [{"ms": 5}, {"min_ms": 1, "max_ms": 3}, {"mean_ms": 2}, {"mean_ms": 0}],
)
def test_latency_distributions(params: dict[str, float]) -> None:
    values = [latency_ms(params, random.Random(1)) for _ in range(10)]
    assert all(v >= 0 for v in values)
    if "max_ms" in params:
        assert all(1 <= v <= 3 for v in values)


@pytest.mark.parametrize(
    "rule",
    [
        FaultConfig(kind="nope"),
        FaultConfig(kind="latency", params={}),
        FaultConfig(kind="latency", params={"min_ms": 5, "max_ms": 1}),
        FaultConfig(kind="latency", params={"ms": -1}),
        FaultConfig(kind="error_5xx", probability=1.5),
        FaultConfig(kind="error_5xx", count=0),
        FaultConfig(kind="error_5xx", every_n=0),
        FaultConfig(kind="error_5xx", every_n=3, probability=0.5),
    ],
)
def test_invalid_rules_rejected(rule: FaultConfig) -> None:
    with pytest.raises(SimConfigError):
        FaultInjector(0).add(rule)


def test_a_rules_nth_chance_does_not_depend_on_other_rules() -> None:
    """Each rule draws from its own sequence: other rules (added before it, rolled in
    between, retiring on their count) never change whether its n-th chance fires."""
    drop = FaultConfig(kind="stream_drop", probability=0.3)
    alone = fires(FaultInjector(7, (drop,)), "stream_drop", None, 200)
    others = (
        FaultConfig(kind="error_5xx", probability=0.5),
        FaultConfig(kind="latency", probability=0.5, count=3, params={"min_ms": 1, "max_ms": 9}),
    )
    crowded = FaultInjector(7, (*others, drop))
    interleave = random.Random(1)
    seen = []
    for _ in range(200):
        for _ in range(interleave.randint(0, 3)):
            crowded.roll(interleave.choice(["error_5xx", "latency"]), "/fapi/v1/order")
        seen.append(crowded.roll("stream_drop", "key") is not None)
    assert seen == alone
    assert crowded.fired["latency"] == 3  # the count rule retired along the way


def test_every_n_fires_on_exactly_those_chances_without_randomness() -> None:
    rule = FaultConfig(kind="stream_drop", every_n=4, count=2)
    for seed in (0, 1):
        injector = FaultInjector(seed, (rule,))
        shots = fires(injector, "stream_drop", None, 12)
        assert [i + 1 for i, hit in enumerate(shots) if hit] == [4, 8]  # then retired
        assert injector.fired == {"stream_drop": 2}


def test_a_rules_latency_draws_are_its_own() -> None:
    slow = FaultConfig(kind="latency", path="/a", params={"min_ms": 1, "max_ms": 100})
    other = FaultConfig(kind="latency", path="/b", params={"min_ms": 1, "max_ms": 100})

    def delays(injector: FaultInjector, noise: bool) -> list[float]:
        out = []
        for _ in range(20):
            if noise:
                hit = injector.roll("latency", "/b")
                assert hit is not None
                injector.latency_s(hit)
            hit = injector.roll("latency", "/a")
            assert hit is not None
            out.append(injector.latency_s(hit))
        return out

    assert delays(FaultInjector(3, (slow,)), False) == delays(FaultInjector(3, (other, slow)), True)


def test_identical_rules_get_distinct_sequences_and_reset_replays_them() -> None:
    rule = FaultConfig(kind="error_5xx", probability=0.5, path="/x")
    injector = FaultInjector(4, (rule, rule))
    first, second = injector._rules
    a = [first.decide() for _ in range(50)]
    b = [second.decide() for _ in range(50)]
    assert a != b
    injector.reset()
    injector.add(rule)
    assert [injector._rules[0].decide() for _ in range(50)] == a
