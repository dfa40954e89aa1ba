"""Operations tests run the real daemon against the real simulator (tests/e2e fixtures)."""

from __future__ import annotations

from ..e2e.conftest import control, daemon, make_daemon, sim, store_kind

__all__ = ["control", "daemon", "make_daemon", "sim", "store_kind"]
