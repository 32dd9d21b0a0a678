"""What more than one command shares: options, and starting a server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn

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
