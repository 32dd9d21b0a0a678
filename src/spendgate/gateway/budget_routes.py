"""The budget routes of the admin API, and the budget operations ``spendgate budgets`` shares.

    GET    /api/v1/budgets              every budget, oldest first, each with its status
    POST   /api/v1/budgets              create one from its JSON form (``budget_from_dict``)
    GET    /api/v1/budgets/{id}         one budget
    PATCH  /api/v1/budgets/{id}         change some fields; the result is validated as a whole
    DELETE /api/v1/budgets/{id}         delete
    GET    /api/v1/budgets/{id}/status  spent, reserved, remaining, reset time, projection

Behind the admin token like the rest of ``/api/v1`` (``middleware.AdminAuth``), store calls in
worker threads. Bad input is a 400 with the ``ConfigError``'s sentence, an unknown id a 404, a
name (or id) already taken a 409. ``changed`` is awaited after every create, update and delete
so the gateway reloads its budgets; ``status`` gives a budget's live status. Paths are relative
to ``/api/v1``: the routes join ``admin_routes(extra_routes=...)`` (or any ``/api/v1`` mount),
and guard themselves with the admin token either way. See docs/api.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import Receive, Scope, Send

from spendgate.budgets.model import (
    SCOPE_FIELDS,
    Action,
    Budget,
    budget_from_dict,
    budget_to_dict,
)
from spendgate.budgets.status import BudgetStatus, status_to_dict
from spendgate.errors import ConfigError
from spendgate.gateway.admin import MAX_BODY_BYTES, Handler, api_handler, iso, json_body
from spendgate.gateway.middleware import AdminAuth, BodyLimit, JsonErrors, json_error
from spendgate.store.budgets import (
    create_budget,
    delete_budget,
    get_budget,
    list_budgets,
    update_budget,
)
from spendgate.store.db import Store

Changed = Callable[[], Awaitable[None]]
StatusOf = Callable[[Budget], Awaitable[BudgetStatus]]
# canonical scope field -> a name ``parse_scope`` accepts for it
_WRITTEN = {canonical: written for written, canonical in SCOPE_FIELDS.items()}
# -- the budget operations (the CLI uses these too) -----------------------------------------------


def budget_json(budget: Budget) -> dict[str, Any]:
    """A budget as the API and ``--json`` show it: its JSON form and its times."""
    return {
        **budget_to_dict(budget),
        "created_at": iso(budget.created_at),
        "updated_at": iso(budget.updated_at),
    }


def status_summary(status: BudgetStatus) -> dict[str, Any]:
    """A status without the budget it belongs to (shown next to that budget)."""
    doc = status_to_dict(status)
    del doc["budget"]
    return doc


def new_budget(doc: Mapping[str, Any]) -> Budget:
    """A budget from its JSON form; ``ConfigError`` saying what is wrong."""
    return budget_from_dict(doc)


def merge_budget(stored: Budget, patch: Mapping[str, Any]) -> Budget:
    """``stored`` with the fields ``patch`` gives, validated as a whole. ``null`` puts a field
    back to its default; setting an ``action`` other than downgrade drops ``downgrade_to``
    unless the patch gives it. The id never changes."""
    if patch.get("id", stored.id) != stored.id:
        raise ConfigError(f"a budget's id cannot change (this one is {stored.id})")
    doc = budget_to_dict(stored)
    del doc["rate_limit"]
    doc["scope"] = {_WRITTEN[name]: value for name, value in stored.scope.items()}
    doc.update(patch)
    if "downgrade_to" not in patch and doc.get("action") != Action.DOWNGRADE.value:
        doc["downgrade_to"] = None
    merged = budget_from_dict(doc, budget_id=stored.id)
    return replace(merged, created_at=stored.created_at, updated_at=stored.updated_at)


# -- routes ---------------------------------------------------------------------------------------


class _Methods:
    """One path's handlers by HTTP method; any other method is a JSON 405 naming the allowed."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self._apps = {method: request_response(api_handler(h)) for method, h in handlers.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._apps.get(scope["method"])
        if app is None:
            allowed = ", ".join(self._apps)
            message = f"{scope['method']} {scope['path']}: allowed methods are {allowed}"
            await json_error(405, message, headers={"Allow": allowed})(scope, receive, send)
            return
        await app(scope, receive, send)


def budget_routes(
    store: Store,
    *,
    token: str | None,
    clock: Callable[[], datetime],
    changed: Changed,
    status: StatusOf,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> list[BaseRoute]:
    """``/budgets`` and below, for the ``/api/v1`` mount (see the module docstring)."""

    def missing(budget_id: str) -> Response:
        return json_error(404, f"no budget with id {budget_id!r}")

    async def list_all(request: Request) -> Response:
        found = await asyncio.to_thread(list_budgets, store)
        statuses = await asyncio.gather(*(status(b) for b in found))
        docs = [
            {**budget_json(b), "status": status_summary(s)}
            for b, s in zip(found, statuses, strict=True)
        ]
        return JSONResponse({"budgets": docs})

    async def create(request: Request) -> Response:
        budget = new_budget(await json_body(request))
        try:
            stored = await asyncio.to_thread(create_budget, store, budget, now=clock())
        except ConfigError as err:  # the name or id is taken
            return json_error(409, str(err))
        await changed()
        return JSONResponse(budget_json(stored), status_code=201)

    async def get_one(request: Request) -> Response:
        budget_id = request.path_params["id"]
        budget = await asyncio.to_thread(get_budget, store, budget_id)
        return missing(budget_id) if budget is None else JSONResponse(budget_json(budget))

    async def patch(request: Request) -> Response:
        budget_id = request.path_params["id"]
        body = await json_body(request)
        stored = await asyncio.to_thread(get_budget, store, budget_id)
        if stored is None:
            return missing(budget_id)
        merged = merge_budget(stored, body)
        try:
            found = await asyncio.to_thread(update_budget, store, merged, now=clock())
        except ConfigError as err:  # the new name is taken
            return json_error(409, str(err))
        updated = await asyncio.to_thread(get_budget, store, budget_id) if found else None
        if updated is None:  # deleted meanwhile
            return missing(budget_id)
        await changed()
        return JSONResponse(budget_json(updated))

    async def remove(request: Request) -> Response:
        budget_id = request.path_params["id"]
        budget = await asyncio.to_thread(get_budget, store, budget_id)
        if budget is None or not await asyncio.to_thread(delete_budget, store, budget_id):
            return missing(budget_id)
        await changed()
        return JSONResponse(budget_json(budget))

    async def status_of(request: Request) -> Response:
        budget_id = request.path_params["id"]
        budget = await asyncio.to_thread(get_budget, store, budget_id)
        if budget is None:
            return missing(budget_id)
        return JSONResponse(status_to_dict(await status(budget)))

    middleware = [
        Middleware(JsonErrors),
        Middleware(AdminAuth, token=token),
        Middleware(BodyLimit, max_bytes=max_body_bytes),
    ]
    paths: dict[str, dict[str, Handler]] = {
        "/budgets": {"GET": list_all, "POST": create},
        "/budgets/{id}": {"GET": get_one, "PATCH": patch, "DELETE": remove},
        "/budgets/{id}/status": {"GET": status_of},
    }
    return [
        Route(path, _Methods(handlers), middleware=middleware) for path, handlers in paths.items()
    ]
