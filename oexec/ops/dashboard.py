"""Live dashboard (placeholder until built): /dashboard page and /dashboard/stream SSE."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web


def add_dashboard_routes(app: web.Application, provider: Callable[[], Mapping[str, Any]]) -> None:
    """Mount the dashboard routes on ``app``."""
    raise NotImplementedError
