"""The shipped Grafana dashboard (JSON and its sidecar ConfigMap): valid JSON with data-source and
namespace variables, and every PromQL expression of it and of Dynamo's own planner dashboard
(tests/data/dynamo/1.5.0/observability) uses only metric names the planner's exporter exports.
Whether those queries return data from a running ``plan run`` is
tests/integration/test_dashboards_prometheus.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_plan.live.exporter import PlannerMetrics
from dynamo_plan.resources import shipped_file

DATA = Path(__file__).parent / "data"
DYNAMO_DASHBOARD = DATA / "dynamo/1.5.0/observability/grafana-planner-dashboard-configmap.yaml"

PREFIX = "dynamo_planner_"
# PromQL words that look like identifiers but are not metric names
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and",
    "or", "unless", "inf", "nan", "atan2",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_DURATION = re.compile(r"(?<![\w:])(?:\d+(?:ms|[smhdwy]))+(?![\w:])")
_NUMBER = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names of a PromQL expression: identifiers that are not functions (followed by
    ``(``), keywords, label names (inside ``{…}`` or a grouping clause), durations or variables."""
    e = _STRING.sub('""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # range selectors and subqueries
    e = re.sub(r"\$\{?\w+\}?", " ", e)  # Grafana variables
    e = _GROUPING.sub(" ", e)
    e = _DURATION.sub(" ", e)  # offset 5m, @ modifiers' durations
    e = _NUMBER.sub(" ", e)
    names = set()
    for m in _IDENT.finditer(e):
        if e[m.end() :].lstrip().startswith("("):
            continue  # a function (or an aggregation)
        if m.group().lower() in KEYWORDS:
            continue
        names.add(m.group())
    return names


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", {"up"}),
        ('sum by (reason) (increase(a_total{x="b(c)", y=~"$v"}[5m]))', {"a_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
        ("a / on(instance) group_left(role) b offset 5m > bool 3e2", {"a", "b"}),
        ("max_over_time(x[1h:5m]) or vector(0) unless y == 1", {"x", "y"}),
        ('rate(ns:m:rate5m{le="+Inf"}[1m]) and without (job) z', {"ns:m:rate5m", "z"}),
    ],
)
def test_metric_name_extraction(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        shipped_file("templates", "grafana/planner-dashboard.json").read_text()
    )
    return data


def dynamo_dashboard() -> dict[str, Any]:
    """Dynamo 1.5.0's planner dashboard, out of its ConfigMap."""
    cm = yaml.safe_load(DYNAMO_DASHBOARD.read_text())
    (text,) = cm["data"].values()
    data: dict[str, Any] = json.loads(text)
    return data


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def test_dashboard_structure() -> None:
    dash = _dashboard()
    assert dash["title"] and dash["uid"] and isinstance(dash["schemaVersion"], int)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    namespace = variables["namespace"]
    assert namespace["type"] == "query" and namespace["includeAll"] and namespace["multi"]
    assert namespace["query"]["query"] == "label_values(dynamo_planner_ticks_total, namespace)"
    assert '{namespace=~"$namespace"}' in variables["instance"]["query"]["query"]
    panels = list(_panels(dash["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"])
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}"
        assert p["targets"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
            assert 'namespace=~"$namespace"' in t["expr"], (p["title"], t["expr"])


def test_every_expression_uses_exported_names_and_every_metric_is_shown() -> None:
    """Both dashboards use only exported names; every family is on one of them (Dynamo's names
    on Dynamo's dashboard at least)."""
    metrics = PlannerMetrics()
    exported = metrics.sample_names()
    used: set[str] = set()
    for dash in (_dashboard(), dynamo_dashboard()):
        for p in _panels(dash["panels"]):
            for t in p.get("targets", []):
                names = metric_names(t["expr"])
                assert names, f"panel {p['title']!r}: no metric in {t['expr']!r}"
                unknown = {n for n in names if n.startswith(PREFIX)} - exported
                assert not unknown, f"panel {p['title']!r} uses names not exported: {unknown}"
                used |= names
    for family in metrics.registry.collect():
        samples = {s.name for s in family.samples}
        assert samples & used, f"{family.name} is on no panel"


def test_dynamo_dashboard_selects_on_the_namespace_label() -> None:
    """The label the contract filters on (what ``plan run`` fills from its settings)."""
    dash = dynamo_dashboard()
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["namespace"]["query"].endswith(", namespace)")
    for p in _panels(dash["panels"]):
        for t in p.get("targets", []):
            assert 'namespace=~"$namespace"' in t["expr"]


def test_configmap_carries_the_dashboard_with_the_sidecar_label() -> None:
    cm = yaml.safe_load(
        shipped_file("templates", "grafana/planner-dashboard-configmap.yaml").read_text()
    )
    assert cm["apiVersion"] == "v1" and cm["kind"] == "ConfigMap"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "namespace" not in cm["metadata"]  # applied in the namespace Grafana's sidecar watches
    assert list(cm["data"]) == ["planner-dashboard.json"]
    assert json.loads(cm["data"]["planner-dashboard.json"]) == _dashboard(), (
        "stale ConfigMap: run python scripts/grafana_configmap.py"
    )
