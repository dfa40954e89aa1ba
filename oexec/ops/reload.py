"""SIGHUP: re-read the config and apply what is safe to change under load.

Safe means: a plain value the next request reads, swapped in one assignment, with no
connection, socket or task built from it. That is the log level, the risk limits and
the validation overrides. Everything else (endpoints, store, venue, credentials,
limits, breaker, tracking) needs a restart; a changed value there is logged, not
applied, so an operator sees why ``systemctl reload`` did not do what they expected.
A bad new config changes nothing (the caller catches the ConfigError or ValueError).
"""

from __future__ import annotations

import logging

import attrs

from oexec.config import Config, RiskConfig
from oexec.service.rules.risk import RiskManager
from oexec.service.rules.symbol_book import SymbolRulesBook

log = logging.getLogger("oexec.reload")

#: Config sections applied on reload; every other section is restart-only.
RELOADABLE = ("logging", "risk", "validation")
#: Risk fields that build a client at start: restart-only within the risk section.
RISK_RESTART_ONLY = ("external_endpoint", "external_timeout_ms")


def restart_only_changes(current: Config, new: Config) -> list[str]:
    """Names of changed sections (and risk fields) a reload will not apply."""
    changed = [
        field.name
        for field in attrs.fields(Config)
        if field.name not in RELOADABLE and getattr(current, field.name) != getattr(new, field.name)
    ]
    changed += [
        f"risk.{name}"
        for name in RISK_RESTART_ONLY
        if getattr(current.risk, name) != getattr(new.risk, name)
    ]
    if current.logging.json != new.logging.json:
        changed.append("logging.json")
    return changed


def reloadable_risk(current: RiskConfig, new: RiskConfig) -> RiskConfig:
    """The new limits with the restart-only fields kept as they are."""
    return attrs.evolve(new, **{name: getattr(current, name) for name in RISK_RESTART_ONLY})


def apply_reload(
    current: Config, new: Config, *, risk: RiskManager, rules_book: SymbolRulesBook
) -> Config:
    """Apply the safe part of ``new``; returns the config now in effect.

    Overrides are parsed first (ValueError leaves everything as it was).
    """
    rules_book.set_overrides(new.validation.overrides)
    risk.config = reloadable_risk(current.risk, new.risk)
    logging.getLogger().setLevel(new.logging.level.upper())
    ignored = restart_only_changes(current, new)
    if ignored:
        log.warning("reload: changed %s take effect at restart only", ", ".join(ignored))
    log.warning(
        "reload: applied log level %s, risk limits, %d validation override(s)",
        new.logging.level.upper(),
        len(new.validation.overrides),
    )
    return attrs.evolve(
        current,
        logging=attrs.evolve(current.logging, level=new.logging.level),
        risk=risk.config,
        validation=new.validation,
    )
