"""Command-line options more than one command takes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

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
