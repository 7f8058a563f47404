"""Every error the API answers is an RFC 9457 problem, made here and nowhere else.

perdure's errors carry their HTTP status (``PerdureError.http_status``); the
framework's own (unknown route, malformed JSON, body too large, bad token)
carry theirs. Anything else is a bug: a 500 that says to read the server log,
which has the traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from perdure import PerdureError
from perdure._server.models import Problem

log = logging.getLogger("perdure.server")
MEDIA_TYPE = "application/problem+json"


def problem(
    status: int, detail: str, *, error: str | None = None, path: str | None = None
) -> Response[Problem]:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, instance=path, error=error)
    headers = {"WWW-Authenticate": 'Bearer realm="perdure"'} if status == 401 else None
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def from_perdure(request: Request[Any, Any, Any], exc: PerdureError) -> Response[Problem]:
    status = exc.http_status
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    return problem(status, str(exc), error=type(exc).__name__, path=request.url.path)


def from_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    detail = exc.detail or HTTPStatus(exc.status_code).phrase
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        # Which field and why, e.g. "Expected `str`, got `int` - at `$.workflow`".
        reasons = [f"{e.get('message')} ({e.get('source', 'body')}: {e.get('key', '')})" for e in exc.extra]
        detail = f"{detail}: {'; '.join(str(r) for r in reasons)}"
    return problem(exc.status_code, detail, path=request.url.path)


def from_nesting(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Problem]:
    return problem(400, "the JSON body is nested too deeply; flatten it", path=request.url.path)


def from_encoding(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Problem]:
    return problem(
        400, f"the body is not valid UTF-8 JSON: {exc.reason} at byte {exc.start}", path=request.url.path
    )


def from_bug(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.exception("%s %s raised %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return problem(500, f"internal error ({type(exc).__name__}); the server log has the details")


HANDLERS: dict[int | type[Exception], Any] = {
    PerdureError: from_perdure,
    HTTPException: from_http,
    RecursionError: from_nesting,  # a body of 100,000 nested arrays, say
    UnicodeDecodeError: from_encoding,  # the framework decodes the body before the JSON parser sees it
    404: from_http,  # an unknown route: raised before the app's handlers, keyed by status
    405: from_http,
    Exception: from_bug,
}

_SAYS = {
    400: "Bad input: malformed JSON, a wrong field, an unknown workflow, actor or method, or wrong arguments",
    401: "Missing or wrong bearer token",
    404: "No such workflow, actor, actor call, schedule or route",
    409: "Conflict: an id reused with other content, or a state that forbids the action",
    413: "Request body too large",
    415: "The body is not sent as JSON (Content-Type: application/json)",
    422: "A query handler raised",
    503: "The database is unavailable for now; retry",
}


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI descriptions of the problems a route may answer (plus the ones any route may)."""
    return {
        s: ResponseSpec(data_container=Problem, description=_SAYS[s], media_type=MEDIA_TYPE)
        for s in sorted({400, 401, 413, 415, 503, *statuses})
    }
