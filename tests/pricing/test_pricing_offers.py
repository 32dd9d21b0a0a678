"""scripts/update-prices and spendgate.pricing.offers on a small offer-file fixture."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from spendgate.errors import DataError
from spendgate.pricing import default_catalog
from spendgate.pricing.offers import diff, read_offer, to_records

ROOT = Path(__file__).resolve().parents[2]
OFFERS = ROOT / "tests" / "fixtures" / "pricing" / "offers"
BEDROCK = OFFERS / "AmazonBedrock-us-east-1.json"
FOUNDATION = OFFERS / "AmazonBedrockFoundationModels-us-east-1.json"
SCRIPT = ROOT / "scripts" / "update-prices"
AT = datetime(2026, 11, 20, tzinfo=UTC)


def _prices(path: Path):
    return read_offer(json.loads(path.read_text()), source=path.name)


def test_amazon_bedrock_offer_is_per_1k_tokens():
    prices, skipped = _prices(BEDROCK)
    lite_input = next(p for p in prices if p.sku == "NOVALITEIN00001")
    # $0.00006 per 1K tokens = $0.06 per 1M
    assert lite_input.usd_per_1m == Decimal("0.06")
    assert (lite_input.component, lite_input.tier, lite_input.scope) == (
        "input",
        "standard",
        "regional",
    )
    assert lite_input.region == "us-east-1" and lite_input.effective == date(2026, 11, 1)
    assert len(prices) == 11
    assert [s.split()[1] for s in skipped] == ["NOVALITEPT00001", "NOVALITELAT0001"]


@pytest.mark.parametrize(
    ("sku", "component", "tier", "scope", "long_context", "usd"),
    [
        ("NOVALITECR00001", "cache_read", "standard", "regional", False, "0.015"),
        ("NOVALITEBIN0001", "input", "batch", "regional", False, "0.03"),
        ("NOVAPROFLXOUT01", "output", "flex", "regional", False, "1.6"),
        ("SONNET45IN00001", "input", "standard", "regional", False, "3.3"),
        ("SONNET45CW00001", "cache_write_5m", "standard", "regional", False, "4.125"),
        ("SONNET45CW1H001", "cache_write_1h", "standard", "regional", False, "6.6"),
        ("SONNET45LOUT001", "output", "standard", "regional", True, "24.75"),
        ("SONNET45GCW1H01", "cache_write_1h", "standard", "global", False, "6"),
        ("SONNET45GBIN001", "input", "batch", "global", False, "1.5"),
    ],
)
def test_usage_types_are_classified(sku, component, tier, scope, long_context, usd):
    prices = _prices(BEDROCK)[0] + _prices(FOUNDATION)[0]
    found = next(p for p in prices if p.sku == sku)
    assert (found.component, found.tier, found.scope, found.long_context) == (
        component,
        tier,
        scope,
        long_context,
    )
    assert found.usd_per_1m == Decimal(usd)


def test_records_and_diff():
    prices = _prices(BEDROCK)[0] + _prices(FOUNDATION)[0]
    catalog = default_catalog()
    records, unmapped = to_records(prices, catalog, checked=date(2026, 11, 20), at=AT)
    changes = {(c.kind, c.subject): c.detail for c in diff(records, catalog, at=AT)}
    assert (
        changes[("changed", "amazon.nova-micro us-east-1 in_region standard")]
        == "input 0.035 -> 0.03"
    )
    assert (
        changes[("changed", "anthropic.claude-haiku-4-5 us-east-1 global standard")]
        == "input 1 -> 0.8"
    )
    assert changes[("new", "amazon.nova-pro us-east-1 in_region flex")] == "input 0.4, output 1.6"
    for same in (
        "amazon.nova-lite us-east-1 in_region standard",
        "amazon.nova-lite us-east-1 in_region batch",
        "anthropic.claude-sonnet-4-5 us-east-1 in_region standard",
        "anthropic.claude-sonnet-4-5 us-east-1 global standard",
        "anthropic.claude-sonnet-4-5 us-east-1 global batch",
    ):
        assert ("same", same) in changes
    assert [c.subject for c in unmapped] == [
        "AmazonBedrock 'Nemotron Super 3 120B'",
        "AmazonBedrockFoundationModels 'Kimi K2 Thinking (Amazon Bedrock Edition)'",
    ]


def test_records_are_valid_catalog_records():
    prices = _prices(FOUNDATION)[0]
    records, _ = to_records(prices, default_catalog(), checked=date(2026, 11, 20), at=AT)
    schema = json.loads(
        files("spendgate.pricing").joinpath("data", "catalog.schema.json").read_text()
    )
    record_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/record"}
    for record in records:
        jsonschema.validate(record, record_schema)
    sonnet = next(
        r
        for r in records
        if r["key"] == "anthropic.claude-sonnet-4-5" and r["scopes"] != ["global"]
    )
    assert sonnet["long_context"] == {
        "threshold": 200000,
        "input": "6.6",
        "output": "24.75",
        "cache_read": "0.66",
        "cache_write_5m": "8.25",
        "cache_write_1h": "13.2",
    }


def test_not_an_offer_file():
    with pytest.raises(DataError, match="not an AWS Price List offer file"):
        read_offer({"hello": "world"})
    with pytest.raises(DataError, match="offerCode 'AmazonEC2'"):
        read_offer({"offerCode": "AmazonEC2", "products": {}})


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_script_prints_the_diff():
    result = _script(str(BEDROCK), str(FOUNDATION))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"catalog {default_catalog().version}"
    assert "~ changed  amazon.nova-micro us-east-1 in_region standard: input 0.035 -> 0.03" in lines
    assert "+ new      amazon.nova-pro us-east-1 in_region flex: input 0.4, output 1.6" in lines
    assert any(
        line.startswith("? unmapped AmazonBedrock 'Nemotron Super 3 120B'") for line in lines
    )


def test_script_check_mode_and_json():
    assert _script("--check", str(BEDROCK)).returncode == 1
    result = _script("--json", str(FOUNDATION))
    assert result.returncode == 0
    records = json.loads(result.stdout)
    assert {r["key"] for r in records} == {
        "anthropic.claude-sonnet-4-5",
        "anthropic.claude-haiku-4-5",
    }


def test_script_reports_bad_input(tmp_path):
    broken = tmp_path / "index.json"
    broken.write_text("{}")
    result = _script(str(broken))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("not an AWS Price List offer file (no 'products' object)")
    assert _script().returncode == 2
