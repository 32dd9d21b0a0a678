"""``spendgate keys``: create, list, revoke and rotate API keys in the gateway's store.

The same operations as the admin API (``spendgate.gateway.admin``), straight on the database:
``--db`` defaults to the SQLite file ``spendgate serve`` uses. A running gateway sees a change
within ``key_refresh_s`` (5 s by default); the admin API applies it at once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from spendgate.cli.serve import gateway_settings
from spendgate.errors import ConfigError
from spendgate.gateway.admin import issue_key, key_json, key_spec, revoke_key, rotate_key
from spendgate.store.db import Store, open_store
from spendgate.store.writer import describe

F = TypeVar("F", bound=Callable[..., Any])
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


def _store_options(command: F) -> F:
    command = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="TOML config file; its [gateway] db setting names the store.",
    )(command)
    return click.option(
        "--db", help="sqlite:///path or postgresql://... (default: the store of spendgate serve)."
    )(command)


def _json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


@contextlib.contextmanager
def _store(db: str | None, config_file: Path | None) -> Iterator[Store]:
    url = gateway_settings({"db": db}, config_file).db
    try:
        store = open_store(url)
    except (SQLAlchemyError, OSError) as err:
        raise click.ClickException(f"cannot open the store {url}: {describe(err)}") from None
    try:
        yield store
    except SQLAlchemyError as err:
        raise click.ClickException(f"the store {store.url} failed: {describe(err)}") from None
    finally:
        store.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _unknown(key_id: str) -> ConfigError:
    return ConfigError(f"no API key with id {key_id!r}; 'spendgate keys list' shows them")


def _print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


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
@_json_option
@_store_options
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
    with _store(db, config_file) as store:
        record, key = issue_key(store, spec, now)
    if as_json:
        _print_json({**key_json(record, now), "key": key})
        return
    click.echo(f"Created API key {record.id} ({record.name}). {ONCE}", err=True)
    click.echo(key)


@keys.command(name="list")
@_json_option
@_store_options
def list_keys(as_json: bool, db: str | None, config_file: Path | None) -> None:
    """List keys (never the keys themselves)."""
    with _store(db, config_file) as store:
        records = store.list_keys()
    now = _now()
    docs = [key_json(r, now) for r in records]
    if as_json:
        _print_json(docs)
        return
    if not docs:
        click.echo(
            "No API keys yet: create one with 'spendgate keys create --name NAME'.", err=True
        )
        return
    rows = [[c.upper() for c in COLUMNS], *([_cell(d[c]) for c in COLUMNS] for d in docs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


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
@_json_option
@_store_options
def revoke(key_id: str, as_json: bool, db: str | None, config_file: Path | None) -> None:
    """Revoke key KEY_ID: it stops working."""
    now = _now()
    with _store(db, config_file) as store:
        result = revoke_key(store, key_id, now)
    if result is None:
        raise _unknown(key_id)
    record, changed = result
    if as_json:
        _print_json(key_json(record, now))
    elif changed:
        click.echo(f"Revoked API key {record.id} ({record.name}).")
    else:
        click.echo(f"API key {record.id} ({record.name}) was already revoked.")


@keys.command()
@click.argument("key_id")
@_json_option
@_store_options
def rotate(key_id: str, as_json: bool, db: str | None, config_file: Path | None) -> None:
    """Give key KEY_ID a new secret and print it (once); the old one stops working."""
    with _store(db, config_file) as store:
        rotated = rotate_key(store, key_id)
    if rotated is None:
        raise _unknown(key_id)
    record, key = rotated
    if as_json:
        _print_json({**key_json(record, _now()), "key": key})
        return
    click.echo(f"Rotated API key {record.id} ({record.name}). {ONCE}", err=True)
    click.echo(key)
