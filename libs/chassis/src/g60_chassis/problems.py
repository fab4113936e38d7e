"""RFC 9457 problem details for every error a service returns: handlers that turn the use cases'
errors (`errors.py`), validation errors and anything unexpected into application/problem+json
(never a stack trace)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from g60_chassis.errors import AppError

log = logging.getLogger(__name__)
PROBLEM_BASE = "https://g60.example/problems/"
MEDIA_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-ID"
_SCOPE_KEY = "g60.request_id"
# the members RFC 9457 defines: an error's extra detail may not overwrite them
RESERVED = frozenset({"type", "title", "status", "detail", "instance"})


def request_id(request: Request) -> str:
    """The id of this request: the one `RequestIds` gave it, else a new one."""
    rid = request.scope.get(_SCOPE_KEY)
    if not isinstance(rid, str):
        rid = request.scope[_SCOPE_KEY] = secrets.token_hex(8)
    return rid


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    /,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response. `extra` members whose names RFC 9457 reserves (an error's
    `status=` meaning the state of an object, say) are sent as `current_<name>` instead of
    replacing the problem's own member."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    for name, value in extra.items():
        body[f"current_{name}" if name in RESERVED else name] = value
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


class RequestIds:
    """Pure ASGI middleware: every request gets an id (the caller's `X-Request-ID` if it is a
    sane token, else a new one), echoed in the response's `X-Request-ID` and in the logs of a
    500, so a partner's report can be found in the logs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        ok = 0 < len(sent) <= 64 and sent.replace("-", "").replace("_", "").isalnum()
        rid = scope[_SCOPE_KEY] = sent if ok else secrets.token_hex(8)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        extra = {k: v for k, v in exc.extra.items() if v is not None}
        headers = exc.headers or None
        return problem_response(
            request, exc.status, exc.title, exc.detail, exc.kind, headers, **extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        params = [
            {
                "name": ".".join(str(p) for p in err["loc"]),
                "reason": err["msg"],
                "location": list(err["loc"]),
            }
            for err in exc.errors()
        ]
        n = len(params)
        return problem_response(
            request,
            422,
            "Request validation failed",
            f"{n} field{'s are' if n != 1 else ' is'} not valid",
            "validation",
            invalid_params=params,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            413: "Payload too large",
        }
        return problem_response(
            request,
            exc.status_code,
            titles.get(exc.status_code, "HTTP error"),
            str(exc.detail) if exc.detail else None,
            None,
            getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Anything unexpected: logged with its stack and the request id; the caller gets the
        id and nothing of the error itself."""
        rid = request_id(request)
        log.error(
            "unhandled error on %s %s (request id %s)",
            request.method,
            request.url.path,
            rid,
            exc_info=exc,
        )
        return problem_response(
            request,
            500,
            "Internal error",
            f"the error was logged under request id {rid}",
            "internal",
            {REQUEST_ID_HEADER: rid},
            request_id=rid,
        )
