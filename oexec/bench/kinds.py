"""Every row the bench can print, as data: its stable ``kind``, title, anchor and place.

Why a table: ``--json`` consumers (docs/bench.md's tables, A/B scripts, the targets)
find a row by ``kind`` and ``store``, never by its printed title, which carries run
parameters (``×64``, ``20/s``). The table's order, the ``×ccxt`` column (a row's p50 over
its anchor's p50) and ``--kinds`` selection all read this one list, so adding a row
kind is: one :class:`Kind` line here, one load function in ``worker.rows()`` and one
call in the runner (docs/bench.md, "Adding a row").
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

#: Table sections, printed in this order: rows without a daemon, then each store's
#: daemon rows (SQLite first), then the scaling run on a daemon of its own.
DIRECT, PER_STORE, SCALING = 0, 1, 2


@attrs.frozen
class Kind:
    name: str  # stable: the row's ``kind`` in --json
    title: str  # str.format with inflight, overload, rate, ladder, store, stored
    anchor: str | None  # the kind whose p50 is 1.0 in ×ccxt (None: no ratio)
    section: int = DIRECT
    direct: bool = False  # needs the bench extra (ccxt, python-binance); off with --no-direct


KINDS: tuple[Kind, ...] = (
    Kind("floor_zmq", "floor: raw zmq round trip", "ccxt"),
    Kind("floor_http", "floor: signed aiohttp POST", "ccxt"),
    Kind("ccxt", "ccxt create_order", "ccxt", direct=True),
    Kind("python_binance", "python-binance futures_create_order", "ccxt", direct=True),
    Kind("ccxt_async64", "ccxt async ×{inflight}", "ccxt_async64", direct=True),
    Kind("ccxt_paced", "ccxt create_order, paced {rate:g}/s", "ccxt_paced", direct=True),
    Kind("ccxt_ladder20", "ccxt ladder: gather of {ladder}", "ccxt_ladder20", direct=True),
    Kind("ccxt_ws", "ccxt.pro create_order_ws", "ccxt_ws", direct=True),
    Kind("ccxt_paced_ws", "ccxt.pro create_order_ws, {rate:g}/s", "ccxt_paced_ws", direct=True),
    Kind("oexec_sync", "oexec Client ({store})", "ccxt", PER_STORE),
    Kind("oexec_paced", "oexec AsyncClient, paced {rate:g}/s ({store})", "ccxt_paced", PER_STORE),
    Kind("oexec_ladder20", "oexec ladder: {ladder} at once ({store})", "ccxt_ladder20", PER_STORE),
    Kind("oexec_async64", "oexec AsyncClient ×{inflight} ({store})", "ccxt_async64", PER_STORE),
    Kind("overload", "oexec overload ×{overload}, accepted ({store})", None, PER_STORE),
    Kind("fill", "fill event: stream → PUB ({store})", "ccxt", PER_STORE),
    # the daemon with [venue] order_transport = "ws": its orders over the WebSocket API
    Kind("oexec_sync_ws", "oexec Client, venue over WebSocket API ({store})", "ccxt_ws", PER_STORE),
    Kind(
        "oexec_paced_ws",
        "oexec AsyncClient, paced {rate:g}/s, venue over WebSocket API ({store})",
        "ccxt_paced_ws",
        PER_STORE,
    ),
    Kind("scaling_100", "oexec Client, {stored:,} stored", "ccxt", SCALING),
    Kind("scaling_n", "oexec Client, {stored:,} stored", "ccxt", SCALING),
)
BY_NAME = {kind.name: kind for kind in KINDS}
STORE_ORDER = {None: 0, "sqlite": 1, "redis": 2}


def table_key(kind: str, store: str | None) -> tuple[int, int, int]:
    """Where a row goes in the table: section, then store, then this list's order."""
    found = BY_NAME[kind]
    return found.section, STORE_ORDER.get(store, 3), KINDS.index(found)


def select(words: Iterable[str]) -> frozenset[str]:
    """The kinds ``--kinds`` names. A word is a kind's name, or a part of one (split at
    ``_``, matched from its start): ``paced`` is ccxt_paced and oexec_paced, ``ladder``
    both ladders, ``ccxt`` every ccxt row, ``floor`` both floors.

    Raises ValueError for a word that selects nothing (a typo never runs everything).
    """
    chosen: set[str] = set()
    for word in (w.strip() for w in words):
        if not word:
            continue
        hits = {
            k.name
            for k in KINDS
            if k.name == word or any(part.startswith(word) for part in k.name.split("_"))
        }
        if not hits:
            raise ValueError(f"no row kind matches {word!r}; kinds: {', '.join(BY_NAME)}")
        chosen |= hits
    return frozenset(chosen)
