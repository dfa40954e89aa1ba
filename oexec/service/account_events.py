"""Positions and balances are events too (issue 17): ``position`` and ``balance``.

Why. A strategy that follows its fills also follows what they did to its position and
margin; asking the venue (or the daemon) after each fill is late and costs weight. The
venue's ACCOUNT_UPDATE says it at once, so each one becomes one ``position`` event per
changed leg (key: symbol + position side) and one ``balance`` event per changed asset
(key: asset), stamped with the venue's event time, and goes out exactly like order and
fill events: stored in the outbox, numbered by the event log, replayable.

Pure functions; ``OrderWriter.account_update`` stores and publishes what they return.
"""

from __future__ import annotations

import hashlib
from typing import Any

from oexec.models import format_decimal
from oexec.models.venue import AccountUpdate, BalanceUpdate, PositionUpdate
from oexec.service.outbox import Event, PackedPayload
from oexec.service.ports import EventTopics


def position_body(leg: PositionUpdate, event_time: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": leg.symbol,
        "position_side": leg.position_side.value,
        "amount": format_decimal(leg.amount),
        "entry_price": format_decimal(leg.entry_price),
        "unrealized_pnl": format_decimal(leg.unrealized_pnl),
        "event_time": event_time,
    }
    if leg.break_even_price is not None:
        body["break_even_price"] = format_decimal(leg.break_even_price)
    if leg.margin_type is not None:
        body["margin_type"] = leg.margin_type
    return body


def balance_body(balance: BalanceUpdate, event_time: int) -> dict[str, Any]:
    return {
        "asset": balance.asset,
        "wallet_balance": format_decimal(balance.wallet_balance),
        "cross_wallet_balance": format_decimal(balance.cross_wallet_balance),
        "event_time": event_time,
    }


def account_events(update: AccountUpdate) -> list[Event]:
    """The events one ACCOUNT_UPDATE announces: positions first, then balances.
    ``reason`` is the venue's (ORDER, FUNDING_FEE, DEPOSIT, ...)."""
    at = update.event_time
    events: list[Event] = [
        (
            EventTopics.POSITION,
            PackedPayload({"position": position_body(leg, at), "reason": update.reason}),
        )
        for leg in update.positions
    ]
    events += [
        (
            EventTopics.BALANCE,
            PackedPayload({"balance": balance_body(b, at), "reason": update.reason}),
        )
        for b in update.balances
    ]
    return events


def outbox_id_for_account(update: AccountUpdate) -> str:
    """The same venue event gives the same entry (a repeat overwrites, not adds)."""
    legs = ";".join(
        f"{p.symbol}/{p.position_side.value}/{p.amount}/{p.entry_price}" for p in update.positions
    )
    assets = ";".join(f"{b.asset}/{b.wallet_balance}" for b in update.balances)
    digest = hashlib.blake2b(f"{update.reason}|{legs}|{assets}".encode(), digest_size=8)
    return f"account:{update.event_time}:{digest.hexdigest()}"
