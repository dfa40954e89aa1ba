"""Durable order state behind the OrderStore port: Redis (shared) or SQLite (embedded).

``open_store`` picks the backend from ``StoreConfig.url``; callers then ``await
store.start()`` (fails fast with StoreError) and ``await store.close()`` at shutdown.
"""

from __future__ import annotations

from oexec.config import StoreConfig
from oexec.errors import ErrorCode, StoreError
from oexec.service.ports import OrderStore
from oexec.store.keys import DEFAULT_PREFIX
from oexec.store.redis import RedisStore
from oexec.store.sqlite import SqliteStore

__all__ = ["RedisStore", "SqliteStore", "open_store", "sqlite_path_from_url"]

SQLITE_SCHEME = "sqlite:///"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://")


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///relative.db`` -> ``relative.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db``
    (SQLAlchemy's convention, as ``oexec run --store`` reads it)."""
    path = url[len(SQLITE_SCHEME) :]
    if not path:
        raise StoreError("sqlite URL without a path", code=ErrorCode.INTERNAL)
    return path


def sqlite_claim_level(config: StoreConfig) -> str:
    """The SQLite synchronous level of a claim's commit: what ``durability`` promises
    (FULL fsyncs it: a power loss cannot take it; NORMAL survives a daemon crash), unless
    ``sqlite_synchronous`` overrides it."""
    if config.sqlite_synchronous:
        return config.sqlite_synchronous
    return "FULL" if config.durability == "fsync" else "NORMAL"


def open_store(
    config: StoreConfig, *, prefix: str = DEFAULT_PREFIX, early_claims: bool = False
) -> OrderStore:
    """The store for ``config.url``: empty -> SQLite at ``config.sqlite_path``;
    ``sqlite:///path``; ``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``.

    Connects nothing yet for Redis (``start`` does); ``prefix`` namespaces Redis keys.
    ``early_claims`` (the daemon): SQLite decides claims on the loop, with its claim log,
    and owns the file alone (oexec/store/claim_log.py); tools reading a store leave it off.
    Raises StoreError for an unknown scheme.
    """
    url = config.url.strip()
    if not url or url.startswith(SQLITE_SCHEME):
        path = sqlite_path_from_url(url) if url else config.sqlite_path
        return SqliteStore(
            path,
            order_ttl_s=config.order_ttl_s,
            synchronous=sqlite_claim_level(config),
            update_synchronous=config.sqlite_update_synchronous,
            claim_log=early_claims,
        )
    if url.startswith(REDIS_SCHEMES):
        return RedisStore.from_url(
            url,
            prefix=prefix,
            order_ttl_s=config.order_ttl_s,
            timeout_s=config.redis_timeout_s,
            max_connections=config.redis_max_connections,
        )
    scheme = url.partition("://")[0]
    raise StoreError(
        f"unsupported store URL scheme {scheme!r}: use redis://, rediss://, unix://, "
        "redis+sentinel:// or sqlite:///",
        code=ErrorCode.INTERNAL,
    )
