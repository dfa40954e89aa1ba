"""Building the one redis-py client (and its pool) a RedisStore uses, from a URL.

Automatic retries are off on every connection: a command whose reply was lost may have
run, and repeating a claim or a fill blindly is the caller's decision, not the driver's.
Stale pooled connections are caught instead by a PING before reuse after idling.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from oexec.errors import ErrorCode, StoreError

#: An idle pooled connection is PINGed before reuse after this many seconds.
HEALTH_CHECK_INTERVAL_S = 15
SENTINEL_SCHEME = "redis+sentinel"


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def connect(url: str, *, timeout_s: float, max_connections: int) -> aioredis.Redis:
    """A client on one blocking pool for ``redis://``, ``rediss://``, ``unix://`` or
    ``redis+sentinel://[password@]host:port[,host:port]/service[/db]`` URLs.

    No connection is made here; the first command connects.
    """
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "retry": _no_retry(),
    }
    if url.startswith(SENTINEL_SCHEME + "://"):
        return _sentinel_master(url, options, max_connections)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout_s, **options
    )
    return aioredis.Redis(connection_pool=pool, retry=_no_retry())


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """``redis+sentinel://[:password@]h1:p1,h2:p2/service[/db]`` -> (sentinels, service,
    db, password). Raises StoreError on a malformed URL."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2] or userinfo) or None
    path = [p for p in parts.path.split("/") if p]
    try:
        sentinels = [(h, int(p)) for h, _, p in (hp.rpartition(":") for hp in hosts.split(","))]
        if not path or not all(h for h, _ in sentinels):
            raise ValueError("service name and host:port required")
        db = int(path[1]) if len(path) > 1 else 0
    except ValueError as exc:
        raise StoreError(f"bad sentinel URL: {exc}", code=ErrorCode.INTERNAL) from None
    return sentinels, path[0], db, password


def _sentinel_master(url: str, options: dict[str, Any], max_connections: int) -> aioredis.Redis:
    sentinels, service, db, password = parse_sentinel_url(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
        sentinels,
        sentinel_kwargs={
            "socket_timeout": options["socket_timeout"],
            "socket_connect_timeout": options["socket_connect_timeout"],
            "retry": _no_retry(),
        },
        password=password,
        db=db,
        max_connections=max_connections,
        **options,
    )
    client: aioredis.Redis = sentinel.master_for(service, retry=_no_retry())
    return client
