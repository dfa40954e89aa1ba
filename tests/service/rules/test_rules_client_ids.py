"""Client order ids: venue charset and length, deterministic, distinct."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from oexec.service.client_ids import (
    CLIENT_ORDER_ID_PATTERN,
    client_order_id_for,
    is_valid_client_order_id,
)


@given(st.text(max_size=300))
def test_any_request_id_maps_to_a_venue_valid_id(request_id: str) -> None:
    coid = client_order_id_for(request_id)
    assert CLIENT_ORDER_ID_PATTERN.fullmatch(coid)
    assert 1 <= len(coid) <= 36
    assert client_order_id_for(request_id) == coid


@given(st.text(), st.text())
def test_distinct_request_ids_get_distinct_ids(a: str, b: str) -> None:
    if a != b:
        assert client_order_id_for(a) != client_order_id_for(b)


def test_known_value_is_stable_across_releases() -> None:
    # Pinned: changing the derivation would orphan every open order after an upgrade.
    assert client_order_id_for("req-1") == client_order_id_for("req-1")
    assert client_order_id_for("req-1").startswith("ox-")
    assert client_order_id_for("req-1") == PINNED


def test_lone_surrogates_and_huge_ids_are_hashed() -> None:
    assert is_valid_client_order_id(client_order_id_for("\ud800"))
    assert is_valid_client_order_id(client_order_id_for("x" * 100_000))
    assert client_order_id_for("") != client_order_id_for(" ")


def test_validity_check() -> None:
    assert is_valid_client_order_id("abc.DEF:/_-09")
    assert not is_valid_client_order_id("")
    assert not is_valid_client_order_id("a" * 37)
    assert not is_valid_client_order_id("bad id")
    assert not is_valid_client_order_id("é")


PINNED = "ox-vszn3nfq5w4yzeevih5e7s7gfvdzcep6"
