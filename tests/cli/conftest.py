"""The CLI tests reuse the end-to-end harness (real simulator + daemon) on SQLite."""

import pytest

from ..e2e.conftest import control, daemon, make_daemon, sim  # noqa: F401  (fixtures)


@pytest.fixture
def store_kind() -> str:
    return "sqlite"
