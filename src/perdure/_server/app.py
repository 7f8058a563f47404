"""The ASGI application: /v1 routes, OpenAPI at /v1/openapi.json, /metrics, auth, limits."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Litestar, Request, Response, Router, get
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from prometheus_client import CONTENT_TYPE_LATEST

import perdure
from perdure import Engine
from perdure._server import problems
from perdure._server.metrics import Metrics
from perdure._server.routes import ROUTES

MAX_BODY = 4 * 1024 * 1024
"""Largest request body, in bytes; larger ones get 413 before they are read."""


def _guard(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if handler.opt.get("public"):
            return
        given = connection.headers.get("authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            raise NotAuthorizedException("send the server's token as 'Authorization: Bearer <token>'")

    return guard


async def _json_only(request: Request[Any, Any, Any]) -> None:
    """A body must say it is JSON (or say nothing): a form or text is refused, not guessed at."""
    given = request.headers.get("content-type")
    if given is None or request.method not in {"POST", "PUT", "PATCH"}:
        return
    media = given.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise HTTPException(
            status_code=415, detail=f"send JSON with 'Content-Type: application/json', not {given!r}"
        )


def create_app(engine: Engine, *, token: str | None = None, max_body: int = MAX_BODY) -> Litestar:
    """The API over ``engine`` (opened and closed by its owner). With ``token``, every route
    but ``/v1/health`` wants ``Authorization: Bearer <token>``."""
    metrics = Metrics(engine)

    @get("/metrics", media_type=CONTENT_TYPE_LATEST, include_in_schema=False)
    async def prometheus() -> Response[bytes]:
        return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def provide_engine() -> Engine:
        return engine

    security: list[dict[str, list[str]]] | None = [{"bearer": []}] if token else None
    return Litestar(
        route_handlers=[Router("/v1", route_handlers=ROUTES, security=security), prometheus],
        dependencies={"engine": Provide(provide_engine, sync_to_thread=False)},
        guards=[_guard(token)] if token else [],
        before_request=_json_only,
        exception_handlers=problems.HANDLERS,
        request_max_body_size=max_body,
        openapi_config=OpenAPIConfig(
            title="perdure",
            version=perdure.__version__,
            description="Start, inspect and steer durable workflows, actors and schedules.",
            path="/v1",
            render_plugins=[JsonRenderPlugin()],
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
        ),
        debug=False,
    )
