"""``spendgate keys``: create, list, revoke and rotate API keys in the gateway's store.

The same operations as the admin API (``spendgate.gateway.admin``), straight on the database:
``--db`` defaults to the SQLite file ``spendgate serve`` uses. A running gateway sees a change
within ``key_refresh_s`` (5 s by default); the admin API applies it at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from spendgate.cli.options import (
    gateway_store,
    json_option,
    print_json,
    print_table,
    store_options,
)
from spendgate.errors import ConfigError
from spendgate.gateway.admin import issue_key, key_json, key_spec, revoke_key, rotate_key

ONCE = "This is the only time the key is shown: store it now."
# CLI option -> key default (``KeyRecord.defaults``)
DEFAULT_OPTIONS = {
    "department": "department",
    "project": "project",
    "agent": "agent",
    "user": "user_id",
    "application": "application",
    "environment": "environment",
    "cost_center": "cost_center",
}
COLUMNS = (
    "id",
    "name",
    "prefix",
    "status",
    "created_at",
    "expires_at",
    "allowed_models",
    "defaults",
    "role_arn",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _unknown(key_id: str) -> ConfigError:
    return ConfigError(f"no API key with id {key_id!r}; 'spendgate keys list' shows them")


@click.group()
def keys() -> None:
    """Manage the gateway's API keys (stored hashed; a key is shown once)."""


@keys.command()
@click.option("--name", required=True, help="A name people recognise (team, app, person).")
@click.option("--expires", help="Expiry: ISO-8601 (2026-01-31T00:00:00Z) or a duration (90d).")
@click.option(
    "--model",
    "models",
    multiple=True,
    help="Allow only this model id or prefix* (repeat; default: any model).",
)
@click.option("--department", help="Default department for calls made with the key.")
@click.option("--project", help="Default project (team).")
@click.option("--agent", help="Default agent.")
@click.option("--user", help="Default user.")
@click.option("--application", help="Default application.")
@click.option("--environment", help="Default environment.")
@click.option("--cost-center", help="Default cost center.")
@click.option("--role-arn", help="IAM role to assume for calls made with the key.")
@click.option("--external-id", help="External id for assuming --role-arn.")
@json_option
@store_options
def create(
    *,
    name: str,
    expires: str | None,
    models: tuple[str, ...],
    role_arn: str | None,
    external_id: str | None,
    as_json: bool,
    db: str | None,
    config_file: Path | None,
    **defaults: str | None,
) -> None:
    """Create a key and print it (once)."""
    now = _now()
    doc = {
        "name": name,
        "expires_at": expires,
        "allowed_models": list(models) or None,
        "defaults": {DEFAULT_OPTIONS[k]: v for k, v in defaults.items() if v is not None},
        "role_arn": role_arn,
        "external_id": external_id,
    }
    spec = key_spec(doc, now)
    with gateway_store(db, config_file) as store:
        record, key = issue_key(store, spec, now)
    if as_json:
        print_json({**key_json(record, now), "key": key})
        return
    click.echo(f"Created API key {record.id} ({record.name}). {ONCE}", err=True)
    click.echo(key)


@keys.command(name="list")
@json_option
@store_options
def list_keys(as_json: bool, db: str | None, config_file: Path | None) -> None:
    """List keys (never the keys themselves)."""
    with gateway_store(db, config_file) as store:
        records = store.list_keys()
    now = _now()
    docs = [key_json(r, now) for r in records]
    if as_json:
        print_json(docs)
        return
    if not docs:
        click.echo(
            "No API keys yet: create one with 'spendgate keys create --name NAME'.", err=True
        )
        return
    print_table([[c.upper() for c in COLUMNS], *([_cell(d[c]) for c in COLUMNS] for d in docs)])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


@keys.command()
@click.argument("key_id")
@json_option
@store_options
def revoke(key_id: str, as_json: bool, db: str | None, config_file: Path | None) -> None:
    """Revoke key KEY_ID: it stops working."""
    now = _now()
    with gateway_store(db, config_file) as store:
        result = revoke_key(store, key_id, now)
    if result is None:
        raise _unknown(key_id)
    record, changed = result
    if as_json:
        print_json(key_json(record, now))
    elif changed:
        click.echo(f"Revoked API key {record.id} ({record.name}).")
    else:
        click.echo(f"API key {record.id} ({record.name}) was already revoked.")


@keys.command()
@click.argument("key_id")
@json_option
@store_options
def rotate(key_id: str, as_json: bool, db: str | None, config_file: Path | None) -> None:
    """Give key KEY_ID a new secret and print it (once); the old one stops working."""
    with gateway_store(db, config_file) as store:
        rotated = rotate_key(store, key_id)
    if rotated is None:
        raise _unknown(key_id)
    record, key = rotated
    if as_json:
        print_json({**key_json(record, _now()), "key": key})
        return
    click.echo(f"Rotated API key {record.id} ({record.name}). {ONCE}", err=True)
    click.echo(key)
