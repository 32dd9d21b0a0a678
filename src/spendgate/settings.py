"""Typed settings, built once at start-up.

Each component has one frozen dataclass. Values come from, highest precedence first:
command-line flags, the environment (``SPENDGATE_<SECTION>_<FIELD>``, e.g.
``SPENDGATE_SIM_PORT``), a TOML config file (``[sim]`` table), then the defaults below.
Every field is documented in docs/configuration.md (a test keeps that true). Secrets never
appear in a repr.
"""

from __future__ import annotations

import json
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from spendgate.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SimSettings:
    """``spendgate sim``: the Bedrock runtime simulator."""

    host: str = "127.0.0.1"
    port: int = 8787
    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    tokens_per_second: float = 0.0
    error_rate: float = 0.0
    invocation_log_dir: Path | None = None
    invocation_log_bodies: bool = False
    credentials_file: Path | None = None
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    max_body_bytes: int = 25_000_000
    account_id: str = "123456789012"
    cache_min_tokens: int = 1024
    seed: int = 0
    log_requests: bool = True

    def __post_init__(self) -> None:
        _check(0 < self.port < 65536 or self.port == 0, "port must be between 0 and 65535")
        for name in ("latency_ms", "ttft_ms", "tokens_per_second"):
            _check(getattr(self, name) >= 0, f"{name} must not be negative")
        _check(0.0 <= self.error_rate <= 1.0, "error_rate must be between 0 and 1")
        _check(self.max_body_bytes > 0, "max_body_bytes must be positive")
        _check(
            (self.tls_certfile is None) == (self.tls_keyfile is None),
            "tls_certfile and tls_keyfile go together: give both or neither",
        )
        _check(self.cache_min_tokens >= 0, "cache_min_tokens must not be negative")
        _check(
            len(self.account_id) == 12 and self.account_id.isdigit(),
            "account_id must be 12 digits",
        )


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """``spendgate serve``: the metering gateway."""

    host: str = "127.0.0.1"
    port: int = 8080
    db: str = ""  # "" = sqlite file in the user data directory (resolved by the CLI)
    bedrock_endpoint: str = "https://bedrock-runtime.{region}.amazonaws.com"
    control_endpoint: str = "https://bedrock.{region}.amazonaws.com"
    sts_endpoint: str = "https://sts.{region}.amazonaws.com"
    default_region: str = "us-east-1"
    admin_token: str | None = field(default=None, repr=False)
    allow_unauthenticated: bool = False
    inject_request_metadata: bool = True
    auto_prefix: bool = True
    model_aliases: dict[str, str] = field(default_factory=dict)
    cost_center_profiles: dict[str, str] = field(default_factory=dict)
    team_roles: dict[str, str] = field(default_factory=dict)
    aws_profile: str | None = None
    max_body_bytes: int = 25_000_000
    connect_timeout_s: float = 5.0
    first_byte_timeout_s: float = 300.0
    idle_timeout_s: float = 120.0
    journal_path: Path | None = None
    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval_s: float = 0.25
    key_refresh_s: float = 5.0
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    upstream_ca_file: Path | None = None
    log_format: str = "json"
    redis_url: str | None = field(default=None, repr=False)  # budget counters shared by replicas
    redis_prefix: str = "spendgate"
    budgets: list[dict[str, Any]] = field(default_factory=list)  # [[gateway.budgets]] tables
    budget_refresh_s: float = 5.0
    rollup_cache_mb: int = 2560  # memory for in-memory copies of rollup slots (0: none)
    rollup_cache_warm_days: int = 31  # recent days loaded into that cache at start (0: none)
    rollup_cache_save: bool = True  # its copies saved at shutdown, read back at start
    rollup_cache_dir: Path | None = None  # where (None: beside the journal)
    unpriced_input_usd_per_mtok: str = "15"  # conservative rates for models without a price
    unpriced_output_usd_per_mtok: str = "75"

    @property
    def rollup_cache_bytes(self) -> int:
        return self.rollup_cache_mb << 20

    def __post_init__(self) -> None:
        _check(0 < self.port < 65536 or self.port == 0, "port must be between 0 and 65535")
        _check(self.max_body_bytes > 0, "max_body_bytes must be positive")
        _check(
            "{region}" in self.bedrock_endpoint or "://" in self.bedrock_endpoint,
            "bedrock_endpoint must be a URL, optionally with {region}",
        )
        for name in (
            "connect_timeout_s",
            "first_byte_timeout_s",
            "idle_timeout_s",
            "flush_interval_s",
            "key_refresh_s",
            "budget_refresh_s",
        ):
            _check(getattr(self, name) > 0, f"{name} must be positive")
        _check(
            self.queue_size > 0 and self.batch_size > 0,
            "queue_size and batch_size must be positive",
        )
        _check(self.log_format in ("json", "text"), "log_format must be json or text")
        _check(self.rollup_cache_mb >= 0, "rollup_cache_mb must be 0 (off) or more")
        _check(
            0 <= self.rollup_cache_warm_days <= 92,
            "rollup_cache_warm_days must be between 0 (off) and 92",
        )
        for name in ("unpriced_input_usd_per_mtok", "unpriced_output_usd_per_mtok"):
            _check(_positive_decimal(getattr(self, name)), f"{name} must be a positive number")
        _check(
            (self.tls_certfile is None) == (self.tls_keyfile is None),
            "tls_certfile and tls_keyfile go together: give both or neither",
        )
        _check(
            not self.allow_unauthenticated or self.host in ("127.0.0.1", "localhost", "::1"),
            "allow_unauthenticated is only allowed when bound to loopback (host 127.0.0.1)",
        )


