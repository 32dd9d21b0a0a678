"""Optional estimates for models the catalog lacks, from genai-prices (the ``prices`` extra).

genai-prices is called through a *private* ``DataSnapshot`` built from its bundled data, never
through ``calc_price`` (whose auto-updater may swap a process-wide snapshot fetched over the
network). Its AWS data has no Region dimension (every price is us-east-1's) and no batch, flex or
priority prices, so a fallback price is always marked ``estimate`` and is offered only for the
standard tier. Importing this module does not import genai-prices; ``genai_prices_fallback()``
does, and returns None when the extra is not installed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from spendgate.bedrock.modelids import ModelRef
from spendgate.pricing.prices import COMPONENTS, LongContext, Price

SOURCE_URL = "https://github.com/pydantic/genai-prices"
_PROVIDER_ID = "aws"
_FIELDS = (
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CACHE_LIMIT = 4096
_NOTE = (
    "Estimate from genai-prices {version}: its AWS prices are us-east-1's for every Region and "
    "standard tier only; add the model to the overrides file for an exact price."
)


class GenaiPricesFallback:
    """A ``Fallback`` for ``price_for``: ``(ref, region, at) -> Price | None``."""

    def __init__(self, find: Callable[[str], Any], version: str) -> None:
        self._find = find  # model ref -> genai-prices ModelInfo (raises LookupError)
        self._version = version
        self._cache: dict[tuple[str, str, str, object], Price | None] = {}

    def __call__(self, ref: ModelRef, region: str, at: datetime) -> Price | None:
        if ref.base_model is None:
            return None
        model_ref = f"{ref.geo}.{ref.base_model}" if ref.geo else ref.base_model
        key = (model_ref, region, ref.scope, at.date())
        if key not in self._cache:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = self._price(model_ref, ref, region, at)
        return self._cache[key]

    def _price(self, model_ref: str, ref: ModelRef, region: str, at: datetime) -> Price | None:
        try:
            model = self._find(model_ref)
        except LookupError:
            return None
        prices = model.get_prices(at)
        values = [getattr(prices, name, None) for name in _FIELDS]
        if values[0] is None or values[1] is None:
            return None
        base = [_base(value) for value in values]
        first = base[0]
        assert first is not None and ref.base_model is not None
        filled = tuple(first if rate is None else rate for rate in base)
        return Price.of(
            ref.base_model,
            region,
            ref.scope,
            "standard",
            filled,
            long_context=_long_context(values, filled),
            ref=f"genai-prices:{model.id}@{region}/{ref.scope}/standard/{self._version}",
            source_url=SOURCE_URL,
            effective_from=_EPOCH,
            verified=False,
            estimate=True,
            assumed=tuple(
                name for name, rate in zip(COMPONENTS, base, strict=True) if rate is None
            ),
            notes=_NOTE.format(version=self._version),
        )


def _base(value: Any) -> Decimal | None:
    """The base rate of a plain or tiered genai-prices price."""
    if value is None:
        return None
    return Decimal(value.base) if hasattr(value, "base") else Decimal(value)


def _long_context(values: list[Any], filled: tuple[Decimal, ...]) -> LongContext | None:
    """genai-prices' first tier as our long-context cliff (it uses the same cliff rule)."""
    starts = {value.tiers[0].start for value in values if getattr(value, "tiers", None)}
    if len(starts) != 1:
        return None
    threshold = starts.pop()
    rates = tuple(
        Decimal(value.tiers[0].price) if getattr(value, "tiers", None) else base
        for value, base in zip(values, filled, strict=True)
    )
    return LongContext.of(int(threshold), rates)


def genai_prices_fallback() -> GenaiPricesFallback | None:
    """The fallback, or None when genai-prices (``pip install spendgate[prices]``) is missing."""
    try:
        from genai_prices import __version__ as version
        from genai_prices import data as bundled
        from genai_prices.data_snapshot import DataSnapshot
    except ImportError:
        return None
    snapshot = DataSnapshot(providers=bundled.providers, from_auto_update=False)

    def find(model_ref: str) -> Any:
        return snapshot.find_provider_model(model_ref, None, _PROVIDER_ID, None)[1]

    return GenaiPricesFallback(find, version)
