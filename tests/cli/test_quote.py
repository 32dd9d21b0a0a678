"""``spendgate quote``: cost, breakdown and provenance; unpriced and malformed input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from spendgate.cli.main import cli
from spendgate.pricing import default_catalog

S45 = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
AT = "2026-11-01T00:00:00Z"


def _quote(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["quote", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _json(*args: str) -> dict:
    code, out = _quote(*args, "--json")
    assert code == 0, out
    return json.loads(out)


def test_json_cost_breakdown_and_provenance():
    # 500 x 3.30 + 200 x 16.50 + 8,000 x 0.33 + 1,000 x 6.60 = $0.01419
    doc = _json(
        "--model",
        S45,
        "--input",
        "500",
        "--output",
        "200",
        "--cache-read",
        "8000",
        "--cache-write-1h",
        "1000",
        "--at",
        AT,
    )
    assert doc["cost_usd"] == "0.01419"
    assert doc["unpriced"] is False and doc["reason"] is None
    assert doc["breakdown"] == {
        "input": "0.00165",
        "output": "0.0033",
        "cache_read": "0.00264",
        "cache_write_5m": "0",
        "cache_write_1h": "0.0066",
    }
    assert doc["price_ref"] == "anthropic.claude-sonnet-4-5@us-east-1/geo/standard/2025-09-29"
    assert doc["price_source"].startswith("https://")
    assert doc["catalog_version"] == default_catalog().version
    assert doc["region"] == "us-east-1" and doc["scope"] == "geo" and doc["tier"] == "standard"


def test_json_keeps_full_precision_in_plain_notation():
    # 1 token of Nova Micro: $0.035 / 1M = $0.000000035 (never "3.5E-8")
    doc = _json("--model", "amazon.nova-micro-v1:0", "--input", "1", "--output", "0", "--at", AT)
    assert doc["cost_usd"] == "0.000000035"


def test_tier_region_and_long_context():
    # Haiku 4.5 batch, global: 1M x $0.50 + 1M x $2.50 = $3
    doc = _json(
        "--model",
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        "--tier",
        "batch",
        "--input",
        "1000000",
        "--output",
        "1000000",
        "--at",
        AT,
    )
    assert doc["cost_usd"] == "3"
    # Nova Lite eu. from eu-west-1: 1M x $0.078 = $0.078
    doc = _json(
        "--model",
        "eu.amazon.nova-lite-v1:0",
        "--region",
        "eu-west-1",
        "--input",
        "1000000",
        "--output",
        "0",
        "--at",
        AT,
    )
    assert doc["cost_usd"] == "0.078"
    # Sonnet 4.5 us. 300k/10k: 300k x 6.60 + 10k x 24.75 = $2.2275, at long-context rates
    doc = _json("--model", S45, "--input", "300000", "--output", "10000", "--at", AT)
    assert doc["cost_usd"] == "2.2275" and doc["long_context"] is True
    assert doc["rates_per_1m"]["input"] == "6.60"


def test_arn_region_is_the_default_region():
    arn = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0"
    doc = _json("--model", arn, "--input", "1000000", "--output", "0", "--at", AT)
    assert doc["region"] == "eu-west-1" and doc["cost_usd"] == "0.078"


def test_unknown_model_exits_0_unpriced_with_a_reason():
    doc = _json("--model", "acme.mystery-v1:0", "--input", "10", "--output", "10", "--at", AT)
    assert doc["unpriced"] is True
    assert doc["cost_usd"] is None and doc["breakdown"] == {}
    assert doc["reason"].startswith("unknown model: acme.mystery-v1:0")
    assert doc["catalog_version"] == default_catalog().version


def test_unpriced_text_output():
    code, out = _quote(
        "--model", "deepseek.r1-v1:0", "--tier", "batch", "--input", "1", "--output", "1"
    )
    assert code == 0
    assert "unpriced: deepseek.r1 has no batch price on Bedrock" in out


def test_text_output_shows_breakdown_and_provenance():
    code, out = _quote("--model", S45, "--input", "500", "--output", "200", "--at", AT)
    assert code == 0
    assert "= $0.00495" in out  # 500 x 3.30 + 200 x 16.50 = 0.00165 + 0.0033
    assert "price    anthropic.claude-sonnet-4-5@us-east-1/geo/standard/2025-09-29" in out
    assert f"catalog  {default_catalog().version}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", S45, "--input", "ten", "--output", "1"], "Invalid value for '--input'"),
        (["--model", S45, "--input", "-5", "--output", "1"], "Invalid value for '--input'"),
        (["--model", S45, "--input", "1"], "Missing option '--output'"),
        (
            ["--model", S45, "--input", "1", "--output", "1", "--tier", "turbo"],
            "Invalid value for '--tier'",
        ),
        (
            ["--model", S45, "--input", "1", "--output", "1", "--at", "noon"],
            "--at: 'noon' is not an ISO 8601",
        ),
        (
            ["--model", S45, "--input", "1", "--output", "1", "--region", "mars"],
            "--region: 'mars' is not",
        ),
        (["--model", "bad id", "--input", "1", "--output", "1"], "--model: 1 validation error"),
    ],
)
def test_malformed_arguments_exit_2_with_one_error_line(args, message):
    code, out = _quote(*args)
    assert code == 2
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in out


def test_overrides_file(tmp_path: Path):
    overrides = tmp_path / "overrides.toml"
    overrides.write_text('[discounts.providers]\nanthropic = "10"\n')
    # (500 x 3.30 + 200 x 16.50) x 0.90 = 0.00495 x 0.9 = $0.004455
    doc = _json(
        "--model",
        S45,
        "--input",
        "500",
        "--output",
        "200",
        "--at",
        AT,
        "--overrides",
        str(overrides),
    )
    assert doc["cost_usd"] == "0.004455" and doc["discount_pct"] == "10"
    assert doc["catalog_version"].startswith(f"{default_catalog().version}+overrides.")


@pytest.mark.parametrize(
    ("text", "message"),
    [("[discounts]\nall = 'lots'", "discounts.all: expected a decimal"), (None, "cannot read")],
)
def test_bad_overrides_file_exits_2(tmp_path: Path, text, message):
    path = tmp_path / "overrides.toml"
    if text is not None:
        path.write_text(text)
    code, out = _quote("--model", S45, "--input", "1", "--output", "1", "--overrides", str(path))
    assert code == 2 and message in out


def test_installed_console_script():
    script = Path(sys.executable).parent / "spendgate"
    if not script.exists():
        pytest.skip("spendgate is not installed into this environment (pip install -e .)")
    result = subprocess.run(
        [
            str(script),
            "quote",
            "--model",
            S45,
            "--input",
            "500",
            "--output",
            "200",
            "--cache-read",
            "8000",
            "--cache-write-1h",
            "1000",
            "--at",
            AT,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["cost_usd"] == "0.01419" and doc["unpriced"] is False
