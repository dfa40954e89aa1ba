"""Helpers shared by the front-end tests."""

from __future__ import annotations

from typing import Any

import msgpack


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.busy_count = 0
        self.inflight_seen: list[int] = []
        self.stages: list[str] = []

    def request(self, op: str, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.requests.append((op, outcome))

    def busy(self) -> None:
        self.busy_count += 1

    def inflight(self, n: int) -> None:
        self.inflight_seen.append(n)

    def stage(self, stage: str, seconds: float) -> None:
        assert seconds >= 0
        self.stages.append(stage)


def req(op: str, id: Any = 1, **fields: Any) -> bytes:
    return msgpack.packb({"v": 1, "id": id, "op": op, **fields})


def place_fields(request_id: str = "r1", **kw: Any) -> dict[str, Any]:
    data = {
        "request_id": request_id,
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.010",
        "price": "50000",
        "time_in_force": "GTC",
    }
    data.update(kw)
    return data
