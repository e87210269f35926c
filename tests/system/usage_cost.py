"""A call's usage and its estimated cost, end to end on the node: what the call record says the
models consumed reaches Prometheus from the worker pod (``kubevox_usage_total``), a price list
written to ConfigMap ``kubevox-unit-prices`` reaches it from the operator's pod
(``kubevox_unit_price``, through kubelet's copy of the mounted file), and the two give the
cost the call record's units imply, and the dashboard's panel a cost."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
import yaml
from kubevox_api.pricing import ModelPrice, UnitPrices
from kubevox_devenv import install as installmod

from agent_runtime.usage import units
from tests.support.dashboard import panel_query

from .conftest import System, wait_until

# Round figures, one per unit; what matters is that each reaches the cost once.
PRICE = {
    "llm_input_per_million_tokens": 2.0,
    "llm_cached_input_per_million_tokens": 1.0,
    "llm_output_per_million_tokens": 8.0,
    "stt_per_minute": 0.006,
    "tts_per_million_characters": 15.0,
}


def set_unit_prices(system: System, prices: UnitPrices) -> None:
    text = yaml.safe_dump(prices.to_k8s(), sort_keys=False)
    patch = json.dumps({"data": {"prices.yaml": text}})
    system.kubectl(
        "patch", "configmap", "kubevox-unit-prices", "-n", installmod.NAMESPACE,
        "--type=merge", "-p", patch,
    )  # fmt: skip


def check_usage_and_cost(system: System, namespace: str, record: dict[str, Any]) -> float:
    """The call ``record`` is the agent's only call so far; returns its estimated cost."""
    consumed: dict[tuple[str, str], float] = defaultdict(float)
    for _, model, unit, amount in units(record["usage"]):
        consumed[(model, unit)] += amount
    assert consumed, record["usage"]
    prices = UnitPrices(models=[ModelPrice(model=m, **PRICE) for m in {m for m, _ in consumed}])
    set_unit_prices(system, prices)
    per_unit = {(m, u): p for m, u, p in prices.unit_prices()}
    expected = sum(amount * per_unit[key] for key, amount in consumed.items())

    ours = f'namespace="{namespace}",agent="offline"'

    def scraped() -> dict[tuple[str, str], float] | None:
        query = f"sum by (model, unit) (kubevox_usage_total{{{ours}}})"
        got = {(s["model"], s["unit"]): v for s, v in system.prometheus_vector(query)}
        return got if got == pytest.approx(dict(consumed)) else None

    wait_until("the call's usage in Prometheus, as its record says", scraped, 120)

    def cost() -> float | None:
        query = (
            f"sum(kubevox_usage_total{{{ours}}} * on (model, unit) group_left"
            " max by (model, unit) (kubevox_unit_price))"
        )
        value = system.prometheus(query)
        return value if value == pytest.approx(expected) else None

    wait_until(f"the estimated cost {expected:.6g} in Prometheus", cost, 180)
    panel = panel_query(
        "Estimated cost per hour by agent", window="10m", namespace=namespace, agent="offline"
    )
    assert (system.prometheus(panel) or 0) > 0, panel
    return expected
