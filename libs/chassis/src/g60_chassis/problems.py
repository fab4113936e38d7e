"""RFC 9457 problem details for every error a service returns: handlers that turn the use cases'
errors (`errors.py`), validation errors and anything unexpected into application/problem+json
(never a stack trace)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from g60_chassis.errors import AppError

log = logging.getLogger(__name__)
PROBLEM_BASE = "https://g60.example/problems/"
MEDIA_TYPE = "application/problem+json"


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        extra = {k: v for k, v in exc.extra.items() if v is not None}
        return problem_response(request, exc.status, exc.title, exc.detail, exc.kind, **extra)

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
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "Internal error", "the error was logged", "internal")
