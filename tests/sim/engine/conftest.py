"""Fixtures: an Exchange on a hand-driven clock, one funded account, its event log."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oexec.sim.engine import Exchange

START_MS = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = START_MS

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ex(clock: Clock) -> Exchange:
    exchange = Exchange(now_ms=clock, seed=7, liquidity_per_level=Decimal("1"))
    exchange.add_account("acct")
    return exchange


@pytest.fixture
def events(ex: Exchange) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = []
    ex.subscribe("acct", log.append)
    return log
