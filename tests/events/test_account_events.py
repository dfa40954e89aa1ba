"""Positions and balances as events (issue 17): the venue's account events, parsed and
turned into ``position`` / ``balance`` payloads (pure functions)."""

from __future__ import annotations

from decimal import Decimal

from oexec.client.subscriber import event_key
from oexec.models import PositionSide
from oexec.models.venue import AccountConfigUpdate, MarginCall
from oexec.service.account_events import account_events, outbox_id_for_account
from oexec.venue.binance.parsing import (
    parse_account_config_update,
    parse_account_update,
    parse_margin_call,
)

#: the venue's documented examples (USD-M user data streams)
ACCOUNT_UPDATE = {
    "e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938,
    "a": {
        "m": "ORDER",
        "B": [{"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678", "bc": "50.12345678"}],
        "P": [{"s": "BTCUSDT", "pa": "-0.010", "ep": "9000", "bep": "9000.1", "cr": "200",
               "up": "-1.5", "mt": "isolated", "iw": "0", "ps": "BOTH"}],
    },
}  # fmt: skip
MARGIN_CALL = {
    "e": "MARGIN_CALL", "E": 1587727187525, "cw": "3.16812045",
    "p": [{"s": "ETHUSDT", "ps": "LONG", "pa": "1.327", "mt": "CROSSED", "iw": "0",
           "mp": "187.17127", "up": "-1.166074", "mm": "1.614445"}],
}  # fmt: skip
CONFIG = {"e": "ACCOUNT_CONFIG_UPDATE", "E": 1611646737479, "T": 1611646737476,
          "ac": {"s": "BTCUSDT", "l": 25}}  # fmt: skip


def test_account_update_becomes_position_then_balance_events() -> None:
    events = account_events(parse_account_update(ACCOUNT_UPDATE))
    assert [topic for topic, _ in events] == ["position", "balance"]
    position, balance = (payload for _, payload in events)
    assert position == {
        "position": {
            "symbol": "BTCUSDT", "position_side": "BOTH", "amount": "-0.010",
            "entry_price": "9000", "unrealized_pnl": "-1.5", "break_even_price": "9000.1",
            "margin_type": "isolated", "event_time": 1564745798939,
        },
        "reason": "ORDER",
    }  # fmt: skip
    assert balance["balance"] == {
        "asset": "USDT", "wallet_balance": "122624.12345678",
        "cross_wallet_balance": "100.12345678", "event_time": 1564745798939,
    }  # fmt: skip
    assert event_key("position", position) == ("position", "BTCUSDT", "BOTH", "1564745798939")
    assert event_key("balance", balance) == ("balance", "USDT", "1564745798939")


def test_margin_call_and_leverage_change_are_position_events() -> None:
    call = parse_margin_call(MARGIN_CALL)
    assert (
        call
        == MarginCall(
            1587727187525,
            Decimal("3.16812045"),
            (call.positions[0],),
        )
        and call.positions[0].position_side is PositionSide.LONG
    )
    [(topic, payload)] = account_events(call)
    assert topic == "position" and payload["reason"] == "MARGIN_CALL"
    assert payload["position"]["margin_call"] is True
    assert payload["position"]["margin_type"] == "cross"
    assert payload["position"]["maintenance_margin"] == "1.614445"
    config = parse_account_config_update(CONFIG)
    assert config == AccountConfigUpdate(1611646737479, symbol="BTCUSDT", leverage=25)
    [(topic, payload)] = account_events(config)
    assert payload == {
        "position": {"symbol": "BTCUSDT", "leverage": 25, "event_time": 1611646737479},
        "reason": "ACCOUNT_CONFIG_UPDATE",
    }
    assert account_events(AccountConfigUpdate(1, multi_assets=True)) == []


def test_the_same_venue_event_is_one_outbox_entry() -> None:
    first = parse_account_update(ACCOUNT_UPDATE)
    assert outbox_id_for_account(first) == outbox_id_for_account(
        parse_account_update(ACCOUNT_UPDATE)
    )
    later = parse_account_update({**ACCOUNT_UPDATE, "E": ACCOUNT_UPDATE["E"] + 1})
    assert outbox_id_for_account(first) != outbox_id_for_account(later)
