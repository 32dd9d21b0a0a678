"""The overrides file: discounts, provisioned throughput, extra models and validation errors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from spendgate.errors import ConfigError, DataError
from spendgate.pricing import apply_overrides, default_catalog, parse_overrides, price_for, pt_cost

from pricing_helpers import quote_with

AT = datetime(2026, 11, 1, tzinfo=UTC)
S45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
M = 1_000_000

EXAMPLE = """
label = "acme EDP 2026"

[discounts]
all = "5"
[discounts.providers]
anthropic = "10"
[discounts.models]
"us.anthropic.claude-haiku-4-5-20251001-v1:0" = "12.5"

[[provisioned]]
model = "anthropic.claude-sonnet-4-5"
commitment = "1m"
usd_per_model_unit_hour = "63.00"

[[provisioned]]
model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
commitment = "SixMonths"
usd_per_model_unit_hour = "34.99"

[[provisioned]]
model = "anthropic.claude-sonnet-4-5"
commitment = "6m"
region = "eu-central-1"
usd_per_model_unit_hour = "41.00"

[models."acme.summarizer"]
name = "ACME Summarizer"
provider = "acme"
kind = "text"
ids = ["acme.summarizer-v1:0"]

[[prices]]
key = "acme.summarizer"
regions = ["us-east-1"]
scopes = ["in_region"]
input = "1.00"
output = "2.00"
effective_from = 2026-01-01
source_url = "contract ACME-123"

