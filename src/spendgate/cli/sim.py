"""``spendgate sim``: run the Bedrock runtime simulator."""

from __future__ import annotations

import os
from pathlib import Path

import click

from spendgate.cli.options import config_option, run_server, tls_options
from spendgate.settings import SimSettings, load
from spendgate.sim.app import create_app


@click.command()
@click.option("--host", help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8787).")
@click.option("--latency-ms", type=float, help="Added before every answer (default 0).")
@click.option("--ttft-ms", type=float, help="Streams: extra wait before the first token.")
@click.option("--tokens-per-second", type=float, help="Generation speed; 0 = instant.")
@click.option("--error-rate", type=float, help="Fraction of calls failed at random (0-1).")
@click.option(
    "--invocation-log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write AWS-format model-invocation logs under this folder.",
)
@click.option(
    "--credentials-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TOML file of access keys, API keys and application profiles (docs/sim.md).",
)
@tls_options
@config_option("sim")
def sim(config_file: Path | None, **flags: object) -> None:
    """Run a Bedrock runtime simulator (SigV4, streams, errors) on a local port."""
    settings = load(SimSettings, flags=flags, env=os.environ, config_file=config_file)
    scheme = "https" if settings.tls_certfile else "http"
    click.echo(
        f"spendgate sim: Bedrock runtime at {scheme}://{settings.host}:{settings.port} "
        f"(account {settings.account_id}; see docs/sim.md for test credentials)",
        err=True,
    )
    run_server(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        certfile=settings.tls_certfile,
        keyfile=settings.tls_keyfile,
    )
