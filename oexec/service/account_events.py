"""Positions and balances are events too (issue 17): ``position`` and ``balance``.

Why. A strategy that follows its fills also follows what they did to its position and
margin; asking the venue (or the daemon) after each fill is late and costs weight. The
venue's ACCOUNT_UPDATE says it at once, so each one becomes one ``position`` event per
changed leg (key: symbol + position side) and one ``balance`` event per changed asset
(key: asset), stamped with the venue's event time, and goes out exactly like order and
fill events: stored in the outbox, numbered by the event log, replayable. A leverage
change (ACCOUNT_CONFIG_UPDATE) and a MARGIN_CALL are ``position`` events too.

Pure functions; ``OrderWriter.account_update`` stores and publishes what they return.
"""

from __future__ import annotations

import hashlib
from typing import Any

from oexec.models import format_decimal
from oexec.models.venue import (
    AccountConfigUpdate,
    AccountUpdate,
    BalanceUpdate,
    MarginCall,
    PositionUpdate,
)
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


AccountEvent = AccountUpdate | AccountConfigUpdate | MarginCall
CONFIG_REASON = "ACCOUNT_CONFIG_UPDATE"
MARGIN_CALL_REASON = "MARGIN_CALL"


def config_events(update: AccountConfigUpdate) -> list[Event]:
    """A leverage change is a ``position`` event without a side (it applies to every leg
    of the symbol); a multi-assets mode change is not a position or balance: none."""
    if update.symbol is None or update.leverage is None:
        return []
    body = {"symbol": update.symbol, "leverage": update.leverage, "event_time": update.event_time}
    return [(EventTopics.POSITION, PackedPayload({"position": body, "reason": CONFIG_REASON}))]


def margin_call_events(call: MarginCall) -> list[Event]:
    """One ``position`` event per leg at risk, flagged ``margin_call``."""
    events: list[Event] = []
    for leg in call.positions:
        body: dict[str, Any] = {
            "symbol": leg.symbol,
            "position_side": leg.position_side.value,
            "amount": format_decimal(leg.amount),
            "mark_price": format_decimal(leg.mark_price),
            "unrealized_pnl": format_decimal(leg.unrealized_pnl),
            "maintenance_margin": format_decimal(leg.maintenance_margin),
            "margin_call": True,
            "event_time": call.event_time,
        }
        if leg.margin_type is not None:
            body["margin_type"] = leg.margin_type
        if call.cross_wallet_balance is not None:
            body["cross_wallet_balance"] = format_decimal(call.cross_wallet_balance)
        payload = PackedPayload({"position": body, "reason": MARGIN_CALL_REASON})
        events.append((EventTopics.POSITION, payload))
    return events


def account_events(update: AccountEvent) -> list[Event]:
    """The events one account event announces. ACCOUNT_UPDATE: positions first, then
    balances; ``reason`` is the venue's (ORDER, FUNDING_FEE, DEPOSIT, ...)."""
    if isinstance(update, AccountConfigUpdate):
        return config_events(update)
    if isinstance(update, MarginCall):
        return margin_call_events(update)
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


def outbox_id_for_account(update: AccountEvent) -> str:
    """The same venue event gives the same entry (a repeat overwrites, not adds)."""
    if not isinstance(update, AccountUpdate):
        digest = hashlib.blake2b(repr(update).encode(), digest_size=8)
        return f"account:{update.event_time}:{digest.hexdigest()}"
    legs = ";".join(
        f"{p.symbol}/{p.position_side.value}/{p.amount}/{p.entry_price}" for p in update.positions
    )
    assets = ";".join(f"{b.asset}/{b.wallet_balance}" for b in update.balances)
    digest = hashlib.blake2b(f"{update.reason}|{legs}|{assets}".encode(), digest_size=8)
    return f"account:{update.event_time}:{digest.hexdigest()}"
