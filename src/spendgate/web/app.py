"""``create_app``: the whole product in one ASGI app — the gateway (runtime proxy, admin API,
metrics) plus the web layer: the analytics API under ``/api/v1`` and its OpenAPI docs.

The gateway may not import ``web``; this module composes the two. Add web routes to the lists
in ``_api_routes`` (they join the admin mount, behind the admin token) or ``_top_routes``
(served at the top level: pages, static files, docs).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from spendgate.bedrock.sigv4 import Credentials
from spendgate.gateway.app import create_app as create_gateway
from spendgate.gateway.app import utc_now
from spendgate.gateway.upstream import Upstream
from spendgate.settings import GatewaySettings
from spendgate.store.db import Store, open_store
from spendgate.web.api import api_routes, docs_routes
from spendgate.web.dashboard import dashboard_routes


def _api_routes(store: Store, clock: Callable[[], datetime]) -> list[BaseRoute]:
    """Routes under ``/api/v1`` (admin token required)."""
    return [*api_routes(store, clock=clock)]


def _top_routes(
    store: Store, settings: GatewaySettings, clock: Callable[[], datetime]
) -> list[BaseRoute]:
    """Routes at the top level: the API docs, the dashboard (``/``, ``/dashboard``, ``/static``)."""
    return [*docs_routes(), *dashboard_routes(store, settings, clock=clock)]


def create_app(
    settings: GatewaySettings,
    *,
    store: Store | None = None,
    upstream: Upstream | None = None,
    credentials: Callable[[], Credentials | None] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> ASGIApp:
    """The gateway with the web layer mounted; arguments as ``gateway.app.create_app``."""
    store = store or open_store(settings.db, cache_bytes=settings.rollup_cache_bytes)
    return create_gateway(
        settings,
        store=store,
        upstream=upstream,
        credentials=credentials,
        clock=clock,
        api_routes=_api_routes(store, clock),
        extra_routes=_top_routes(store, settings, clock),
    )
