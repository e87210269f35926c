"""What calls cost: the units each call's providers consume, and the unit prices a platform team
declares for them, so that a dashboard shows an estimated cost per agent.

The workers count what each call consumed, per model, in ``kubevox_usage_total`` (one series
per ``unit`` below). The prices are in no code and no VoiceAgent: a price list
(:class:`UnitPrices`, a YAML file in ConfigMap ``kubevox-unit-prices``, Helm value ``pricing``)
that the operator reads at each scrape and exports per unit as ``kubevox_unit_price``. A price
that changes is one ConfigMap edit, no worker restarted; the cost is a PromQL join of the two
(the dashboard's "Estimated cost" panels).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Final, Literal, Self, get_args

import yaml
from pydantic import Field, StringConstraints, model_validator

from .base import KubeModel

UsageUnit = Literal[
    "llm_input_token", "llm_cached_input_token", "llm_output_token", "stt_audio_second",
    "tts_character",
]  # fmt: skip
"""What a call consumes, as livekit measures it per model: language-model tokens (input not
served from the provider's cache, cached input, output), seconds of audio transcribed, and
characters synthesized."""
USAGE_UNITS: Final[tuple[UsageUnit, ...]] = get_args(UsageUnit)

USAGE_METRIC: Final = "kubevox_usage_total"
"""Counter of the units consumed by an agent's calls, by ``provider``, ``model`` and ``unit``."""
UNIT_PRICE_METRIC: Final = "kubevox_unit_price"
"""Gauge: the price of one ``unit`` of ``model`` in ``currency``."""
PRICE_LIST_VALID_METRIC: Final = "kubevox_unit_prices_valid"
"""Gauge: 1 when the operator's price list was read, 0 when it cannot be (then no price)."""

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=253)]
Price = Annotated[float, Field(ge=0, le=1_000_000)]


class ModelPrice(KubeModel):
    """The prices of one model, each for the unit its providers bill in."""

    model: ModelName
    """The model's name as the call record's ``usage`` names it (e.g. ``gpt-4o-mini``,
    ``nova-3``, ``sonic-2``)."""
    llm_input_per_million_tokens: Price | None = None
    """Language model: the price of a million input tokens not served from the cache."""
    llm_cached_input_per_million_tokens: Price | None = None
    """Language model: the price of a million input tokens served from the provider's prompt
    cache (default: the input price)."""
    llm_output_per_million_tokens: Price | None = None
    """Language model: the price of a million output tokens."""
    stt_per_minute: Price | None = None
    """Speech-to-text: the price of a minute of audio transcribed."""
    tts_per_million_characters: Price | None = None
    """Text-to-speech: the price of a million characters synthesized."""

    @model_validator(mode="after")
    def _priced(self) -> Self:
        if all(price is None for _, price in self.per_unit()):
            raise ValueError(f"model {self.model!r}: set at least one price")
        return self

    def per_unit(self) -> Iterator[tuple[UsageUnit, float | None]]:
        """The price of one of each unit (None: not priced)."""
        million = 1_000_000.0
        cached = self.llm_cached_input_per_million_tokens
        if cached is None:
            cached = self.llm_input_per_million_tokens
        yield "llm_input_token", _scaled(self.llm_input_per_million_tokens, million)
        yield "llm_cached_input_token", _scaled(cached, million)
        yield "llm_output_token", _scaled(self.llm_output_per_million_tokens, million)
        yield "stt_audio_second", _scaled(self.stt_per_minute, 60.0)
        yield "tts_character", _scaled(self.tts_per_million_characters, million)


def _scaled(price: float | None, units: float) -> float | None:
    return None if price is None else price / units


class UnitPrices(KubeModel):
    """The price list: what each model costs, in one currency."""

    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    """ISO 4217 code of every price here."""
    models: list[ModelPrice] = Field(default_factory=list, max_length=500)
    """The priced models; a model not listed has no estimated cost."""

    @classmethod
    def parse_yaml(cls, text: str) -> UnitPrices:
        """The price list in ``text`` (an empty file: no prices). Raises ValueError, naming
        the field, for one that does not parse."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"not YAML: {e}") from e
        return cls.model_validate(data if data is not None else {})

    @model_validator(mode="after")
    def _listed_once(self) -> Self:
        names = [m.model for m in self.models]
        if repeated := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"models: each model must be listed once ({', '.join(repeated)})")
        return self

    def unit_prices(self) -> Iterator[tuple[str, UsageUnit, float]]:
        """(model, unit, price of one unit) for every price set."""
        for entry in self.models:
            for unit, price in entry.per_unit():
                if price is not None:
                    yield entry.model, unit, price
