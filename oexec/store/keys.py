"""Every Redis key and TTL the store uses, in one place (arq-style constants).

All keys hang under a configurable prefix (default ``oexec:``) so tests and several
deployments can share one Redis. For Redis Cluster put a hash tag in the prefix
(``{oexec}:``): the Lua scripts touch several keys at once, which Cluster only allows
within one slot.

Layout (``P`` = prefix):

==============================  ======  =====================================  =========
key                             type    value                                  TTL
==============================  ======  =====================================  =========
P order:{id}                    hash    ``v`` version, ``o`` order JSON         order TTL
P idempotency:{request_id}      string  order id                               claim TTL
P reply:{request_id}            string  cached reply bytes                     reply TTL
P coid:{client_order_id}        string  order id                               order TTL
P open / P open:{symbol}        set     ids of non-terminal orders             none
P history / P history:{symbol}  zset    ids scored by created_at (ms)          trimmed
P states:{id}                   list    JSON {state, version, at, reason}      order TTL
P fill:{symbol}:{trade_id}      string  order id (dedupe marker)               order TTL
P fills:{order_id}              list    fill JSON, in arrival order            order TTL
P journal:{client_order_id}     list    audit entries (JSON), capped           order TTL
P outbox                        zset    outbox entry ids scored by stamp (ms)  none
P outbox:entries                hash    outbox entry id -> packed events       none
P owedfills                     set     ids of orders whose trades are owed    none
==============================  ======  =====================================  =========

Keys of the parts daemons share on one Redis ([cluster], docs/deployment.md), built
here too (``ClusterKeys``) so that one module names every key:

==================================  ======  ===================================  =======
key                                 type    value                                TTL
==================================  ======  ===================================  =======
P {limits}:{window}[:sent]          string  shared bucket level / units sent     window
P {limits}:paused                   string  venue ban (also the pause channel)   ban
P {breaker}:{name}:failures         zset    failure stamps of the shared breaker window
P {breaker}:{name}:open             string  open until (the breaker's state)     open
P userstream:lease                  string  ``owner|token`` of the stream lease  lease
P members                           zset    live daemons (heartbeats)            lease
P events / events:seq|topic_seq|…   stream  the shared event sequence (+ state)  trimmed
==================================  ======  ===================================  =======

The ``order:{id}`` hash also holds ``n``: the ``seq,topic_seq`` pairs its stored version's
events got when the store numbered them in the shared sequence (oexec/events/sequence.py,
"Numbered by the store"; empty otherwise), so a retried save answers with those numbers
instead of numbering its events twice.

The outbox and owed-fills keys carry no TTL: their members are removed by
``outbox_ack``/``settle_fills`` once the work is done.

Indexes carry no TTL: the history zsets are trimmed by score on every claim, and ids
whose order expired are dropped lazily when a read meets them.
"""

from __future__ import annotations

DEFAULT_PREFIX = "oexec:"

#: How long an order record (and its state history, fills, client-id map) lives.
ORDER_TTL_S = 30 * 86_400
#: Audit-journal entries kept per order (the oldest are dropped beyond it).
JOURNAL_MAX_ENTRIES = 500
#: How long a request_id stays claimed (and its reply cached).
IDEMPOTENCY_TTL_S = 86_400

ORDER = "order:"
IDEMPOTENCY = "idempotency:"
REPLY = "reply:"
CLIENT_ORDER_ID = "coid:"
OPEN = "open"
HISTORY = "history"
STATES = "states:"
FILL = "fill:"
FILLS = "fills:"
JOURNAL = "journal:"
OUTBOX = "outbox"
OUTBOX_ENTRIES = "outbox:entries"
OWED_FILLS = "owedfills"

#: Fields of the ``order:{id}`` hash.
FIELD_VERSION = "v"
FIELD_BODY = "o"


class Keys:
    """Builds the keys of one deployment (one prefix)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix

    def order(self, order_id: str) -> str:
        return f"{self.prefix}{ORDER}{order_id}"

    @property
    def order_prefix(self) -> str:
        """``order:`` with the prefix; Lua appends an id it read from Redis."""
        return f"{self.prefix}{ORDER}"

    def idempotency(self, request_id: str) -> str:
        return f"{self.prefix}{IDEMPOTENCY}{request_id}"

    def reply(self, request_id: str) -> str:
        return f"{self.prefix}{REPLY}{request_id}"

    def client_order_id(self, client_order_id: str) -> str:
        return f"{self.prefix}{CLIENT_ORDER_ID}{client_order_id}"

    def open(self, symbol: str | None = None) -> str:
        return f"{self.prefix}{OPEN}" if symbol is None else f"{self.prefix}{OPEN}:{symbol}"

    def history(self, symbol: str | None = None) -> str:
        base = f"{self.prefix}{HISTORY}"
        return base if symbol is None else f"{base}:{symbol}"

    def states(self, order_id: str) -> str:
        return f"{self.prefix}{STATES}{order_id}"

    def fill(self, symbol: str, trade_id: int) -> str:
        return f"{self.prefix}{FILL}{symbol}:{trade_id}"

    def fills(self, order_id: str) -> str:
        return f"{self.prefix}{FILLS}{order_id}"

    def journal(self, client_order_id: str) -> str:
        return f"{self.prefix}{JOURNAL}{client_order_id}"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}{OUTBOX}"

    @property
    def outbox_entries(self) -> str:
        return f"{self.prefix}{OUTBOX_ENTRIES}"

    @property
    def owed_fills(self) -> str:
        return f"{self.prefix}{OWED_FILLS}"


class ClusterKeys:
    """The keys of the shared parts of one deployment (see the module docstring).

    The ``{limits}`` and ``{breaker}`` hash tags keep each part's keys in one Redis
    Cluster slot (their Lua scripts touch several at once).
    """

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix

    def limit(self, window: str, suffix: str = "") -> str:
        """A shared rate window's bucket (``suffix`` ``:sent``: the units sent)."""
        return f"{self.prefix}{{limits}}:{window}{suffix}"

    @property
    def limits_paused(self) -> str:
        return f"{self.prefix}{{limits}}:paused"

    def breaker_failures(self, name: str) -> str:
        return f"{self.prefix}{{breaker}}:{name}:failures"

    def breaker_open(self, name: str) -> str:
        return f"{self.prefix}{{breaker}}:{name}:open"

    @property
    def stream_lease(self) -> str:
        return f"{self.prefix}userstream:lease"

    @property
    def members(self) -> str:
        return f"{self.prefix}members"

    def events(self) -> dict[str, str]:
        """The shared event sequence: the stream keeps the single daemon's mirror name;
        the rest share its hash slot."""
        base = f"{self.prefix}events"
        return {
            "stream": base,
            "seq": f"{base}:seq",
            "topic_seqs": f"{base}:topic_seq",
            "acks": f"{base}:acks",
            "src": f"{base}:src",
        }
