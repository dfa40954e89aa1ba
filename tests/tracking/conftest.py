"""Tracking tests reuse the end-to-end fixtures: real simulator, daemon, ZeroMQ, stores.

Full-size runs are marked ``slow`` and skipped unless selected (``-m slow``, which is
what ``scripts/track-truth`` does), so the default suite stays fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..e2e.conftest import control, daemon, make_daemon, sim, store_kind

__all__ = ["control", "daemon", "make_daemon", "sim", "store_kind"]

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="full-size run: select with -m slow (scripts/track-truth)")
    for item in items:
        if item.get_closest_marker("slow") and HERE in Path(str(item.fspath)).parents:
            item.add_marker(skip)
