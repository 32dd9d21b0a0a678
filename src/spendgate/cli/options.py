"""What more than one command shares: options, the gateway's settings and store, and
starting a server."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from spendgate.settings import GatewaySettings, load
from spendgate.store.db import Store, open_store
from spendgate.store.engine import masked, parse_url
from spendgate.store.writer import describe

F = TypeVar("F", bound=Callable[..., Any])
_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


def tls_options(function: F) -> F:
    """``--tls-certfile`` / ``--tls-keyfile``: serve HTTPS."""
    function = click.option("--tls-keyfile", type=_FILE, help="The private key of --tls-certfile.")(
        function
    )
    return click.option(
        "--tls-certfile",
        type=_FILE,
        help="Serve HTTPS with this PEM certificate (boto3 sends API keys only over HTTPS).",
    )(function)


def config_option(section: str) -> Callable[[F], F]:
    """``--config FILE``: a TOML file whose ``[section]`` table sets any setting."""
    return click.option(
        "--config",
        "config_file",
        type=_FILE,
        help=f"TOML config file; its [{section}] table sets any setting.",
    )


def store_options(command: F) -> F:
    """``--db URL`` and ``--config FILE``: the store of ``spendgate serve`` unless told."""
    command = config_option("gateway")(command)
    return click.option(
        "--db", help="sqlite:///path or postgresql://... (default: the store of spendgate serve)."
    )(command)


def json_option(command: F) -> F:
    """``--json``: print JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Rows of cells, the first one the header, in aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def data_dir(env: dict[str, str] | os._Environ[str]) -> Path:
    """The user data directory: $SPENDGATE_HOME, else $XDG_DATA_HOME/spendgate, else
    ~/.local/share/spendgate."""
    if env.get("SPENDGATE_HOME"):
        return Path(env["SPENDGATE_HOME"])
    base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else Path.home() / ".local/share"
    return base / "spendgate"


def gateway_settings(flags: dict[str, object], config_file: Path | None) -> GatewaySettings:
    """The gateway's settings (flags, environment, config file); ``db`` defaults to
    ``spendgate.db`` in the data directory."""
    settings = load(GatewaySettings, flags=flags, env=os.environ, config_file=config_file)
    if not settings.db:
        folder = data_dir(os.environ)
        folder.mkdir(parents=True, exist_ok=True)
        settings = replace(settings, db=f"sqlite:///{folder / 'spendgate.db'}")
    return settings


def gateway_store(
    db: str | None, config_file: Path | None
) -> contextlib.AbstractContextManager[Store]:
    """The gateway's store (``--db``, else its settings), closed afterwards."""
    return store_at(gateway_settings({"db": db}, config_file).db)


@contextlib.contextmanager
def store_at(url: str) -> Iterator[Store]:
    """The store at ``url``, closed afterwards; a database that cannot be opened or fails is a
    one-line error. Without the rollup cache: a command asks a question or two and exits, and
    loading slots into memory only pays off from the second question over them."""
    try:
        store = open_store(url, cache_bytes=0)
    except (SQLAlchemyError, OSError) as err:
        shown = masked(parse_url(url))
        raise click.ClickException(f"cannot open the store {shown}: {describe(err)}") from None
    try:
        yield store
    except SQLAlchemyError as err:
        raise click.ClickException(f"the store {store.url} failed: {describe(err)}") from None
    finally:
        store.close()


def run_server(
    app: Any,
    *,
    host: str,
    port: int,
    certfile: Path | None,
    keyfile: Path | None,
    graceful_s: int | None = None,
) -> None:
    """Serve ``app`` with uvicorn (uvloop and httptools when installed); HTTPS with a cert."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        timeout_graceful_shutdown=graceful_s,
    )