SECTIONS: dict[type[Any], str] = {SimSettings: "sim", GatewaySettings: "gateway"}
# environment names that differ from SPENDGATE_<SECTION>_<FIELD>
ENV_ALIASES: dict[tuple[type[Any], str], str] = {
    (GatewaySettings, "admin_token"): "SPENDGATE_ADMIN_TOKEN"
}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def load(
    cls: type[T],
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> T:
    """Build settings of type ``cls``: flags > environment > config file > defaults."""
    section = SECTIONS[cls]
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_from_file(config_file, section, cls))
    values.update(_from_env(env or {}, section, cls))
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    try:
        return cls(**values)
    except TypeError as err:  # an unknown key slipped past the filters
        raise ConfigError(str(err)) from None


def env_name(cls: type[Any], name: str) -> str:
    return ENV_ALIASES.get((cls, name), f"SPENDGATE_{SECTIONS[cls].upper()}_{name.upper()}")


def _from_env(env: Mapping[str, str], section: str, cls: type[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(cls):
        key = env_name(cls, f.name)
        if key in env:
            out[f.name] = _convert(cls, f.name, env[key], source=key)
    return out


def _from_file(path: Path, section: str, cls: type[Any]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [{section}] must be a table")
    known = {f.name: f for f in fields(cls)}
    out: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in known:
            raise ConfigError(f"config file {path}: unknown setting [{section}] {key}")
        out[key] = _convert(cls, key, raw, source=f"{path} [{section}] {key}")
    return out


def _convert(cls: type[Any], name: str, raw: Any, *, source: str) -> Any:
    kind = _base_type(cls, name)
    try:
        if kind is dict:
            return _to_table(raw, source)
        if kind is list:
            return _to_tables(raw, source)
        if kind is bool:
            return _to_bool(raw)
        if kind is Path:
            return Path(str(raw)) if str(raw) else None
        if kind in (int, float):
            if isinstance(raw, bool):
                raise ValueError(raw)
            return kind(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {raw!r} is not a valid {kind.__name__}") from None


def _base_type(cls: type[Any], name: str) -> type[Any]:
    hint = typing.get_type_hints(cls)[name]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    origin = typing.get_origin(hint)
    if origin is not None:
        return origin  # type: ignore[no-any-return]
    return hint if isinstance(hint, type) else str


def _to_table(raw: Any, source: str) -> dict[str, str]:
    """A TOML table, or (from the environment) a JSON object, of strings."""
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigError(f"{source}: must be a table of strings")
    return dict(data)


def _positive_decimal(text: str) -> bool:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return False
    return value.is_finite() and value > 0


def _to_tables(raw: Any, source: str) -> list[dict[str, Any]]:
    """An array of TOML tables, or (from the environment) a JSON array of objects."""
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ConfigError(f"{source}: must be an array of tables")
    return [dict(item) for item in data]


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
