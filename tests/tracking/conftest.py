"""Tracking tests reuse the end-to-end fixtures: real simulator, daemon, ZeroMQ, stores."""

from __future__ import annotations

from ..e2e.conftest import control, daemon, make_daemon, sim, store_kind

__all__ = ["control", "daemon", "make_daemon", "sim", "store_kind"]
