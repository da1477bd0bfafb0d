"""genconf over HTTP: the JSON API (``/api/v1/``), live streams as server-sent events,
the OpenAPI document and its docs, and the web console (``/``), served by the same
``genconf serve`` process as gRPC (``--http-listen HOST:PORT``).

HTTP is a second way into the same services, not a second implementation: each
route calls the RPC it names on the servicer objects the gRPC server serves,
through the server's own interceptors (`calls`), so authentication, the rule
table, agent binding, stream limits, observer redaction and every error are gRPC's.

    server.py        uvicorn inside the server's event loop (started by genconf.api.server)
    app.py           the FastAPI application: routers, docs, console, error handlers
    front.py         before routing: same-origin browsers, loopback Host without auth, size
    calls.py         HTTP requests as in-process calls of the gRPC methods (the gate)
    api.py           what routes share (HttpApi), the JSON response, route -> RPC
    admin.py, applications.py, branches.py, history.py   the routes
    models.py        request bodies (pydantic, strict) -> protobuf requests
    views.py         response shapes, for the OpenAPI document (genconf.shapes makes them)
    sse.py           a call's stream as server-sent events (or lines)
    errors.py        refusals -> HTTP status + {code, message, details}
    console/         the web console's static files; docs_assets/: Swagger UI (vendored)
"""