[[prices]]
key = "anthropic.claude-sonnet-4-5"
regions = ["us-west-2"]
scopes = ["in_region", "geo"]
input = "2.50"
output = "12.50"
effective_from = 2026-01-01
source_url = "private pricing addendum 7"
"""


overrides = parse_overrides(EXAMPLE)
quote = quote_with(apply_overrides(default_catalog(), overrides))


def test_provider_discount():
    # anthropic -10%: us. Sonnet 4.5 100k x $3.30 + 100k x $16.50 = $1.98, x 0.90 = $1.782
    assert quote(f"us.{S45}", i=100_000, o=100_000) == Decimal("1.782")


def test_model_discount_beats_provider_discount():
    # Haiku 4.5 -12.5% (not -10%): 1M x $1.10 + 1M x $5.50 = $6.60, x 0.875 = $5.775
    assert quote("us.anthropic.claude-haiku-4-5-20251001-v1:0", i=M, o=M) == Decimal("5.775")


def test_discount_for_all_models():
    # Nova Lite -5%: 1M x $0.06 + 1M x $0.24 = $0.30, x 0.95 = $0.285
    assert quote("amazon.nova-lite-v1:0", i=M, o=M) == Decimal("0.285")


def test_discount_applies_to_long_context_rates():
    # us. 300k in: 300k x $6.60 = $1.98, x 0.90 = $1.782
    assert quote(f"us.{S45}", i=300_000) == Decimal("1.782")


def test_override_record_wins_over_the_catalog():
    # us-west-2 private rate, then -10%: (100k x $2.50 + 100k x $12.50) x 0.9 = 1.5 x 0.9 = $1.35
    assert quote(f"us.{S45}", "us-west-2", i=100_000, o=100_000) == Decimal("1.35")
    # us-east-1 keeps the catalog rate: $1.98 x 0.9 = $1.782
    assert quote(f"us.{S45}", "us-east-1", i=100_000, o=100_000) == Decimal("1.782")


def test_extra_model():
    # ACME -5% (all): (1M x $1 + 1M x $2) x 0.95 = $2.85
    assert quote("acme.summarizer-v1:0", i=M, o=M) == Decimal("2.85")


def test_overrides_are_named_in_the_catalog_version():
    catalog = apply_overrides(default_catalog(), overrides)
    assert catalog.version == f"{default_catalog().version}+overrides.{overrides.digest}"
    result = price_for(f"us.{S45}", "us-east-1", AT, catalog=catalog)
    assert result.catalog_version == catalog.version == result.price.catalog_version
    assert result.price.discount_pct == Decimal("10")
    # the packaged catalog is untouched
    assert price_for(f"us.{S45}", "us-east-1", AT).price.discount_pct is None


def test_pt_cost_one_month():
    # 2 MU x 730 h x $63.00 = $91,980.00
    assert pt_cost("anthropic.claude-sonnet-4-5", 2, Decimal(730), "1m", overrides) == Decimal(
        "91980.00"
    )


def test_pt_cost_six_months_any_id_form():
    # 1 MU x 24 h x $34.99 = $839.76
    cost = pt_cost(f"us.{S45}", 1, Decimal(24), "6 months", overrides)
    assert cost == Decimal("839.76")


def test_pt_cost_regional_rate_wins():
    # eu-central-1: 3 MU x 10 h x $41.00 = $1,230.00
    assert pt_cost(S45, 3, 10, "6m", overrides, region="eu-central-1") == Decimal("1230.00")


def test_pt_cost_fractional_hours():
    # 1 MU x 0.5 h x $63 = $31.50
    assert pt_cost(S45, 1, Decimal("0.5"), "OneMonth", overrides) == Decimal("31.500")


def test_pt_cost_without_a_rate():
    with pytest.raises(ConfigError, match=r"no provisioned-throughput rate .* \(none commitment\)"):
        pt_cost(S45, 1, Decimal(1), "none", overrides)


@pytest.mark.parametrize(
    ("units", "hours", "commitment", "message"),
    [
        (0, Decimal(1), "1m", "model units"),
        (1, Decimal(-1), "1m", "hours"),
        (1, Decimal(1), "3 years", "unknown commitment"),
    ],
)
def test_pt_cost_bad_arguments(units, hours, commitment, message):
    with pytest.raises(ConfigError, match=message):
        pt_cost(S45, units, hours, commitment, overrides)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("discounts = [", "not valid TOML"),
        ("colour = 'blue'", "unknown field 'colour'"),
        ("[discounts]\nall = '-5'", r"discounts\.all: expected a finite, non-negative"),
        ("[discounts]\nall = '150'", r"between 0 and 100"),
        ("[discounts]\neverything = '5'", r"unknown field 'everything'"),
        ("[discounts.providers]\nanthropic = 'ten'", r"providers\.anthropic: expected a decimal"),
        (
            "[[provisioned]]\nmodel = 'x.y'\ncommitment = '2m'\nusd_per_model_unit_hour = '1'",
            r"provisioned\[0\]\.commitment: unknown commitment",
        ),
        (
            "[[provisioned]]\nmodel = 'x.y'\ncommitment = '1m'",
            r"provisioned\[0\]\.usd_per_model_unit_hour",
        ),
        (
            "[[provisioned]]\nmodel = 'x.y'\ncommitment = '1m'\nusd_per_model_unit_hour = '1'\n"
            "region = 'moon'",
            r"provisioned\[0\]\.region",
        ),
        ("[[prices]]\nkey = 'acme.x'", r"prices\[0\]\.effective_from: expected a date"),
        ("prices = 'cheap'", r"prices: expected an array of tables"),
        ("[models.'acme.x']\nname = 'X'", r"models\.acme\.x\.provider"),
    ],
)
def test_invalid_overrides_name_the_problem(text, message):
    with pytest.raises(DataError, match=message):
        parse_overrides(text, source="overrides")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[discounts.models]\n'acme.nothing' = '5'", "is in neither catalog nor overrides"),
        (
            "[[prices]]\nkey = 'acme.x'\nregions = ['*']\nscopes = ['geo']\ninput = '1'\n"
            "output = '1'\neffective_from = 2026-01-01\nsource_url = 'x'",
            "which has no model entry",
        ),
        (
            "[[prices]]\nkey = 'amazon.nova-lite'\nregions = ['@mars']\nscopes = ['geo']\n"
            "input = '1'\noutput = '1'\neffective_from = 2026-01-01\nsource_url = 'x'",
            "unknown region group '@mars'",
        ),
    ],
)
def test_overrides_inconsistent_with_the_catalog(text, message):
    with pytest.raises(DataError, match=message):
        apply_overrides(default_catalog(), parse_overrides(text))


def test_empty_overrides_change_nothing_but_the_version():
    catalog = apply_overrides(default_catalog(), parse_overrides(b""))
    assert price_for(f"us.{S45}", "us-east-1", AT, catalog=catalog).price.input == Decimal("3.30")
