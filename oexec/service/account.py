"""The daemon's own view of the account: positions and balances, served without a venue
round trip per query.

Why a view: a strategy asking for its position or margin should not need the venue's
keys, nor spend the account's request weight on every question. The view is kept
current by the user stream's ACCOUNT_UPDATE (``apply_account_update``, a pure fold that
the event publisher can reuse) and re-read from the venue (positionRisk + account) at
start, after every stream gap, and shortly after account updates for the fields the
stream does not carry (liquidation price, available and margin balance, leverage).

Monotone by venue time: a REST answer that is older than a stream event already applied
does not overwrite that leg or asset (both carry the venue's update time), so a refresh
racing a fill cannot roll a position back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from oexec.errors import OexecError
from oexec.models import PositionSide
from oexec.models.account import AccountSettingChange, Balance, Position
from oexec.models.venue import AccountUpdate, StreamGap
from oexec.service.ports import AccountVenue
from oexec.service.rules.allowlist import SymbolAllowList

log = logging.getLogger("oexec.account")

PositionKey = tuple[str, PositionSide]
#: After an account update, wait this long for company before re-reading the venue.
REFRESH_AFTER_UPDATE_S = 0.2
#: At least this long between two reads caused by account updates: a read costs weight
#: 10 (positionRisk + account), so a busy account re-reads at most 2 % of the venue's
#: 2,400/min weight budget at the default 5 s ([tracking] account_refresh_s).
MIN_REFRESH_INTERVAL_S = 5.0
#: A failed refresh is tried again after this long (the view stays marked stale).
REFRESH_RETRY_S = 5.0


@attrs.frozen(slots=True)
class AccountSnapshot:
    """Positions per (symbol, position side) and balances per asset, at one instant.

    ``refreshed_at``: venue-aligned ms of the last complete venue read (0: never);
    ``stale``: a stream gap or failed read since then means updates may be missing.
    """

    positions: Mapping[PositionKey, Position] = attrs.field(factory=dict)
    balances: Mapping[str, Balance] = attrs.field(factory=dict)
    refreshed_at: int = 0
    updated_at: int = 0
    stale: bool = True


def apply_account_update(snapshot: AccountSnapshot, update: AccountUpdate) -> AccountSnapshot:
    """Fold one ACCOUNT_UPDATE into ``snapshot`` (pure). Fields the event does not carry
    (leverage, liquidation price, available balance) keep their last known value; an
    event older than what a leg or asset already shows changes nothing for it."""
    at = update.event_time
    positions = dict(snapshot.positions)
    for leg in update.positions:
        key = (leg.symbol, leg.position_side)
        before = positions.get(key) or Position(leg.symbol, leg.position_side, Decimal(0))
        if before.update_time > at:
            continue
        positions[key] = attrs.evolve(
            before,
            amount=leg.amount,
            entry_price=leg.entry_price,
            break_even_price=(
                leg.break_even_price if leg.break_even_price is not None else leg.entry_price
            ),
            unrealized_pnl=leg.unrealized_pnl,
            margin_type=leg.margin_type or before.margin_type,
            update_time=at,
        )
    balances = dict(snapshot.balances)
    for row in update.balances:
        old = balances.get(row.asset) or Balance(row.asset, Decimal(0))
        if old.update_time > at:
            continue
        balances[row.asset] = attrs.evolve(
            old,
            wallet_balance=row.wallet_balance,
            cross_wallet_balance=row.cross_wallet_balance,
            update_time=at,
        )
    return attrs.evolve(
        snapshot, positions=positions, balances=balances, updated_at=max(snapshot.updated_at, at)
    )


def apply_venue_read(
    snapshot: AccountSnapshot,
    positions: Iterable[Position],
    balances: Iterable[Balance],
    read_at: int,
) -> AccountSnapshot:
    """The venue's full answer (pure): every leg and asset it lists, unless the stream
    already applied something newer to it. Legs it no longer lists are dropped."""
    merged_positions: dict[PositionKey, Position] = {}
    for row in positions:
        key = (row.symbol, row.position_side)
        mine = snapshot.positions.get(key)
        merged_positions[key] = (
            _stream_newer(mine, row)
            if mine is not None and mine.update_time > row.update_time
            else row
        )
    merged_balances: dict[str, Balance] = {}
    for bal in balances:
        have = snapshot.balances.get(bal.asset)
        if have is not None and have.update_time > bal.update_time:
            merged_balances[bal.asset] = attrs.evolve(
                have,
                available_balance=bal.available_balance,
                margin_balance=bal.margin_balance,
                unrealized_pnl=bal.unrealized_pnl,
            )
        else:
            merged_balances[bal.asset] = bal
    return AccountSnapshot(
        positions=merged_positions,
        balances=merged_balances,
        refreshed_at=read_at,
        updated_at=snapshot.updated_at,
        stale=False,
    )


def _stream_newer(mine: Position, venue: Position) -> Position:
    """The stream's newer leg, with the fields only the venue's read carries."""
    return attrs.evolve(
        mine,
        liquidation_price=venue.liquidation_price,
        mark_price=venue.mark_price,
        leverage=venue.leverage or mine.leverage,
        margin_type=mine.margin_type or venue.margin_type,
    )


def apply_setting(snapshot: AccountSnapshot, change: AccountSettingChange) -> AccountSnapshot:
    """A leverage or margin type the venue confirmed, onto every leg of its symbol."""
    positions = dict(snapshot.positions)
    for key, leg in positions.items():
        if key[0] != change.symbol:
            continue
        positions[key] = attrs.evolve(
            leg,
            leverage=change.leverage if change.leverage is not None else leg.leverage,
            margin_type=change.margin_type if change.margin_type is not None else leg.margin_type,
        )
    return attrs.evolve(snapshot, positions=positions)


def open_positions(snapshot: AccountSnapshot, symbol: str | None = None) -> list[Position]:
    """Non-flat legs (of ``symbol``), sorted by symbol and side."""
    return sorted(
        (
            leg
            for leg in snapshot.positions.values()
            if leg.amount != 0 and (symbol is None or leg.symbol == symbol)
        ),
        key=lambda leg: (leg.symbol, leg.position_side.value),
    )


class AccountView:
    """Holds the current ``AccountSnapshot`` and keeps it fresh (see the module doc).

    ``on_update`` and ``on_gap`` are the user stream's hooks; ``refresh`` reads the
    venue now. Reads (``snapshot``) never wait for the venue.
    """

    def __init__(
        self,
        venue: AccountVenue,
        *,
        refresh_after_update_s: float = REFRESH_AFTER_UPDATE_S,
        min_interval_s: float = MIN_REFRESH_INTERVAL_S,
        retry_s: float = REFRESH_RETRY_S,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.venue = venue
        self.snapshot = AccountSnapshot()
        self.refresh_after_update_s = refresh_after_update_s
        self.min_interval_s = min_interval_s
        self._last_read = -min_interval_s  # monotonic time of the last venue read
        self._urgent = False
        self.retry_s = retry_s
        self.now_ms = now_ms
        self.refreshes = 0
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- stream hooks ----------------------------------------------------------------------
    def on_update(self, update: AccountUpdate) -> None:
        self.snapshot = apply_account_update(self.snapshot, update)
        self._wanted.set()  # liquidation price and available balance moved too

    def on_stream_event(self, event: AccountUpdate | StreamGap) -> None:
        """The tracker's account listener: updates fold in, a gap marks the view stale."""
        if isinstance(event, AccountUpdate):
            self.on_update(event)
        else:
            self.on_gap()

    def on_gap(self) -> None:
        """Updates may have been missed: say so until the venue has been read again."""
        self.snapshot = attrs.evolve(self.snapshot, stale=True)
        self._urgent = True  # a gap is re-read at once, not after the update throttle
        self._wanted.set()

    # -- venue -----------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read positions and balances from the venue now; raises its OexecError."""
        async with self._lock:
            self._last_read = time.monotonic()
            read_at = self.now_ms()
            positions, balances = await asyncio.gather(
                self.venue.position_risk(), self.venue.account_balances()
            )
            self.snapshot = apply_venue_read(self.snapshot, positions, balances, read_at)
            self.refreshes += 1

    def apply_setting(self, change: AccountSettingChange) -> None:
        self.snapshot = apply_setting(self.snapshot, change)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """First read (a failure leaves the view stale and retried), then keep fresh."""
        try:
            await self.refresh()
        except OexecError as exc:
            log.warning("account read at start failed: %s; retrying", exc.message)
            self._wanted.set()
        self._task = asyncio.get_running_loop().create_task(self._keep_fresh())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _keep_fresh(self) -> None:
        while True:
            await self._wanted.wait()
            await asyncio.sleep(self.refresh_after_update_s)  # coalesce a burst of updates
            if not self._urgent:
                wait = self._last_read + self.min_interval_s - time.monotonic()
                await asyncio.sleep(max(0.0, wait))
            self._wanted.clear()
            self._urgent = False
            try:
                await self.refresh()
            except OexecError as exc:
                log.warning("account refresh failed: %s; retrying", exc.message)
                self.snapshot = attrs.evolve(self.snapshot, stale=True)
                await asyncio.sleep(self.retry_s)
                self._wanted.set()


