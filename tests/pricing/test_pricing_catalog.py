"""The shipped catalog: schema, coverage, the pricing rules as data invariants, load errors."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from spendgate.errors import DataError
from spendgate.pricing import default_catalog, load_catalog

DATA = files("spendgate.pricing").joinpath("data")
RAW = json.loads(DATA.joinpath("catalog.json").read_text())
SCHEMA = json.loads(DATA.joinpath("catalog.schema.json").read_text())


def test_shipped_catalog_matches_its_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(RAW), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_schema_rejects_a_float_price():
    broken = copy.deepcopy(RAW)
    broken["prices"][0]["input"] = 3.3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


@pytest.mark.parametrize(
    "key",
    [
        "anthropic.claude-3-haiku",
        "anthropic.claude-3-5-sonnet",
        "anthropic.claude-3-7-sonnet",
        "anthropic.claude-sonnet-4",
        "anthropic.claude-sonnet-4-5",
        "anthropic.claude-sonnet-4-6",
        "anthropic.claude-haiku-4-5",
        "anthropic.claude-opus-4-1",
        "anthropic.claude-opus-4-5",
        "anthropic.claude-opus-4-6",
        "amazon.nova-micro",
        "amazon.nova-lite",
        "amazon.nova-pro",
        "amazon.nova-premier",
        "amazon.nova-2-lite",
        "meta.llama3-1-70b-instruct",
        "meta.llama3-3-70b-instruct",
        "meta.llama4-maverick-17b-instruct",
        "mistral.mistral-large-3",
        "deepseek.r1",
        "deepseek.v3.2",
        "openai.gpt-oss-120b",
        "qwen.qwen3-235b-a22b-2507",
        "cohere.command-r-plus",
        "ai21.jamba-1-5-large",
        "amazon.titan-embed-text-v2",
        "cohere.embed-english-v3",
    ],
)
def test_catalog_covers_the_required_families(key):
    catalog = default_catalog()
    assert key in catalog.models
    assert any(record.key == key for record in catalog.records)


def test_every_model_has_a_standard_price_and_every_record_a_model():
    keys = {record.key for record in default_catalog().records if record.tier == "standard"}
    assert keys == set(RAW["models"])


def test_unverified_records_say_why():
    for record in RAW["prices"]:
        if not record["verified"]:
            assert record.get("notes"), record["key"]


def _rates(record: dict) -> list[Decimal | None]:
    names = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
    values = [record.get(name) for name in names]
    long_context = record.get("long_context") or {}
    values += [long_context.get(name) for name in names]
    return [None if v is None else Decimal(v) for v in values]


def test_claude_regional_is_exactly_110_percent_of_global():
    """Rule: from Sonnet 4.5 on, every non-global route is 1.10x the global record."""
    global_records = [
        r for r in RAW["prices"] if r["scopes"] == ["global"] and r["key"].startswith("anthropic.")
    ]
    assert len(global_records) >= 6
    for base in global_records:
        twin = [
            r
            for r in RAW["prices"]
            if r["key"] == base["key"]
            and r["tier"] == base["tier"]
            and r["regions"] == base["regions"]
            and r["effective_from"] == base["effective_from"]
            and "geo" in r["scopes"]
        ]
        assert len(twin) == 1, base["key"]
        for regional, global_ in zip(_rates(twin[0]), _rates(base), strict=True):
            assert (regional is None) == (global_ is None)
            if global_ is not None:
                assert regional == global_ * Decimal("1.10"), base["key"]


def test_claude_cache_multipliers():
    """Claude 4.5+: read 0.1x, 5-minute write 1.25x, 1-hour write 2x the input rate."""
    for record in RAW["prices"]:
        if (
            record["key"].startswith("anthropic.")
            and record["tier"] == "standard"
            and record["cache_write_1h"]
        ):
            rate = Decimal(record["input"])
            assert Decimal(record["cache_read"]) == rate * Decimal("0.1")
            assert Decimal(record["cache_write_5m"]) == rate * Decimal("1.25")
            assert Decimal(record["cache_write_1h"]) == rate * 2


def test_nova_cache_reads_are_a_quarter_and_writes_free():
    for record in RAW["prices"]:
        if record["key"].startswith("amazon.nova") and record["tier"] == "standard":
            assert Decimal(record["cache_read"]) == Decimal(record["input"]) * Decimal("0.25")
            assert Decimal(record["cache_write_5m"]) == 0


def test_batch_is_half_of_standard_where_both_exist():
    standard = {
        (r["key"], tuple(r["regions"]), tuple(r["scopes"]), r["effective_from"]): r
        for r in RAW["prices"]
        if r["tier"] == "standard"
    }
    for record in RAW["prices"]:
        if record["tier"] == "batch":
            match = standard[
                (
                    record["key"],
                    tuple(record["regions"]),
                    tuple(record["scopes"]),
                    record["effective_from"],
                )
            ]
            assert Decimal(record["input"]) * 2 == Decimal(match["input"])
            assert Decimal(record["output"]) * 2 == Decimal(match["output"])


def _broken(change) -> dict:
    data = copy.deepcopy(RAW)
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["prices"][0].update(input="3,30"), r"prices\[0\]\.input: expected a decimal"),
        (
            lambda d: d["prices"][0].update(output="-1"),
            r"prices\[0\]\.output: expected a finite, non-negative",
        ),
        (lambda d: d["prices"][0].update(tier="cheap"), r"prices\[0\]\.tier: expected one of"),
        (lambda d: d["prices"][0].update(scopes=["local"]), r"prices\[0\]\.scopes"),
        (lambda d: d["prices"][0].update(regions=["@mars"]), r"unknown region group '@mars'"),
        (lambda d: d["prices"][0].update(regions=["us-east"]), r"expected an AWS Region code"),
        (
            lambda d: d["prices"][0].update(effective_from="29/09/2025"),
            r"effective_from: expected a date",
        ),
        (
            lambda d: d["prices"][0].update(effective_to="2020-01-01"),
            r"effective_to: 2020-01-01 is not after",
        ),
        (lambda d: d["prices"][0].update(colour="blue"), r"unknown field 'colour'"),
        (lambda d: d["prices"][0].update(key="acme.unknown"), r"which has no model entry"),
        (
            lambda d: d["prices"].append(copy.deepcopy(d["prices"][0])),
            r"overlapping standard prices",
        ),
        (
            lambda d: d["models"]["amazon.nova-lite"]["ids"].append("amazon.nova-pro-v1:0"),
            r"listed for both",
        ),
        (lambda d: d.update(currency="EUR"), r"currency 'USD'"),
        (lambda d: d.pop("catalog_version"), r"catalog_version: expected a non-empty string"),
    ],
)
def test_malformed_catalog_names_the_problem(change, message):
    with pytest.raises(DataError, match=message):
        load_catalog(_broken(change))


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_import_is_cheap_and_lazy():
    out = _run(
        "import sys, spendgate.pricing as p;"
        "print(p.default_catalog.cache_info().currsize, 'jsonschema' in sys.modules, "
        "'genai_prices' in sys.modules)"
    )
    assert out == "0 False False"


def test_docs_example_runs():
    text = (Path(__file__).resolve().parents[2] / "docs" / "pricing.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "docs/pricing.md", "exec"), {})
