"""The hook the front end counts through; oexec/ops/metrics.py supplies a Prometheus one.

Kept as a Protocol so the front end imports no metrics library and tests can pass a
plain recorder.
"""

from __future__ import annotations

from typing import Protocol


class FrontMetrics(Protocol):
    def request(self, op: str, outcome: str, seconds: float) -> None:
        """One request answered. ``op`` is the op name (``"invalid"`` when it could not
        be read); ``outcome`` is ``"ok"`` or the error code."""

    def busy(self) -> None:
        """One request refused with BUSY because the queue was full."""

    def inflight(self, n: int) -> None:
        """Requests being processed by workers right now."""

    def stage(self, stage: str, seconds: float) -> None:
        """Time spent in one of the front end's stages of a request: ``decode`` (split
        the frames, decode and check the request) and ``reply`` (encode and send it)."""