class AccountOps:
    """The account half of ``OrderService``: positions and balances from the view (no
    venue round trip), leverage and margin type set at the venue and noted in the view.

    Settings are refused for symbols outside ``[validation] symbols`` like orders are.
    """

    def __init__(self, view: AccountView, venue: AccountVenue, allow: SymbolAllowList) -> None:
        self.view = view
        self.venue = venue
        self.allow = allow

    def _meta(self, snapshot: AccountSnapshot) -> dict[str, Any]:
        return {
            "as_of": snapshot.refreshed_at,
            "updated_at": snapshot.updated_at,
            "stale": snapshot.stale,
        }

    async def positions(self, symbol: str | None = None) -> dict[str, Any]:
        snapshot = self.view.snapshot
        return {"positions": open_positions(snapshot, symbol), **self._meta(snapshot)}

    async def balances(self) -> dict[str, Any]:
        snapshot = self.view.snapshot
        rows = sorted(snapshot.balances.values(), key=lambda row: row.asset)
        return {"balances": rows, **self._meta(snapshot)}

    async def set_leverage(self, symbol: str, leverage: int) -> dict[str, Any]:
        self.allow.check_symbol(symbol)
        change = await self.venue.set_leverage(symbol, leverage)
        self.view.apply_setting(change)
        return {
            "symbol": change.symbol,
            "leverage": change.leverage,
            "max_notional": change.max_notional,
        }

    async def set_margin_type(self, symbol: str, margin_type: str) -> dict[str, Any]:
        self.allow.check_symbol(symbol)
        change = await self.venue.set_margin_type(symbol, margin_type)
        self.view.apply_setting(change)
        return {"symbol": change.symbol, "margin_type": change.margin_type}
