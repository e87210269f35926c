"""The Grafana dashboard kubevox ships, read the way Grafana runs its queries."""

from __future__ import annotations

import json

from tests.support.tools import MANIFESTS

DASHBOARD = MANIFESTS / "monitoring" / "grafana-dashboard.json"


def panel_query(title: str, *, window: str = "5m", namespace: str = ".*", agent: str = ".*") -> str:
    """The query of the panel titled ``title``, with Grafana's variables filled in (the
    namespace and agent as regular expressions, as the dashboard's selectors match them)."""
    dash = json.loads(DASHBOARD.read_text())
    (panel,) = [p for p in dash["panels"] if p["title"] == title]
    (target,) = panel["targets"]
    return filled(str(target["expr"]), window=window, namespace=namespace, agent=agent)


def filled(expr: str, *, window: str = "5m", namespace: str = ".*", agent: str = ".*") -> str:
    """A dashboard query with Grafana's variables replaced."""
    expr = expr.replace("$__rate_interval", window)
    return expr.replace("$namespace", namespace).replace("$agent", agent)
