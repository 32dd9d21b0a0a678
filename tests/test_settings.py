"""Settings precedence: flags > environment > config file > defaults; bad values are ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from spendgate.errors import ConfigError
from spendgate.settings import GatewaySettings, SimSettings, env_name, load
from spendgate.store.rollup_cache import DEFAULT_BYTES


def test_defaults() -> None:
    s = load(SimSettings)
    assert s.port == 8787 and s.host == "127.0.0.1" and s.error_rate == 0.0


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "spendgate.toml"
    config.write_text("[sim]\nport = 9001\nlatency_ms = 5\nerror_rate = 0.1\n")
    env = {"SPENDGATE_SIM_PORT": "9002", "SPENDGATE_SIM_LATENCY_MS": "7"}
    s = load(SimSettings, flags={"port": 9003, "ttft_ms": None}, env=env, config_file=config)
    assert s.port == 9003  # flag beats environment
    assert s.latency_ms == 7.0  # environment beats file
    assert s.error_rate == 0.1  # file beats default
    assert s.ttft_ms == 0.0  # an unset flag does not override


def test_types_from_environment() -> None:
    env = {"SPENDGATE_SIM_INVOCATION_LOG_BODIES": "yes", "SPENDGATE_SIM_INVOCATION_LOG_DIR": "/x"}
    s = load(SimSettings, env=env)
    assert s.invocation_log_bodies is True and s.invocation_log_dir == Path("/x")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPENDGATE_SIM_PORT": "eighty"}, "SPENDGATE_SIM_PORT: 'eighty' is not a valid int"),
        ({"SPENDGATE_SIM_PORT": "70000"}, "port must be between"),
        ({"SPENDGATE_SIM_LOG_REQUESTS": "maybe"}, "not a valid bool"),
        ({"SPENDGATE_SIM_ACCOUNT_ID": "12"}, "account_id must be 12 digits"),
    ],
)
def test_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(SimSettings, env=env)


def test_rollup_cache_size() -> None:
    assert load(GatewaySettings, env={}).rollup_cache_mb == DEFAULT_BYTES >> 20  # the store's own
    env = {"SPENDGATE_GATEWAY_ROLLUP_CACHE_MB": "0"}
    assert load(GatewaySettings, env=env).rollup_cache_mb == 0
    with pytest.raises(ConfigError, match="rollup_cache_mb must be 0 \\(off\\) or more"):
        load(GatewaySettings, env={"SPENDGATE_GATEWAY_ROLLUP_CACHE_MB": "-1"})
    assert load(GatewaySettings, env={}).rollup_cache_warm_days == 31
    for days in ("-1", "93"):
        with pytest.raises(ConfigError, match="rollup_cache_warm_days must be between 0"):
            load(GatewaySettings, env={"SPENDGATE_GATEWAY_ROLLUP_CACHE_WARM_DAYS": days})


def test_bad_config_files(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[sim]\nbogus = 1\n")
    with pytest.raises(ConfigError, match="unknown setting \\[sim\\] bogus"):
        load(SimSettings, config_file=config)
    config.write_text("[sim\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(SimSettings, config_file=config)
    with pytest.raises(ConfigError, match="does not exist"):
        load(SimSettings, config_file=tmp_path / "missing.toml")


def test_env_names() -> None:
    assert env_name(SimSettings, "tokens_per_second") == "SPENDGATE_SIM_TOKENS_PER_SECOND"
