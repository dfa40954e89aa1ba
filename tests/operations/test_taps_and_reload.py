"""The pure parts behind the daemon wiring: gate and store taps, what a reload applies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest

from oexec.config import Config, LoggingConfig, RiskConfig, StoreConfig, ValidationConfig
from oexec.errors import ErrorCode, ThrottleError
from oexec.models import ExchangeInfo, SymbolRules
from oexec.ops.metrics import Metrics
from oexec.ops.observe import ObservedGate, TimedStore, limit_type
from oexec.ops.reload import apply_reload, restart_only_changes
from oexec.service.rules.risk import RiskManager
from oexec.service.rules.symbol_book import SymbolRulesBook


def reached(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["type"]: s.value
        for family in metrics.rate_limit_reached.collect()
        for s in family.samples
        if s.name.endswith("_total")
    }


@pytest.mark.parametrize(
    ("code", "details", "kind"),
    [
        (ErrorCode.RATE_LIMITED, {"window": "orders_10s"}, "orders"),
        (ErrorCode.RATE_LIMITED, {"window": "weight_1m"}, "weight"),
        (ErrorCode.RATE_LIMITED, {"limiter": "shared"}, "orders"),
        (ErrorCode.VENUE_BANNED, {}, "ban"),
        (ErrorCode.STORE_UNAVAILABLE, {}, None),
    ],
)
def test_limit_type(code: ErrorCode, details: dict[str, Any], kind: str | None) -> None:
    assert limit_type(ThrottleError("x", code=code, details=details)) == kind


class RefusingGate:
    def __init__(self) -> None:
        self.paused: list[float] = []

    async def acquire(self, *, weight: int, orders: int, deadline_s: float | None) -> None:
        raise ThrottleError("full", code=ErrorCode.RATE_LIMITED, details={"window": "weight_1m"})

    def observe(self, used: object, window_age_s: object = None) -> None:
        return None

    def pause(self, retry_after_s: float) -> None:
        self.paused.append(retry_after_s)


async def test_observed_gate_counts_refusals_and_pauses() -> None:
    metrics, inner = Metrics(), RefusingGate()
    gate = ObservedGate(inner, metrics)
    with pytest.raises(ThrottleError):
        await gate.acquire(weight=1, orders=0, deadline_s=0)
    gate.pause(7.0)
    assert inner.paused == [7.0]
    assert reached(metrics) == {"weight": 1.0, "ban": 1.0}


class Store:
    name = "inner"

    async def ping(self) -> str:
        return "pong"

    def sync(self) -> int:
        return 3


async def test_timed_store_times_coroutines_and_passes_the_rest() -> None:
    metrics = Metrics()
    store = TimedStore(Store(), metrics)
    assert await store.ping() == "pong" and await store.ping() == "pong"
    assert store.sync() == 3 and store.name == "inner"
    counts = {
        s.labels["op"]: s.value
        for family in metrics.store_operation_duration.collect()
        for s in family.samples
        if s.name.endswith("_count")
    }
    assert counts == {"ping": 2.0}


def book() -> SymbolRulesBook:
    rules = SymbolRulesBook()
    rules.load(
        ExchangeInfo(
            server_time=0, symbols={"BTCUSDT": SymbolRules("BTCUSDT", max_qty=Decimal(100))}
        )
    )
    return rules


def test_reload_applies_the_safe_part_only() -> None:
    current = Config(risk=RiskConfig(external_endpoint="tcp://127.0.0.1:7000"))
    new = Config(
        logging=LoggingConfig(level="DEBUG", json=False),
        risk=RiskConfig(max_order_notional=Decimal(50), external_endpoint="tcp://x:1"),
        validation=ValidationConfig(overrides={"BTCUSDT": {"max_qty": "5"}}),
        store=StoreConfig(url="redis://127.0.0.1:6379/0"),
    )
    risk, rules = RiskManager(RiskConfig()), book()
    applied = apply_reload(current, new, risk=risk, rules_book=rules)
    assert risk.config.max_order_notional == Decimal(50)
    assert risk.config.external_endpoint == "tcp://127.0.0.1:7000"  # restart-only
    rule = rules.get("BTCUSDT")
    assert rule is not None and rule.max_qty == Decimal(5)
    assert applied.logging == LoggingConfig(level="DEBUG", json=True)
    assert applied.store == current.store
    assert restart_only_changes(current, new) == [
        "store",
        "risk.external_endpoint",
        "logging.json",
    ]


def test_a_bad_override_changes_nothing() -> None:
    risk, rules = RiskManager(RiskConfig()), book()
    bad = attrs.evolve(
        Config(risk=RiskConfig(max_order_notional=Decimal(1))),
        validation=ValidationConfig(overrides={"BTCUSDT": {"max_qty": "lots"}}),
    )
    with pytest.raises(ValueError):
        apply_reload(Config(), bad, risk=risk, rules_book=rules)
    rule = rules.get("BTCUSDT")
    assert rule is not None and rule.max_qty == Decimal(100)
    assert risk.config == RiskConfig()
