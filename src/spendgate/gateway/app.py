"""``create_app``: the gateway's composition root. Everything is built here, nothing at import.

Runtime calls (``/model/...`` and ``/bedrock/model/...``) skip Starlette's router and go straight
to the relay; operations and admin routes go through Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from spendgate.analytics import rehearse
from spendgate.bedrock.sigv4 import Credentials
from spendgate.events import Event
from spendgate.gateway import logs, relay
from spendgate.gateway.admin import admin_routes
from spendgate.gateway.budget_routes import budget_routes
from spendgate.gateway.budget_sync import BudgetSync, config_budgets, counter_for
from spendgate.gateway.credentials import RoleCache, default_chain
from spendgate.gateway.guard import Guard
from spendgate.gateway.identity import Identities
from spendgate.gateway.keys import KeyRing
from spendgate.gateway.metrics import Metrics, Summary, metrics_route
from spendgate.gateway.profiles import ProfileResolver
from spendgate.gateway.proxy import Inbound, Proxy
from spendgate.gateway.sentry import Sentry, sentry_route
from spendgate.gateway.upstream import Timeouts, Upstream
from spendgate.settings import GatewaySettings
from spendgate.store.db import Store, open_store
from spendgate.store.writer import EventWriter

log = logging.getLogger(__name__)
RUNTIME_PREFIXES = ("/model/", "/bedrock/model/")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Gateway:
    """The live parts, kept on ``app.state.gateway`` for routes and tests."""

    settings: GatewaySettings
    store: Store
    writer: EventWriter
    upstream: Upstream
    keys: KeyRing
    proxy: Proxy
    profiles: ProfileResolver


def create_app(
    settings: GatewaySettings,
    *,
    store: Store | None = None,
    upstream: Upstream | None = None,
    credentials: Callable[[], Credentials | None] | None = None,
    clock: Callable[[], datetime] = utc_now,
    api_routes: Sequence[BaseRoute] = (),
    extra_routes: Sequence[BaseRoute] = (),
) -> ASGIApp:
    """The gateway. ``api_routes`` join the admin mount (``/api/v1``, admin token required);
    ``extra_routes`` are served at the top level (the web layer composes both: web/app.py)."""
    logs.configure(settings.log_format)
    store = store or open_store(settings.db, cache_bytes=settings.rollup_cache_bytes)
    upstream = upstream or Upstream(timeouts=_timeouts(settings), ssl_context=_ssl(settings))
    base = credentials or default_chain(settings.aws_profile)
    writer = EventWriter(
        store,
        journal_path=_journal(settings),
        max_queue=settings.queue_size,
        batch_size=settings.batch_size,
        interval_s=settings.flush_interval_s,
    )
    keys = KeyRing(store.list_keys, store.get_key_by_hash, refresh_s=settings.key_refresh_s)
    roles = RoleCache(
        upstream,
        base=base,
        sts_endpoint=settings.sts_endpoint,
        region=settings.default_region,
        clock=clock,
    )
    profiles = ProfileResolver(
        upstream, endpoint=settings.control_endpoint, credentials=base, clock=clock
    )
    identities = Identities(roles, base, team_roles=settings.team_roles)
    metrics = Metrics(writer_stats=lambda: writer.stats, upstream_stats=lambda: upstream.stats)
    summary = Summary(metrics)
    sentry = Sentry()
    metrics.registry.register(sentry)
    guard = Guard(counter_for(settings), settings, resolver=profiles.known)
    budgets = BudgetSync(
        guard,
        store,
        configured=config_budgets(settings.budgets),
        refresh_s=settings.budget_refresh_s,
        clock=clock,
    )

    def record(event: Event) -> None:
        writer.record(event)
        metrics.observe(event)
        sentry.observe(event)

    proxy = Proxy(
        settings,
        keys=keys,
        identity=identities,
        record=record,
        resolver=profiles.known,
        profiles=profiles.resolve,
        clock=clock,
        guard=guard,
    )
    gateway = Gateway(settings, store, writer, upstream, keys, proxy, profiles)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await writer.start()
        await keys.start()
        await budgets.start()
        await summary.start()
        # a worker thread reads the last process's copies back, loads the recent slots
        # (only those changed since, after a restart), then asks a question of each kind
        snapshots = _snapshots(settings, store)
        if snapshots is not None:
            store.rollup_cache.restore(snapshots)
        now, days = clock(), settings.rollup_cache_warm_days
        store.rollup_cache.warm(now, days, then=partial(rehearse, store, now, days))
        try:
            yield
        finally:
            await summary.stop()
            await budgets.stop()
            await keys.stop()
            await writer.stop()  # drains every queued event (or journals it)
            await upstream.aclose()
            if snapshots is not None:
                await asyncio.to_thread(_save_copies, store, snapshots)

    budget_api = budget_routes(
        store,
        token=settings.admin_token,
        clock=clock,
        changed=budgets.load,
        status=lambda budget: guard.status(budget, clock()),
    )
    admin = admin_routes(
        store,
        token=settings.admin_token,
        clock=clock,
        keys_changed=keys.load,
        extra_routes=[*budget_api, sentry_route(sentry), *api_routes],
    )
    routes = [*_ops_routes(gateway), metrics_route(metrics), admin, *extra_routes]
    app = Starlette(routes=routes, middleware=[Middleware(logs.RequestId)], lifespan=lifespan)
    app.state.gateway = gateway
    app.state.metrics = metrics
    return _Runtime(app, gateway)


class _Runtime:
    def __init__(self, app: Starlette, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(RUNTIME_PREFIXES):
            g = self.gateway
            response = await relay.handle(g.proxy, g.upstream, Inbound.from_scope(scope, receive))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _ops_routes(gateway: Gateway) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        stats = gateway.writer.stats
        ready = stats.queued < gateway.settings.queue_size
        return JSONResponse(
            {"status": "ready" if ready else "busy", "queued": stats.queued},
            status_code=200 if ready else 503,
        )

    return [Route("/healthz", healthz), Route("/readyz", readyz)]


def _timeouts(settings: GatewaySettings) -> Timeouts:
    return Timeouts(
        connect=settings.connect_timeout_s,
        first_byte=settings.first_byte_timeout_s,
        idle=settings.idle_timeout_s,
    )


def _ssl(settings: GatewaySettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.upstream_ca_file:
        context.load_verify_locations(cafile=str(settings.upstream_ca_file))
    return context


def _journal(settings: GatewaySettings) -> Path:
    if settings.journal_path:
        return settings.journal_path
    db = settings.db.removeprefix("sqlite:///")
    folder = Path(db).parent if settings.db.startswith("sqlite:///") else Path.cwd()
    return folder / "spendgate-journal.jsonl"


def _snapshots(settings: GatewaySettings, store: Store) -> Path | None:
    """Where the rollup cache's copies are kept across restarts: a folder per database
    (named by a hash of its URL) in ``rollup_cache_dir``, by default beside the journal;
    ``None``: not kept."""
    if not settings.rollup_cache_save:
        return None
    base = settings.rollup_cache_dir or _journal(settings).parent / "spendgate-rollup-cache"
    return base / hashlib.sha256(store.url.encode()).hexdigest()[:16]


def _save_copies(store: Store, folder: Path) -> None:
    """Save the rollup cache's copies at shutdown (best effort: a failure is logged)."""
    started = time.monotonic()
    try:
        path = store.rollup_cache.save(folder)
    except OSError as exc:
        log.warning("rollup cache: could not save its copies in %s: %s", folder, exc)
        return
    if path is not None:
        log.info("rollup cache: copies saved in %s (%.1f s)", path, time.monotonic() - started)
