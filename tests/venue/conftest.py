"""Shared helpers for the venue tests: fixtures from tests/fixtures/binance, a recording gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oexec.config import VenueConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binance"
BASE = "http://127.0.0.1:9"
SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
API_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class RecordingGate:
    """A RequestGate that records every call (the real one belongs to the limits package)."""

    def __init__(self) -> None:
        self.acquired: list[tuple[int, int, float | None]] = []
        self.observed: list[tuple[int | None, int | None, int | None]] = []
        self.paused: list[float] = []

    async def acquire(self, *, weight: int, orders: int, deadline_s: float | None) -> None:
        self.acquired.append((weight, orders, deadline_s))

    def observe(
        self,
        *,
        used_weight_1m: int | None,
        order_count_10s: int | None,
        order_count_1m: int | None,
    ) -> None:
        self.observed.append((used_weight_1m, order_count_10s, order_count_1m))

    def pause(self, retry_after_s: float) -> None:
        self.paused.append(retry_after_s)


@pytest.fixture
def config() -> VenueConfig:
    return VenueConfig(
        base_url=BASE,
        api_key=API_KEY,
        api_secret=SECRET,
        time_sync_interval_s=0,
        retry_base_s=0.001,
        retry_max_s=0.002,
        read_retries=2,
    )


@pytest.fixture
def gate() -> RecordingGate:
    return RecordingGate()
