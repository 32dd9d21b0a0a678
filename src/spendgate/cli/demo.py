"""``spendgate demo``: the simulator, the gateway and its dashboard in one process, with traffic.

The Bedrock simulator and the gateway (SQLite under ``--dir``) serve from threads; the main
thread creates one API key per demo persona through the admin API, drives their traffic
(``spendgate.sim.demo``), prints where the dashboard is, and waits for Ctrl-C (or SIGTERM, or
``--duration``). Then it stops the traffic, lets the gateway drain its event queue, and exits 0.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click
import httpx
import uvicorn

from spendgate.bedrock.sigv4 import Credentials
from spendgate.errors import ConfigError, SpendgateError
from spendgate.settings import GatewaySettings, SimSettings
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY
from spendgate.sim.app import create_app as create_sim
from spendgate.sim.demo import Traffic, create_budgets, create_keys, personas, wait_until
from spendgate.web.app import create_app as create_web

PAUSE_S = 0.25  # per worker between calls: about a dozen calls a second in all
START_TIMEOUT_S = 15.0


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=8080, show_default=True, help="The gateway's port.")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("spendgate-demo"),
    show_default=True,
    help="Folder for the demo's SQLite database (kept between runs).",
)
@click.option(
    "--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds."
)
@click.option(
    "--requests",
    "limit",
    type=click.IntRange(min=0),
    help="Send this many calls, then keep serving the dashboard.",
)
def demo(host: str, port: int, folder: Path, duration: float | None, limit: int | None) -> None:
    """Run the simulator, the gateway and the dashboard with realistic demo traffic."""
    token = os.environ.get("SPENDGATE_ADMIN_TOKEN") or secrets.token_urlsafe(18)
    folder.mkdir(parents=True, exist_ok=True)
    _check_port(host, port)
    stop = threading.Event()
    with _signals(stop), _servers(host, port, folder, token) as base:
        keys = _keys(base, token)
        traffic = Traffic(base, keys, pause_s=PAUSE_S)
        driver = threading.Thread(target=traffic.run, args=(stop, limit), daemon=True)
        driver.start()
        _banner(base, token, folder)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break
        stop.set()
        driver.join(timeout=30)
        click.echo(
            f"\nStopping: {traffic.tally.sent} calls sent ({traffic.tally.failed} failed); "
            f"the data stays in {folder}/",
            err=True,
        )


def _banner(base: str, token: str, folder: Path) -> None:
    click.echo(
        f"\nspendgate demo is running.\n\n"
        f"  Dashboard:    {base}/dashboard\n"
        f"  Admin token:  {token}\n"
        f"  Gateway:      {base}  (Bedrock runtime API; API docs at {base}/api/docs)\n"
        f"  Database:     {folder / 'spendgate.db'}\n\n"
        "Seven demo agents are sending traffic through the gateway. Open the dashboard and sign\n"
        "in with the admin token; numbers appear within seconds. Press Ctrl-C to stop.\n"
    )


def _keys(base: str, token: str) -> dict[str, str]:
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            keys = create_keys(client, token, personas())
            create_budgets(client, token)
            return keys
    except httpx.HTTPError as err:
        raise SpendgateError(f"could not create the demo keys and budgets: {err}") from None


@contextmanager
def _servers(host: str, port: int, folder: Path, token: str) -> Iterator[str]:
    sim_port = _free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    settings = GatewaySettings(
        host=host,
        port=port,
        db=f"sqlite:///{(folder / 'spendgate.db').resolve()}",
        bedrock_endpoint=sim_url,
        control_endpoint=sim_url,
        sts_endpoint=sim_url,
        admin_token=token,
        log_format="text",
        journal_path=folder / "spendgate-journal.jsonl",
    )
    creds = Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
    gateway_app = create_web(settings, credentials=lambda: creds)
    logging.getLogger("spendgate").setLevel(logging.WARNING)
    sim = _server(create_sim(SimSettings(port=sim_port, log_requests=False)), "127.0.0.1", sim_port)
    running: list[tuple[uvicorn.Server, threading.Thread]] = []
    try:
        for server in (sim, _server(gateway_app, host, port)):
            running.append((server, _start(server)))
        yield f"http://{_display(host)}:{port}"
    finally:
        for server, thread in reversed(running):  # the gateway first: it drains its queue
            server.should_exit = True
            thread.join(timeout=30)


def _server(app: Any, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    return uvicorn.Server(config)


def _start(server: uvicorn.Server) -> threading.Thread:
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not wait_until(lambda: server.started or not thread.is_alive(), START_TIMEOUT_S):
        raise SpendgateError("a demo server did not start in time")
    if not server.started:
        raise SpendgateError(f"a demo server could not start on port {server.config.port}")
    return thread


def _check_port(host: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({err.strerror}): pick another port with --port"
            ) from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _display(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` instead of raising, so shutdown is always orderly."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
