"""The shared parts' Redis keys, now all built in store/keys.py (issue 15), keep the names
a running deployment already uses: an upgrade with other names would split the shared
limiter, breaker, lease and event sequence between old and new daemons."""

from __future__ import annotations

from oexec.store.keys import ClusterKeys


def test_cluster_keys_keep_their_names() -> None:
    keys = ClusterKeys("dep:")
    assert keys.limit("orders_10s") == "dep:{limits}:orders_10s"
    assert keys.limit("orders_10s", ":sent") == "dep:{limits}:orders_10s:sent"
    assert keys.limits_paused == "dep:{limits}:paused"
    assert keys.breaker_failures("venue") == "dep:{breaker}:venue:failures"
    assert keys.breaker_open("venue") == "dep:{breaker}:venue:open"
    assert keys.stream_lease == "dep:userstream:lease"
    assert keys.members == "dep:members"
    assert keys.events() == {
        "stream": "dep:events",
        "seq": "dep:events:seq",
        "topic_seqs": "dep:events:topic_seq",
        "acks": "dep:events:acks",
        "src": "dep:events:src",
    }
