"""Grafana dashboard, alert rules and scrape config reference only metrics we define."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from oexec.config import HttpConfig
from oexec.ops.metrics import Metrics

ETC = Path(__file__).resolve().parents[2] / "etc"

PROMQL_WORDS = frozenset(
    {
        "sum", "avg", "min", "max", "count", "topk", "bottomk", "by", "without", "on",
        "ignoring", "group_left", "group_right", "rate", "irate", "increase", "delta",
        "histogram_quantile", "and", "or", "unless", "bool", "offset", "abs", "clamp_min",
        "clamp_max", "time", "vector", "scalar", "le", "up",
    }
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Identifiers of ``expr`` that are series names (labels, ranges, words removed)."""
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL_WORDS}


def test_metric_names_parser() -> None:
    expr = 'sum by (le, x) (rate(a_bucket{l="v"}[5m])) / b_total or up{job="oexec"} == 0'
    assert metric_names(expr) == {"a_bucket", "b_total"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, object]:
    data: dict[str, object] = json.loads((ETC / "grafana-dashboard.json").read_text())
    return data


def _panels(dashboard: dict[str, object]) -> list[dict[str, object]]:
    panels = dashboard["panels"]
    assert isinstance(panels, list)
    return panels


def test_dashboard_has_the_seven_panels(dashboard: dict[str, object]) -> None:
    titles = [str(p["title"]).lower() for p in _panels(dashboard)]
    for word in (
        "active orders",
        "latency",
        "circuit breaker",
        "maker/taker",
        "rejection",
        "rate limit",
        "system health",
    ):
        assert any(word in t for t in titles), word
    assert len(titles) == 7


def test_dashboard_queries_use_defined_metrics(dashboard: dict[str, object]) -> None:
    defined = Metrics().sample_names()
    for panel in _panels(dashboard):
        targets = panel["targets"]
        assert isinstance(targets, list) and targets, panel["title"]
        for target in targets:
            names = metric_names(target["expr"])
            assert names, target["expr"]
            assert names <= defined, (panel["title"], names - defined)


def test_alert_rules_use_defined_metrics() -> None:
    defined = Metrics().sample_names()
    exprs = re.findall(r"^\s*expr:\s*(.+)$", (ETC / "prometheus-alerts.yml").read_text(), re.M)
    assert len(exprs) >= 8
    for expr in exprs:
        assert metric_names(expr) <= defined, expr


def test_scrape_config_targets_the_ops_port() -> None:
    text = (ETC / "prometheus.yml").read_text()
    assert f'"{HttpConfig().host}:{HttpConfig().port}"' in text
    assert "metrics_path: /metrics" in text
    assert "prometheus-alerts.yml" in text


DOC = ETC.parent / "docs" / "operations.md"


def _slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_docs_list_every_metric() -> None:
    from oexec.ops.metric_families import FAMILIES

    text = DOC.read_text()
    missing = [f.name for f in FAMILIES if f"`{f.name}`" not in text]
    assert not missing


def test_alert_runbook_links_resolve() -> None:
    anchors = {_slug(h) for h in re.findall(r"^#{2,4} (.+)$", DOC.read_text(), re.M)}
    links = re.findall(r"docs/operations\.md#([\w-]+)", (ETC / "prometheus-alerts.yml").read_text())
    assert links
    assert set(links) <= anchors, set(links) - anchors
