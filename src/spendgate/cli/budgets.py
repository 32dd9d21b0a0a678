"""``spendgate budgets``: create, list, show, update and delete budgets in the gateway's store.

The same operations as the admin API (``spendgate.gateway.budget_routes``), straight on the
database: ``--db`` defaults to the store ``spendgate serve`` uses. A running gateway sees a
change within ``budget_refresh_s``; the admin API applies it at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from spendgate.budgets.model import Action, Budget, Metric, Window
from spendgate.budgets.status import BudgetStatus, amount_text, status_to_dict
from spendgate.cli.options import (
    gateway_settings,
    gateway_store,
    json_option,
    print_json,
    print_table,
    store_at,
    store_options,
)
from spendgate.errors import ConfigError
from spendgate.gateway.budget_routes import budget_json, merge_budget, new_budget
from spendgate.gateway.budget_sync import config_budgets, offline_status
from spendgate.store.budgets import (
    create_budget,
    delete_budget,
    get_budget,
    list_budgets,
    update_budget,
)

F = TypeVar("F", bound=Callable[..., Any])
STATUS_HEADER = (
    "ID",
    "NAME",
    "SPENT",
    "RESERVED",
    "REMAINING",
    "LIMIT",
    "USED",
    "RESETS AT",
    "PROJECTED",
)
HEADER = ("ID", "NAME", "SCOPE", "METRIC", "WINDOW", "LIMIT", "ACTION", "ALERTS AT", "ENABLED")


def _choice(kind: type[Metric] | type[Window] | type[Action]) -> click.Choice[str]:
    return click.Choice([member.value for member in kind])


def _definition(*, create: bool) -> Callable[[F], F]:
    """The options that define a budget: required ones on ``create``, all optional on
    ``update``."""

    needed = " (required)" if create else ""

    def decorate(command: F) -> F:
        options = [
            click.option("--name", required=create, help="A name people recognise (unique)."),
            click.option(
                "--scope",
                help="field=value pairs, comma-separated, all must match; a value ending in * "
                'is a prefix ("department=sales,model=anthropic.*"; "" = every call).',
            ),
            # a missing choice is left to the model: click's message for it spans lines
            click.option("--metric", type=_choice(Metric), help=f"What counts{needed}."),
            click.option("--window", type=_choice(Window), help=f"Over when{needed}."),
            click.option(
                "--limit", required=create, help="Dollars for cost_usd, else a whole count."
            ),
            click.option(
                "--action",
                type=_choice(Action),
                help="What crossing the limit does (default block).",
            ),
            click.option("--downgrade-to", help="The cheaper model of action downgrade."),
            click.option(
                "--thresholds", help='Alert percentages, e.g. 50,80,100 (the default; "" = none).'
            ),
            click.option("--timezone", help="IANA time zone of calendar windows (default UTC)."),
        ]
        if create:
            options.append(click.option("--disabled", is_flag=True, help="Store it switched off."))
        else:
            options.append(
                click.option(
                    "--enabled/--disabled", default=None, help="Switch the budget on or off."
                )
            )
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _unknown(budget_id: str) -> ConfigError:
    return ConfigError(f"no budget with id {budget_id!r}; 'spendgate budgets list' shows them")


def _describe(budget: Budget) -> str:
    return f"budget {budget.id} ({budget.name})"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "(every call)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@click.group()
def budgets() -> None:
    """Manage budgets and rate limits (cost, tokens or requests over a window)."""


@budgets.command()
@_definition(create=True)
@json_option
@store_options
def create(
    *, disabled: bool, as_json: bool, db: str | None, config_file: Path | None, **fields: Any
) -> None:
    """Create a budget."""
    doc = {name: value for name, value in fields.items() if value is not None}
    budget = new_budget({**doc, "enabled": not disabled})
    with gateway_store(db, config_file) as store:
        stored = create_budget(store, budget)
    if as_json:
        print_json(budget_json(stored))
    else:
        click.echo(f"Created {_describe(stored)}.")


@budgets.command(name="list")
@json_option
@store_options
def list_all(as_json: bool, db: str | None, config_file: Path | None) -> None:
    """List every budget, oldest first."""
    with gateway_store(db, config_file) as store:
        found = list_budgets(store)
    if as_json:
        print_json([budget_json(b) for b in found])
        return
    if not found:
        click.echo("No budgets yet: create one with 'spendgate budgets create'.", err=True)
        return
    print_table([list(HEADER), *(_row(b) for b in found)])


def _row(budget: Budget) -> list[str]:
    action = budget.action.value
    if budget.downgrade_to:
        action = f"{action} to {budget.downgrade_to}"
    return [
        budget.id,
        budget.name,
        budget.describe_scope(),
        budget.metric.value,
        budget.window.value
        if budget.window.rolling
        else f"{budget.window.value} {budget.timezone}",
        amount_text(budget, budget.limit),
        action,
        ",".join(f"{t}%" for t in budget.thresholds) or "-",
        _cell(budget.enabled),
    ]


@budgets.command()
@click.argument("budget_id")
@json_option
@store_options
def show(budget_id: str, as_json: bool, db: str | None, config_file: Path | None) -> None:
    """Show budget BUDGET_ID."""
    with gateway_store(db, config_file) as store:
        budget = get_budget(store, budget_id)
    if budget is None:
        raise _unknown(budget_id)
    doc = budget_json(budget)
    if as_json:
        print_json(doc)
        return
    print_table([[f"{name}:", _cell(value)] for name, value in doc.items()])


@budgets.command()
@click.argument("budget_id")
@_definition(create=False)
@json_option
@store_options
def update(
    budget_id: str, *, as_json: bool, db: str | None, config_file: Path | None, **fields: Any
) -> None:
    """Change some fields of budget BUDGET_ID (the others stay)."""
    patch = {name: value for name, value in fields.items() if value is not None}
    if not patch:
        raise ConfigError("nothing to change: give at least one option, such as --limit")
    with gateway_store(db, config_file) as store:
        stored = get_budget(store, budget_id)
        if stored is None:
            raise _unknown(budget_id)
        if not update_budget(store, merge_budget(stored, patch)):
            raise _unknown(budget_id)
        updated = get_budget(store, budget_id)
    if updated is None:
        raise _unknown(budget_id)
    if as_json:
        print_json(budget_json(updated))
    else:
        click.echo(f"Updated {_describe(updated)}.")


@budgets.command()
@click.argument("budget_id")
@json_option
@store_options
def delete(budget_id: str, as_json: bool, db: str | None, config_file: Path | None) -> None:
    """Delete budget BUDGET_ID (its past spend stays in the events)."""
    with gateway_store(db, config_file) as store:
        budget = get_budget(store, budget_id)
        if budget is None or not delete_budget(store, budget_id):
            raise _unknown(budget_id)
    if as_json:
        print_json(budget_json(budget))
    else:
        click.echo(f"Deleted {_describe(budget)}.")


@budgets.command()
@click.argument("budget_id", required=False)
@click.option(
    "--redis",
    "redis_url",
    help="redis://host:6379/0: read the counters the gateways share (default: the redis_url "
    "setting; without one, spend comes from the stored events).",
)
@json_option
@store_options
def status(
    budget_id: str | None,
    redis_url: str | None,
    as_json: bool,
    db: str | None,
    config_file: Path | None,
) -> None:
    """Spent, reserved, remaining, reset time and projection of every budget (or BUDGET_ID)."""
    settings = gateway_settings({"db": db, "redis_url": redis_url}, config_file)
    now = datetime.now(UTC)
    with store_at(settings.db) as store:
        found = {b.id: b for b in [*config_budgets(settings.budgets), *list_budgets(store)]}
        chosen = list(found.values()) if budget_id is None else [found.get(budget_id)]
        if None in chosen:
            raise _unknown(str(budget_id))
        budgets_now = [b for b in chosen if b is not None]
        statuses = asyncio.run(offline_status(store, budgets_now, now, settings=settings))
    if as_json:
        docs = [status_to_dict(s) for s in statuses]
        print_json(docs[0] if budget_id else docs)
    elif not statuses:
        click.echo("No budgets yet: create one with 'spendgate budgets create'.", err=True)
    else:
        print_table([list(STATUS_HEADER), *(_status_row(s) for s in statuses)])


def _status_row(status: BudgetStatus) -> list[str]:
    budget = status.budget
    return [
        budget.id,
        budget.name,
        amount_text(budget, status.spent),
        amount_text(budget, status.reserved),
        amount_text(budget, status.remaining),
        amount_text(budget, budget.limit),
        f"{status.percent}%",
        status.resets_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        amount_text(budget, status.projected),
    ]
