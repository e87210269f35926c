"""The unit price list (kubevox_api.pricing) and the operator's gauges of it
(kubevox_operator/unit_prices.py): prices per million tokens, per minute and per million
characters become prices per unit; the file is read at each scrape; a bad file exports no price,
says so in a gauge and logs its error once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from kubevox_api.pricing import USAGE_UNITS, UnitPrices
from kubevox_operator.unit_prices import UnitPriceCollector
from prometheus_client import CollectorRegistry

PRICES = """\
currency: EUR
models:
- model: gpt-4o-mini
  llmInputPerMillionTokens: 0.15
  llmOutputPerMillionTokens: 0.6
- model: nova-3
  sttPerMinute: 0.0043
- model: sonic-2
  ttsPerMillionCharacters: 30
"""


def _registry(path: Path) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(UnitPriceCollector(path))
    return registry


def _price(registry: CollectorRegistry, model: str, unit: str, currency: str) -> float | None:
    labels = {"model": model, "unit": unit, "currency": currency}
    return registry.get_sample_value("kubevox_unit_price", labels)


def test_prices_per_unit_from_the_billing_units_people_quote() -> None:
    """Per million tokens, per minute, per million characters; cached input at the input price
    unless it has its own; units without a price are left out."""
    prices = UnitPrices.parse_yaml(PRICES)
    got = {(m, u): p for m, u, p in prices.unit_prices()}
    assert got == pytest.approx(
        {
            ("gpt-4o-mini", "llm_input_token"): 0.15e-6,
            ("gpt-4o-mini", "llm_cached_input_token"): 0.15e-6,
            ("gpt-4o-mini", "llm_output_token"): 0.6e-6,
            ("nova-3", "stt_audio_second"): 0.0043 / 60,
            ("sonic-2", "tts_character"): 30e-6,
        }
    )
    assert {u for _, u in got} == set(USAGE_UNITS)
    cached = UnitPrices.parse_yaml(
        "models: [{model: m, llmInputPerMillionTokens: 1, llmCachedInputPerMillionTokens: 0.5}]"
    )
    assert (
        dict(((m, u), p) for m, u, p in cached.unit_prices())[("m", "llm_cached_input_token")]
        == 0.5e-6
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("models: [{model: m}]", "model 'm': set at least one price"),
        ("models: [{model: m, sttPerMinute: -1}]", "greater than or equal to 0"),
        ("models: [{model: m, sttPerMinute: 1}, {model: m, sttPerMinute: 2}]", "listed once (m)"),
        ("models: [{model: m, sttPerMinut: 1}]", "sttPerMinut"),
        ("currency: dollars", "currency"),
        ("models: [{model: m", "not YAML"),
    ],
)
def test_a_price_list_that_is_wrong_says_where(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        UnitPrices.parse_yaml(text)


def test_the_gauges_follow_the_file_at_each_scrape(tmp_path: Path) -> None:
    """No file: no price, and the list counts as read (nothing to price is not an error). A file
    written (as kubelet updates a mounted ConfigMap) shows at the next scrape, then a change."""
    path = tmp_path / "prices.yaml"
    registry = _registry(path)
    assert registry.get_sample_value("kubevox_unit_prices_valid") == 1.0
    assert _price(registry, "nova-3", "stt_audio_second", "EUR") is None

    path.write_text(PRICES)
    assert _price(registry, "nova-3", "stt_audio_second", "EUR") == pytest.approx(0.0043 / 60)
    assert _price(registry, "gpt-4o-mini", "llm_output_token", "EUR") == pytest.approx(0.6e-6)

    path.write_text(PRICES.replace("0.0043", "0.006"))
    assert _price(registry, "nova-3", "stt_audio_second", "EUR") == pytest.approx(0.006 / 60)


def test_a_bad_file_exports_no_price_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong price would make a wrong estimate: none is exported, the validity gauge says 0,
    and the error (naming the field) is logged once for that content, not at every scrape."""
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES.replace("sttPerMinute: 0.0043", "sttPerMinute: free"))
    registry = _registry(path)
    with caplog.at_level(logging.ERROR, logger="kubevox.operator"):
        for _ in range(3):
            assert registry.get_sample_value("kubevox_unit_prices_valid") == 0.0
            assert _price(registry, "gpt-4o-mini", "llm_input_token", "EUR") is None
    errors = [r for r in caplog.records if r.getMessage() == "the unit price list cannot be read"]
    assert len(errors) == 1
    assert "sttPerMinute" in errors[0].__dict__["error"]

    path.write_text("models: [{model: m")  # no YAML at all: the same answer, no failed scrape
    assert registry.get_sample_value("kubevox_unit_prices_valid") == 0.0

    path.write_text(PRICES)
    assert registry.get_sample_value("kubevox_unit_prices_valid") == 1.0
    assert _price(registry, "gpt-4o-mini", "llm_input_token", "EUR") == pytest.approx(0.15e-6)
