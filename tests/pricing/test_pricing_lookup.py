"""price_for: id forms, resolver, provenance, caching."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from spendgate.pricing import default_catalog, price_for

from pricing_helpers import AT, quote, unpriced

S45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
ACCOUNT = "arn:aws:bedrock:us-east-1:123456789012"
APP = f"{ACCOUNT}:application-inference-profile/abc123def456"
M = 1_000_000


def test_foundation_model_arn_is_an_in_region_call():
    # arn:...:foundation-model/... = bare id: 100k x $3.30 + 100k x $16.50 = $1.98
    arn = f"arn:aws:bedrock:us-east-1::foundation-model/{S45}"
    assert quote(arn, i=100_000, o=100_000) == Decimal("1.98")
    assert price_for(arn, "us-east-1", AT).price.scope == "in_region"


def test_inference_profile_arn_takes_its_geo_prefix():
    # global profile ARN: 100k x $3 + 100k x $15 = $1.80
    assert quote(f"{ACCOUNT}:inference-profile/global.{S45}", i=100_000, o=100_000) == Decimal(
        "1.8"
    )
    # eu profile ARN from eu-west-1: Nova Lite EU 1M x $0.078 = $0.078
    arn = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0"
    assert quote(arn, "eu-west-1", i=M) == Decimal("0.078")


def test_application_profile_through_the_resolver():
    # the resolver maps the profile to global Sonnet 4.5: 100k x $3 = $0.30
    calls = []

    def resolver(arn: str) -> str | None:
        calls.append(arn)
        return f"global.{S45}"

    assert quote(APP, i=100_000, resolver=resolver) == Decimal("0.3")
    assert quote(APP, i=100_000, resolver=resolver) == Decimal("0.3")
    assert calls == [APP, APP]  # never cached: the caller's mapping may change


def test_application_profile_resolved_to_a_foundation_arn_is_in_region():
    # copyFrom a foundation model: in-Region rate, 100k x $3.30 = $0.33
    target = f"arn:aws:bedrock:us-east-1::foundation-model/{S45}"
    assert quote(APP, i=100_000, resolver=lambda _: target) == Decimal("0.33")


def test_application_profile_without_a_usable_resolver():
    assert "needs a resolver" in unpriced(APP).unpriced_reason
    assert "does not know" in unpriced(APP, resolver=lambda _: None).unpriced_reason
    assert "another application" in unpriced(APP, resolver=lambda arn: arn).unpriced_reason
    assert "invalid id" in unpriced(APP, resolver=lambda _: "bad id").unpriced_reason


def test_id_suffix_forms_reach_the_same_key():
    keys = {
        price_for(model, "us-east-1", AT).price.key
        for model in (
            "us.anthropic.claude-opus-4-6-v1",
            "us.anthropic.claude-opus-4-6",
            "us.anthropic.claude-opus-4-6-v1:0",
        )
    }
    assert keys == {"anthropic.claude-opus-4-6"}
    dated = price_for("anthropic.claude-sonnet-4-5-20250929-v1", "us-east-1", AT).price
    assert dated.key == "anthropic.claude-sonnet-4-5"
    context = price_for("anthropic.claude-3-5-sonnet-20241022-v2:0:200k", "us-east-1", AT).price
    assert context.key == "anthropic.claude-3-5-sonnet-v2"


def test_price_carries_its_provenance():
    price = price_for(f"us.{S45}", "us-east-1", AT).price
    assert price.ref == "anthropic.claude-sonnet-4-5@us-east-1/geo/standard/2025-09-29"
    assert price.source_url.startswith("https://")
    assert price.effective_from == datetime(2025, 9, 29, tzinfo=UTC)
    assert price.checked is not None and price.verified and not price.estimate
    assert price.long_context is not None and price.long_context.threshold == 200_000


def test_wildcard_price_names_the_actual_source_region():
    price = price_for(f"eu.{S45}", "eu-central-1", AT).price
    assert price.region == "eu-central-1"
    assert price.ref.startswith("anthropic.claude-sonnet-4-5@eu-central-1/geo/")


def test_global_route_not_offered_for_an_older_model():
    result = unpriced("global.anthropic.claude-3-haiku-20240307-v1:0")
    assert "priced routes there: in_region, geo" in result.unpriced_reason


def test_warm_lookup_returns_the_cached_result_object():
    first = price_for(f"us.{S45}", "us-east-1", AT)
    again = price_for(f"us.{S45}", "us-east-1", datetime(2026, 11, 2, tzinfo=UTC))
    assert first is again


def test_request_time_in_another_timezone_is_compared_as_an_instant():
    from datetime import timedelta, timezone

    # 2026-03-13 00:30 in UTC+2 is 2026-03-12 22:30 UTC: still the long-context era of Sonnet 4.6
    local = datetime(2026, 3, 13, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    price = price_for("us.anthropic.claude-sonnet-4-6", "us-east-1", local).price
    assert price.long_context is not None


def test_lookup_cache_is_bounded():
    catalog = default_catalog()
    for number in range(9000):
        price_for(f"acme.model-{number}", "us-east-1", AT)
    assert len(catalog.lookup_cache) <= 8192
