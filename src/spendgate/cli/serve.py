"""``spendgate serve``: run the metering gateway with the analytics API (``spendgate.web.app``)."""

from __future__ import annotations

from pathlib import Path

import click

from spendgate.cli.options import config_option, gateway_settings, run_server, tls_options
from spendgate.web.app import create_app


@click.command()
@click.option("--host", help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option("--db", help="sqlite:///path or postgresql://... (default: a SQLite file).")
@click.option(
    "--bedrock-endpoint",
    help="Upstream URL template (default https://bedrock-runtime.{region}.amazonaws.com).",
)
@tls_options
@config_option("gateway")
def serve(config_file: Path | None, **flags: object) -> None:
    """Run the gateway: meter, attribute and forward Bedrock runtime calls."""
    settings = gateway_settings(flags, config_file)
    scheme = "https" if settings.tls_certfile else "http"
    click.echo(
        f"spendgate gateway at {scheme}://{settings.host}:{settings.port} → "
        f"{settings.bedrock_endpoint} (store {settings.db.split('@')[-1]})",
        err=True,
    )
    run_server(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        certfile=settings.tls_certfile,
        keyfile=settings.tls_keyfile,
        graceful_s=30,
    )
