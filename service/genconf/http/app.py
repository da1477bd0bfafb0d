"""The HTTP application: the JSON API under ``/api/v1/``, its OpenAPI document and
interactive docs (assets served from the package: nothing from the internet), the
web console at ``/``, and one error shape for everything (`genconf.http.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from genconf.errors import GenconfError
from genconf.http import admin, applications, branches, errors, history, rollouts
from genconf.http.api import PREFIX, HttpApi, Json
from genconf.http.calls import Aborted
from genconf.http.front import Front

OPENAPI: Final = f"{PREFIX}/openapi.json"
DOCS: Final = f"{PREFIX}/docs"
DOCS_ASSETS: Final = f"{DOCS}/assets"
BENCH_EMPTY: Final = f"{PREFIX}/_bench/empty"  # `genconf bench http-read`'s baseline
UNIT_CONFIG: Final = f"{PREFIX}/units/{{app}}/{{n}}/config"  # what the bench reads
HERE: Final = Path(__file__).resolve().parent
CONSOLE_DIR: Final = HERE / "console"
ASSETS_DIR: Final = HERE / "docs_assets"
SWAGGER_UI_VERSION: Final = "5.35.0"  # npm swagger-ui-dist, vendored in docs_assets/
NO_CONSOLE: Final = (
    "<!doctype html><title>genconf</title><p>genconf: this package has no console; "
    f'the JSON API is at <a href="{PREFIX}/">{PREFIX}/</a> (<a href="{DOCS}">docs</a>).</p>'
)
DESCRIPTION: Final = """\
The genconf API over HTTP: the operations of the gRPC services, as resources, with
the same bearer tokens, the same rule table and the same errors.

- **Tokens**: `Authorization: Bearer TOKEN` (never in a URL); without authentication
  the server answers loopback names only.
- **Writes** answer `{revision, generation, versions, units}` once this server has
  applied them; `X-Genconf-User` names the author (with authentication on, the token
  is the author and this name only "on behalf of").
- **Errors** answer `{code, message, details}`: the gRPC status name, its message,
  and the typed details (expected/actual version, conflicts, mismatches, units).
- **Live**: `GET /api/v1/watch` and `GET /api/v1/units/{app}/{n}/watch` are
  server-sent events (`curl -N`), resumable with `Last-Event-ID`.
- Each operation names the RPC it performs (`x-genconf-rpc`).
"""


def _fields(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for error in exc.errors():
        where, *path = error.get("loc", ("body",))
        out.append(
            {
                "field": ".".join(str(p) for p in path) or str(where),
                "in": str(where),
                "problem": str(error.get("msg", "invalid")),
            }
        )
    return out


def _validation_message(request: Request, exc: RequestValidationError) -> str:
    """What is wrong, naming each field (a body sent without a JSON content type, or
    no body at all, is said as such: FastAPI reads only JSON bodies)."""
    problems = exc.errors()
    whole_body = [e for e in problems if tuple(e.get("loc", ())) == ("body",)]
    if whole_body:
        kind = whole_body[0].get("type", "")
        if kind == "missing":
            return "this request needs a JSON body (Content-Type: application/json)"
        if "json" not in request.headers.get("content-type", ""):
            return "the request body must be JSON, sent with Content-Type: application/json"
    for error in problems:
        if error.get("type") == "json_invalid":
            why = (error.get("ctx") or {}).get("error", "")
            return f"the request body is not valid JSON: {why}"
    return "invalid request: " + "; ".join(
        f"{f['field']} ({f['in']}): {f['problem']}" for f in _fields(exc)
    )


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    refusal = errors.Refusal(
        grpc.StatusCode.INVALID_ARGUMENT, _validation_message(request, exc), fields=_fields(exc)
    )
    status, body = errors.body_of(refusal)
    return Json(body, status_code=status)


async def _on_error(request: Request, exc: Exception) -> Response:
    status, body = errors.body_of(exc)
    return Json(body, status_code=status, headers=errors.headers_for(status))


HTTP_CODES: Final = {
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


async def _on_http(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, method, file) in the same shape."""
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, grpc.StatusCode.INVALID_ARGUMENT)
    if exc.status_code == 404:
        message = f"nothing at {request.method} {request.url.path}"
        if request.url.path.startswith(PREFIX):
            message += f" (the API's routes: {DOCS})"
    elif exc.status_code == 405:
        message = f"{request.url.path} does not take {request.method}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers or {})
    return Json(errors.error_body(code, message), status_code=exc.status_code, headers=headers)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, with the bearer scheme every route but health uses."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a genconf token (gct_...) or the server's admin token",
            }
        }
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def _docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI,
        title="genconf API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url="data:,",  # none: a default would come from the internet
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
    )


def build_app(api: HttpApi, *, bench: bool = False) -> ASGIApp:
    """The ASGI application of one server (``bench``: with the bench's empty route)."""
    app = FastAPI(
        title="genconf",
        version="v1",
        description=DESCRIPTION,
        openapi_url=OPENAPI,
        docs_url=None,
        redoc_url=None,
        default_response_class=Json,
    )
    app.state.genconf = api
    for kind in (Aborted, errors.Refusal, GenconfError, Exception):
        app.add_exception_handler(kind, _on_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    for module in (admin, applications, branches, history, rollouts):
        # One flat table (no included routers): FastAPI matches an included router's
        # routes once to choose it and again to handle, on every request.
        for route in module.router.routes:
            app.router.routes.append(route)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_api_route(DOCS, _docs, include_in_schema=False, response_class=HTMLResponse)
    app.mount(DOCS_ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    if bench:
        add_bench_route(app)
    mount_console(app, CONSOLE_DIR)
    return Front(app, max_body=api.max_request_bytes, auth=api.auth)


async def _empty() -> Response:
    """Nothing at all: what the same HTTP stack costs alone."""
    return Response(b"")


def add_bench_route(app: FastAPI) -> None:
    """The empty route, placed just before the unit config route it is compared
    with: FastAPI tries routes in turn, so both pay the same for being found."""
    app.add_api_route(BENCH_EMPTY, _empty, include_in_schema=False)
    routes = app.router.routes
    empty = routes.pop()
    at = next(i for i, r in enumerate(routes) if getattr(r, "path", "") == UNIT_CONFIG)
    routes.insert(at, empty)


def mount_console(app: FastAPI, directory: Path) -> None:
    """The console's files at ``/`` (after every API route, which come first); a
    one-line page saying so when the package has none."""
    if (directory / "index.html").is_file():
        app.mount("/", StaticFiles(directory=directory, html=True), name="console")
        return

    async def no_console() -> HTMLResponse:
        return HTMLResponse(NO_CONSOLE)

    app.add_api_route("/", no_console, include_in_schema=False, response_class=HTMLResponse)


def api_routes(app: FastAPI) -> Sequence[Any]:
    """The routes of the JSON API (what the OpenAPI document lists)."""
    return [r for r in app.routes if getattr(r, "include_in_schema", False)]
