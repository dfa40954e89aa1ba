"""The daemon-level event tests reuse the end-to-end harness (real simulator + daemon,
SQLite and Redis)."""

from ..e2e.conftest import (  # noqa: F401  (fixtures)
    control,
    daemon,
    make_daemon,
    sim,
    store_kind,
)
