"""The HTTP chassis: an app factory that every service (and the all-in-one process) uses, with
problem details, a request size limit, liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from g60_chassis.auth import KeyStore, OperatorPrincipal
from g60_chassis.openapi import document_common_responses
from g60_chassis.problems import RequestIds, install_problem_handlers, problem_response
from g60_chassis.ratelimit import RateLimiter

Check = Callable[[], Awaitable[bool]]

REQUESTS = Counter("g60_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("g60_http_request_seconds", "HTTP request latency", ["method", "route"])


class BodyLimit:
    """Pure ASGI middleware (Starlette's BaseHTTPMiddleware runs every request through a task
    and memory streams, a measurable share of a POST's CPU): refuses bodies over `max_bytes`
    with a 413 problem (by Content-Length; a chunked body is read first, up to the limit),
    and counts requests and their latency by route for `/metrics`."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            messages, size = [], 0  # chunked upload: measure what arrives
            while True:
                message = await receive()
                messages.append(message)
                size += len(message.get("body", b""))
                if size > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            receive = _replay(messages, receive)
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "?")
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
            REQUESTS.labels(scope["method"], route, status).inc()

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        response = problem_response(
            Request(scope),
            413,
            "Payload too large",
            f"request bodies are limited to {self.max_bytes} bytes",
            "too-large",
        )
        await response(scope, receive, send)


def _replay(messages: list[Any], receive: Any) -> Any:
    """A `receive` that gives these messages first, then whatever comes (a disconnect)."""
    pending = list(messages)

    async def replay() -> Any:
        return pending.pop(0) if pending else await receive()

    return replay


def create_app(
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    keys: KeyStore,
    checks: dict[str, Check],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    max_body_bytes: int = 1_000_000,
    limiter: RateLimiter | None = None,
    extra_docs: dict[str, Callable[[], dict[str, Any]]] | None = None,
) -> FastAPI:
    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.keys = keys
    app.state.limiter = limiter
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestIds)  # outermost of ours: 413s and 500s carry the id too

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness: broker and store reachable")
    async def readyz(request: Request) -> Response:
        results = {name: await check() for name, check in checks.items()}
        if all(results.values()):
            return JSONResponse({"status": "ready", "checks": results})
        return problem_response(request, 503, "Not ready", None, "not-ready", checks=results)

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
    )
    async def metrics(who: OperatorPrincipal) -> Response:
        """Operators only (a scraper sends an operator key as its bearer token)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for path, build in (extra_docs or {}).items():
        _add_doc(app, path, build)
    for router in routers:
        app.include_router(router)
    document_common_responses(app)
    return app


def _add_doc(app: FastAPI, path: str, build: Callable[[], dict[str, Any]]) -> None:
    @app.get(path, tags=["docs"], summary=f"{path.strip('/')} document")
    async def _doc() -> dict[str, Any]:
        return build()
