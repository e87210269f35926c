"""The price list (kubevox_api.pricing.UnitPrices) as Prometheus gauges: ``kubevox_unit_price``
per model and unit, read from its file at each scrape.

The file is ConfigMap ``kubevox-unit-prices`` mounted in the operator's pod (optional): kubelet
updates it in place, so a new price shows at the next scrape. A file that does not parse exports
no price and ``kubevox_unit_prices_valid 0``, and its error is logged once per content: a
dashboard then shows no cost rather than a wrong one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

from kubevox_api.pricing import PRICE_LIST_VALID_METRIC, UNIT_PRICE_METRIC, UnitPrices
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, CollectorRegistry

log = logging.getLogger("kubevox.operator")

DEFAULT_PATH = "/etc/kubevox/unit-prices/prices.yaml"


class UnitPriceCollector:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._reported: str | None = None  # the digest of the last bad file logged

    def read(self) -> UnitPrices | None:
        """The price list (empty when there is no file); None when the file does not parse."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return UnitPrices()
        except OSError as e:
            self._bad(repr(e), repr(e))
            return None
        try:
            return UnitPrices.parse_yaml(text)
        except ValueError as e:  # pydantic's ValidationError is one
            self._bad(hashlib.sha256(text.encode()).hexdigest(), str(e))
            return None

    def _bad(self, digest: str, error: str) -> None:
        if digest != self._reported:
            self._reported = digest
            log.error(
                "the unit price list cannot be read", extra={"path": str(self.path), "error": error}
            )

    def collect(self) -> Iterator[Metric]:
        prices = self.read()
        valid = GaugeMetricFamily(
            PRICE_LIST_VALID_METRIC, "1: the unit price list was read; 0: it cannot be."
        )
        valid.add_metric([], 0.0 if prices is None else 1.0)
        yield valid
        if prices is None:
            return
        gauge = GaugeMetricFamily(
            UNIT_PRICE_METRIC,
            "The price of one unit of a model (kubevox_usage_total's units), from the price list.",
            labels=["model", "unit", "currency"],
        )
        for model, unit, price in prices.unit_prices():
            gauge.add_metric([model, unit, prices.currency], price)
        yield gauge


def register(path: str, registry: CollectorRegistry = REGISTRY) -> UnitPriceCollector:
    collector = UnitPriceCollector(Path(path))
    registry.register(collector)
    return collector
