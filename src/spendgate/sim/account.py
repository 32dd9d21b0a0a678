"""The AWS account the simulator pretends to be: who may call it and what it hosts.

Read from the TOML file given by ``--credentials-file``; without one, the documented test
account below is used. Format (every table optional)::

    [[credentials]]                      # SigV4 access keys
    access_key_id = "AKIAEXAMPLE"
    secret_access_key = "..."
    session_token = "..."                # only for temporary credentials
    arn = "arn:aws:iam::123456789012:user/alice"    # identity written to invocation logs

    [[api_keys]]                         # Bedrock API keys (Authorization: Bearer ...)
    token = "..."
    arn = "arn:aws:iam::123456789012:user/BedrockAPIKey-alice"

    [[application_profiles]]             # application inference profiles it answers for
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123def456"
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spendgate.bedrock.sigv4 import Credentials, SigningKeys
from spendgate.errors import ConfigError

DEFAULT_ACCESS_KEY_ID = "AKIASPENDGATESIM0001"
DEFAULT_SECRET_ACCESS_KEY = "spendgate-sim-secret-access-key"  # documented test key
DEFAULT_API_KEY = "sim-bedrock-api-key"


@dataclass(frozen=True, slots=True)
class Principal:
    arn: str
    credentials: Credentials | None = None


@dataclass(slots=True)
class Account:
    account_id: str
    access_keys: dict[str, Principal] = field(default_factory=dict)
    api_keys: dict[str, Principal] = field(default_factory=dict)
    app_profiles: dict[str, str] = field(default_factory=dict)  # ARN -> model or profile id
    signing_keys: SigningKeys = field(default_factory=SigningKeys)  # derived-key cache

    def credentials_for(self, access_key_id: str) -> Credentials | None:
        principal = self.access_keys.get(access_key_id)
        return principal.credentials if principal else None


def default_account(account_id: str) -> Account:
    creds = Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
    arn = f"arn:aws:iam::{account_id}:user/sim-user"
    app = f"arn:aws:bedrock:{{region}}:{account_id}:application-inference-profile/"
    return Account(
        account_id,
        access_keys={creds.access_key_id: Principal(arn, creds)},
        api_keys={DEFAULT_API_KEY: Principal(f"arn:aws:iam::{account_id}:user/BedrockAPIKey-sim")},
        app_profiles={
            app.format(region="us-east-1") + "simclaude001": (
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
            ),
            app.format(region="us-east-1") + "simnovalite1": "amazon.nova-lite-v1:0",
        },
    )


def load_account(path: Path | None, account_id: str) -> Account:
    if path is None:
        return default_account(account_id)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"credentials file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"credentials file {path} is unreadable: {err}") from None
    return _parse(data, account_id, str(path))


def _parse(data: dict[str, Any], account_id: str, where: str) -> Account:
    account = Account(account_id)
    for i, row in enumerate(_rows(data, "credentials", where)):
        key = _text(row, "access_key_id", where, i)
        creds = Credentials(
            key, _text(row, "secret_access_key", where, i), row.get("session_token") or None
        )
        arn = row.get("arn") or f"arn:aws:iam::{account_id}:user/{key}"
        account.access_keys[key] = Principal(str(arn), creds)
    for i, row in enumerate(_rows(data, "api_keys", where)):
        token = _text(row, "token", where, i)
        arn = row.get("arn") or f"arn:aws:iam::{account_id}:user/BedrockAPIKey-{i + 1}"
        account.api_keys[token] = Principal(str(arn))
    for i, row in enumerate(_rows(data, "application_profiles", where)):
        account.app_profiles[_text(row, "arn", where, i)] = _text(row, "model", where, i)
    return account


def _rows(data: dict[str, Any], name: str, where: str) -> list[dict[str, Any]]:
    rows = data.get(name, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(f"{where}: [[{name}]] must be an array of tables")
    return rows


def _text(row: dict[str, Any], key: str, where: str, index: int) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: entry {index + 1} needs a non-empty string '{key}'")
    return value
