"""The ``spendgate`` command group and its error handling.

Every command is a thin function over library code. A ``SpendgateError`` becomes one line on
stderr and a non-zero exit (2 for bad arguments or configuration, 1 for everything else); a
traceback never reaches the user.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from spendgate import __version__
from spendgate.cli.budgets import budgets
from spendgate.cli.demo import demo
from spendgate.cli.export import export
from spendgate.cli.keys import keys
from spendgate.cli.quote import quote
from spendgate.cli.report import report
from spendgate.cli.serve import serve
from spendgate.cli.sim import sim
from spendgate.errors import ConfigError, DataError, SpendgateError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, DataError) as err:
            raise click.UsageError(str(err), ctx) from None
        except SpendgateError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spendgate")
def cli() -> None:
    """Self-hosted cost control for Amazon Bedrock."""


cli.add_command(sim)
cli.add_command(quote)
cli.add_command(serve)
cli.add_command(keys)
cli.add_command(budgets)
cli.add_command(report)
cli.add_command(export)
cli.add_command(demo)


def main() -> None:
    """Entry point: usage errors are one line (``Error: ...``) and exit code 2."""
    try:
        cli.main(prog_name="spendgate", standalone_mode=False)
    except click.UsageError as err:
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx else ""
        click.echo(f"Error: {err.format_message()}{hint}", err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        click.echo(f"Error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
