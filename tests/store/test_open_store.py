"""Backend choice by URL, and the codec's refusal of records it cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest

from oexec.config import StoreConfig
from oexec.errors import ErrorCode, StoreError
from oexec.store import RedisStore, SqliteStore, codec, open_store, sqlite_path_from_url

from .helpers import REDIS_URL, make_fill, make_order


async def test_empty_url_opens_sqlite_at_the_configured_path(tmp_path: Path) -> None:
    path = tmp_path / "default.sqlite"
    store = open_store(StoreConfig(sqlite_path=str(path)))
    try:
        assert isinstance(store, SqliteStore)
        await store.start()
        assert path.exists()
    finally:
        await store.close()


async def test_sqlite_url_opens_that_file(tmp_path: Path) -> None:
    path = tmp_path / "url.sqlite"
    store = open_store(StoreConfig(url=f"sqlite:///{path}", sqlite_synchronous="NORMAL"))
    try:
        assert isinstance(store, SqliteStore) and store.path == str(path)
        await store.start()
    finally:
        await store.close()


def test_sqlite_url_convention() -> None:
    assert sqlite_path_from_url("sqlite:///rel.db") == "rel.db"
    assert sqlite_path_from_url("sqlite:////abs/x.db") == "/abs/x.db"
    with pytest.raises(StoreError):
        sqlite_path_from_url("sqlite:///")


async def test_redis_url_opens_redis_under_the_prefix() -> None:
    store = open_store(StoreConfig(url=REDIS_URL, redis_timeout_s=1.0), prefix="p-x:")
    try:
        assert isinstance(store, RedisStore) and store.keys.prefix == "p-x:"
        await store.start()
    finally:
        await store.close()


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(StoreError) as info:
        open_store(StoreConfig(url="postgres://localhost/db"))
    assert "postgres" in info.value.message


def test_codec_round_trips_and_refuses_garbage() -> None:
    order = make_order()
    assert codec.decode_order(codec.encode_order(order)) == order
    fill = make_fill(order, 1)
    assert codec.decode_fill(codec.encode_fill(fill)) == fill
    for decode in (codec.decode_order, codec.decode_fill, codec.decode_state_entry):
        with pytest.raises(StoreError) as info:
            decode(b"{not json")
        assert info.value.code is ErrorCode.INTERNAL
    with pytest.raises(StoreError):
        codec.decode_order(b'{"id": 1}')
    with pytest.raises(StoreError):
        codec.decode_state_entry(b"[1, 2]")


@pytest.mark.parametrize("url", ["unix:///nonexistent/oexec-test.sock", "rediss://127.0.0.1:1/0"])
async def test_other_redis_url_forms_open_redis_and_fail_typed(url: str) -> None:
    store = open_store(StoreConfig(url=url, redis_timeout_s=0.5))
    try:
        assert isinstance(store, RedisStore)
        with pytest.raises(StoreError) as info:
            await store.start()
        assert info.value.code is ErrorCode.STORE_UNAVAILABLE
    finally:
        await store.close()
