"""Hand-computed costs, one or more per pricing rule (docs/pricing.md "Rules").

Each expected value is a literal Decimal with the arithmetic beside it. Rates are USD per 1M
tokens, so ``N tokens x R`` below means N x R / 1,000,000.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from spendgate.pricing import default_catalog, price_for

from pricing_helpers import AT, quote, unpriced

S45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
H45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
M = 1_000_000


# --- Rule: global is the base rate for Claude from Sonnet 4.5 on; every other route is 1.10x ----


def test_sonnet45_global_profile_is_the_base_rate():
    # 100k x $3 + 100k x $15 = 0.3 + 1.5 = $1.80
    assert quote(f"global.{S45}", i=100_000, o=100_000) == Decimal("1.80")


def test_sonnet45_us_profile_is_ten_percent_more():
    # 100k x $3.30 + 100k x $16.50 = 0.33 + 1.65 = $1.98
    assert quote(f"us.{S45}", i=100_000, o=100_000) == Decimal("1.98")


def test_sonnet45_bare_id_in_us_east_1_is_regional_not_global():
    # bare id = in-Region route, billed like geo (litellm #42679):
    # 100k x $3.30 + 100k x $16.50 = 0.33 + 1.65 = $1.98
    assert quote(S45, "us-east-1", i=100_000, o=100_000) == Decimal("1.98")


def test_sonnet45_eu_profile_from_eu_west_1():
    # Claude has one regional rate in every commercial Region:
    # 100k x $3.30 + 100k x $16.50 = $1.98
    assert quote(f"eu.{S45}", "eu-west-1", i=100_000, o=100_000) == Decimal("1.98")


def test_sonnet45_jp_profile_from_tokyo():
    # 100k x $3.30 + 10k x $16.50 = 0.33 + 0.165 = $0.495
    assert quote(f"jp.{S45}", "ap-northeast-1", i=100_000, o=10_000) == Decimal("0.495")


def test_sonnet45_pricing_facts_worked_example():
    # us.: 500 x 3.30 + 200 x 16.50 + 8,000 x 0.33 + 1,000 x 6.60 (1h write)
    #    = 0.00165 + 0.0033 + 0.00264 + 0.0066 = $0.01419
    assert quote(f"us.{S45}", i=500, o=200, cr=8_000, w1=1_000) == Decimal("0.01419")


def test_haiku45_global_vs_regional():
    # global: 1M x $1 + 1M x $5 = $6; us.: 1M x $1.10 + 1M x $5.50 = $6.60
    assert quote(f"global.{H45}", i=M, o=M) == Decimal("6")
    assert quote(f"us.{H45}", i=M, o=M) == Decimal("6.60")


def test_opus46_global_unsuffixed_id():
    # 1M x $5 + 100k x $25 = 5 + 2.5 = $7.50
    assert quote("global.anthropic.claude-opus-4-6-v1", i=M, o=100_000) == Decimal("7.5")


def test_opus47_regional():
    # us.: 20k x $5.50 + 2k x $27.50 = 0.11 + 0.055 = $0.165
    assert quote("us.anthropic.claude-opus-4-7", i=20_000, o=2_000) == Decimal("0.165")


def test_sonnet4_global_costs_the_same_as_regional():
    # the global discount starts with Sonnet 4.5: 1M x $3 either way
    sonnet4 = "anthropic.claude-sonnet-4-20250514-v1:0"
    assert quote(f"global.{sonnet4}", i=M) == quote(f"us.{sonnet4}", i=M) == Decimal("3")


# --- Rule: 1-hour cache writes are priced apart from 5-minute writes -----------------------------


def test_cache_write_1h_vs_5m_global():
    # 10k x $3.75 (5m) = $0.0375; 10k x $6 (1h) = $0.06
    assert quote(f"global.{S45}", w5=10_000) == Decimal("0.0375")
    assert quote(f"global.{S45}", w1=10_000) == Decimal("0.06")


def test_cache_write_1h_vs_5m_regional():
    # 10k x $4.125 = $0.04125; 10k x $6.60 = $0.066
    assert quote(f"us.{S45}", w5=10_000) == Decimal("0.04125")
    assert quote(f"us.{S45}", w1=10_000) == Decimal("0.066")


def test_haiku45_cache_reads_and_writes():
    # us.: 1M x $0.11 (read) + 1M x $1.375 (5m) + 1M x $2.20 (1h) = $3.685
    assert quote(f"us.{H45}", cr=M, w5=M, w1=M) == Decimal("3.685")


def test_model_without_1h_price_charges_1h_writes_at_input_rate():
    # Opus 4.1 lists no 1h write: 1,000 x $15 (input rate) = $0.015
    result = price_for("us.anthropic.claude-opus-4-1-20250805-v1:0", "us-east-1", AT)
    assert result.price is not None and result.price.assumed == ("cache_write_1h",)
    assert quote("us.anthropic.claude-opus-4-1-20250805-v1:0", w1=1_000) == Decimal("0.015")


def test_opus41_regional():
    # 10k x $15 + 1k x $75 = 0.15 + 0.075 = $0.225
    assert quote("us.anthropic.claude-opus-4-1-20250805-v1:0", i=10_000, o=1_000) == Decimal(
        "0.225"
    )


# --- Rule: long context is a cliff; its threshold counts input + cache tokens --------------------


def test_sonnet45_a_million_tokens_in_is_long_context():
    # us., 1M in / 1M out: 1M x $6.60 + 1M x $24.75 = $31.35 (not 3.30 + 16.50)
    assert quote(f"us.{S45}", i=M, o=M) == Decimal("31.35")


def test_sonnet45_above_200k_whole_request_at_long_context_rate():
    # us., 300k in / 10k out: 300k x $6.60 + 10k x $24.75 = 1.98 + 0.2475 = $2.2275
    assert quote(f"us.{S45}", i=300_000, o=10_000) == Decimal("2.2275")


def test_sonnet45_exactly_at_threshold_is_base_rate():
    # 200,000 is not above 200,000: 200k x $3.30 = $0.66
    assert quote(f"us.{S45}", i=200_000) == Decimal("0.66")


def test_sonnet45_one_token_over_threshold():
    # 200,001 x $6.60 = $1.3200066
    assert quote(f"us.{S45}", i=200_001) == Decimal("1.3200066")


def test_threshold_counts_cache_tokens():
    # global: 150k in + 60k cache read = 210k > 200k, so long-context rates:
    # 150k x $6 + 60k x $0.60 + 1k x $22.50 = 0.9 + 0.036 + 0.0225 = $0.9585
    assert quote(f"global.{S45}", i=150_000, cr=60_000, o=1_000) == Decimal("0.9585")


def test_threshold_ignores_output_tokens():
    # 190k in stays below 200k however long the output: 190k x $3 + 50k x $15 = 0.57 + 0.75
    assert quote(f"global.{S45}", i=190_000, o=50_000) == Decimal("1.32")


def test_sonnet46_long_context_before_2026_03_13():
    # us., 300k in on 2026-03-01: 300k x $6.60 = $1.98
    march = datetime(2026, 3, 1, tzinfo=UTC)
    assert quote("us.anthropic.claude-sonnet-4-6", i=300_000, at=march) == Decimal("1.98")


def test_sonnet46_flat_after_2026_03_13():
    # us., 300k in on 2026-04-01: 300k x $3.30 = $0.99
    april = datetime(2026, 4, 1, tzinfo=UTC)
    assert quote("us.anthropic.claude-sonnet-4-6", i=300_000, at=april) == Decimal("0.99")


# --- Rule: you pay the source Region's price; regional uplifts where AWS prices them -------------


def test_nova_lite_eu_profile_at_eu_rate():
    # eu. from eu-west-1: 1M x $0.078 + 1M x $0.312 = $0.39 (US would be $0.30)
    assert quote("eu.amazon.nova-lite-v1:0", "eu-west-1", i=M, o=M) == Decimal("0.39")


def test_nova_lite_us_profile_at_us_rate():
    # 1M x $0.06 + 1M x $0.24 = $0.30
    assert quote("us.amazon.nova-lite-v1:0", "us-east-1", i=M, o=M) == Decimal("0.30")


def test_nova_pro_apac_rate():
    # apac. from Tokyo: 1M x $0.84 + 1M x $3.36 = $4.20
    assert quote("apac.amazon.nova-pro-v1:0", "ap-northeast-1", i=M, o=M) == Decimal("4.20")


def test_nova_pro_mumbai_has_its_own_rate():
    # ap-south-1: 1M x $0.94 + 1M x $3.76 = $4.70
    assert quote("amazon.nova-pro-v1:0", "ap-south-1", i=M, o=M) == Decimal("4.70")


def test_nova_cache_read_quarter_price_and_free_writes():
    # Nova Micro us: 1M read x $0.00875 + 1M 5m-write x $0 = $0.00875
    assert quote("amazon.nova-micro-v1:0", cr=M, w5=M) == Decimal("0.00875")


def test_nova2_lite_global_us_and_eu():
    # global 0.30 + 2.50 = 2.80; us. 0.33 + 2.75 = 3.08; eu. 0.429 + 3.597 = 4.026
    nova2 = "amazon.nova-2-lite-v1:0"
    assert quote(f"global.{nova2}", i=M, o=M) == Decimal("2.80")
    assert quote(f"us.{nova2}", i=M, o=M) == Decimal("3.08")
    assert quote(f"eu.{nova2}", "eu-central-1", i=M, o=M) == Decimal("4.026")


def test_deepseek_v32_us_and_elsewhere():
    # US: 0.62 + 1.85 = 2.47; Ireland: 0.74 + 2.22 = 2.96
    assert quote("deepseek.v3.2", "us-west-2", i=M, o=M) == Decimal("2.47")
    assert quote("deepseek.v3.2", "eu-west-1", i=M, o=M) == Decimal("2.96")


def test_mistral_large_paris_rate():
    # eu-west-3: 1M x $5.20 + 1M x $15.60 = $20.80; us-west-2: 4 + 12 = $16
    assert quote("mistral.mistral-large-2402-v1:0", "eu-west-3", i=M, o=M) == Decimal("20.80")
    assert quote("mistral.mistral-large-2402-v1:0", "us-west-2", i=M, o=M) == Decimal("16")


def test_missing_region_is_unpriced_never_us_price():
    result = unpriced("amazon.nova-lite-v1:0", "ca-central-1")
    assert "never falls back" in result.unpriced_reason


# --- Rule: GovCloud is priced only where a record names it (+20%, unverified) --------------------


def test_govcloud_sonnet45():
    # us-gov. from us-gov-west-1: 100k x $3.60 + 100k x $18 = 0.36 + 1.8 = $2.16
    assert quote(f"us-gov.{S45}", "us-gov-west-1", i=100_000, o=100_000) == Decimal("2.16")


def test_govcloud_nova_lite():
    # 1M x $0.072 + 1M x $0.288 = $0.36
    assert quote("amazon.nova-lite-v1:0", "us-gov-east-1", i=M, o=M) == Decimal("0.36")


def test_govcloud_without_a_record_is_unpriced():
    # '*' never covers GovCloud: Haiku 4.5 has no GovCloud record
    unpriced(f"us-gov.{H45}", "us-gov-west-1")
    unpriced(f"global.{S45}", "us-gov-west-1")


# --- Rule: batch / flex / priority only where the model has them --------------------------------


def test_haiku45_batch():
    # us.: 2M x $0.55 + 1M x $2.75 = $3.85; global: 1M x $0.50 + 1M x $2.50 = $3
    assert quote(f"us.{H45}", tier="batch", i=2 * M, o=M) == Decimal("3.85")
    assert quote(f"global.{H45}", tier="batch", i=M, o=M) == Decimal("3")


def test_sonnet45_batch_bare_id():
    # 1M x $1.65 + 1M x $8.25 = $9.90
    assert quote(S45, tier="batch", i=M, o=M) == Decimal("9.90")


def test_nova_lite_batch_in_us():
    # 1M x $0.03 + 1M x $0.12 = $0.15
    assert quote("amazon.nova-lite-v1:0", tier="batch", i=M, o=M) == Decimal("0.15")


def test_llama4_maverick_batch():
    # 1M x $0.12 + 1M x $0.485 = $0.605
    assert quote("us.meta.llama4-maverick-17b-instruct-v1:0", tier="batch", i=M, o=M) == Decimal(
        "0.605"
    )


def test_model_with_no_batch_price_asked_for_batch():
    result = unpriced("deepseek.r1-v1:0", tier="batch")
    assert (
        result.unpriced_reason
        == "deepseek.r1 has no batch price on Bedrock (priced tiers: standard)"
    )


def test_sonnet46_has_no_batch():
    unpriced("us.anthropic.claude-sonnet-4-6", tier="batch")


def test_batch_only_in_the_regions_that_price_it():
    unpriced("eu.amazon.nova-lite-v1:0", "eu-west-1", tier="batch")


def test_flex_and_priority_are_unpriced_where_not_listed():
    unpriced("amazon.nova-lite-v1:0", tier="flex")
    unpriced("amazon.nova-lite-v1:0", tier="priority")


def test_reserved_and_unknown_tiers():
    assert "tokens-per-minute" in unpriced(S45, tier="reserved").unpriced_reason
    assert "unknown service tier" in unpriced(S45, tier="turbo").unpriced_reason


# --- Embeddings are billed on input tokens ------------------------------------------------------


def test_titan_embeddings_v2():
    # 1M x $0.02 = $0.02; the v1 model is $0.10
    assert quote("amazon.titan-embed-text-v2:0", i=M) == Decimal("0.02")
    assert quote("amazon.titan-embed-text-v1", i=M) == Decimal("0.10")


def test_cohere_embed():
    # 500k x $0.10 = $0.05
    assert quote("cohere.embed-english-v3", i=500_000) == Decimal("0.05")


# --- Unknown and unpriceable models: a reason, never a silent 0 ---------------------------------


def test_unknown_model_is_unpriced_with_a_reason():
    result = unpriced("acme.mystery-model-v1:0")
    assert result.unpriced_reason.startswith("unknown model: acme.mystery-model-v1:0")


def test_unknown_claude_version_is_not_priced_as_an_older_one():
    unpriced("anthropic.claude-opus-4-9")
    unpriced("amazon.titan-embed-text-v3:0")


def test_before_a_models_first_price_is_unpriced():
    result = unpriced(f"us.{S45}", at=datetime(2025, 1, 1, tzinfo=UTC))
    assert "no price in effect" in result.unpriced_reason


def test_provisioned_custom_and_invalid_ids():
    account = "arn:aws:bedrock:us-east-1:123456789012"
    assert "pt_cost" in unpriced(f"{account}:provisioned-model/abc123def456").unpriced_reason
    assert "imported" in unpriced(f"{account}:imported-model/abc123def456").unpriced_reason
    assert "invalid model id" in unpriced("not a model").unpriced_reason
    assert "not a Bedrock" in unpriced("my-endpoint-name").unpriced_reason


def test_naive_request_time_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        price_for(S45, "us-east-1", datetime(2026, 1, 1))


def test_every_result_carries_the_catalog_version():
    version = default_catalog().version
    assert price_for(S45, "us-east-1", AT).catalog_version == version
    assert price_for("acme.x", "us-east-1", AT).catalog_version == version
