"""Budgets from the config file: ``[[gateway.budgets]]`` tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from spendgate.errors import ConfigError
from spendgate.gateway.budget_sync import config_budgets
from spendgate.settings import GatewaySettings, load

CONFIG = """
[gateway]
redis_prefix = "team-a"

[[gateway.budgets]]
name = "org monthly"
metric = "cost_usd"
window = "calendar_month"
limit = "50000"

[[gateway.budgets]]
name = "backend-rpm"
scope = "project=backend"
metric = "requests"
window = "minute"
limit = 600
"""


def test_config_file_budgets_load_with_stable_ids(tmp_path: Path) -> None:
    path = tmp_path / "spendgate.toml"
    path.write_text(CONFIG)
    settings = load(GatewaySettings, config_file=path)
    budgets = config_budgets(settings.budgets)
    assert [b.id for b in budgets] == ["cfg_org-monthly", "cfg_backend-rpm"]
    assert budgets[1].is_rate_limit and budgets[1].scope == {"project": "backend"}


def test_a_bad_config_budget_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "spendgate.toml"
    path.write_text(CONFIG.replace('window = "minute"', 'window = "fortnight"'))
    with pytest.raises(ConfigError, match=r"\[\[gateway.budgets\]\] #2 \(backend-rpm\): window"):
        config_budgets(load(GatewaySettings, config_file=path).budgets)
    path.write_text("[gateway]\nbudgets = 3\n")
    with pytest.raises(ConfigError, match="must be an array of tables"):
        load(GatewaySettings, config_file=path)
