"""Errors that use cases raise. Plain exceptions with an HTTP status attached, so the service
layer needs no web framework; `problems.py` renders them as RFC 9457 problem details."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 400
    title = "Bad request"
    kind = "bad-request"
    headers: dict[str, str] = {}  # noqa: RUF012 (read-only class default; set per instance)

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extra = extra


class Unauthorized(AppError):
    status, title, kind = 401, "Unauthorized", "unauthorized"


class Forbidden(AppError):
    status, title, kind = 403, "Forbidden", "forbidden"


class NotFound(AppError):
    status, title, kind = 404, "Not found", "not-found"

    @classmethod
    def of(cls, what: str, id: str) -> NotFound:
        return cls(f"no {what} {id!r}")


class Conflict(AppError):
    status, title, kind = 409, "Conflict", "conflict"


class TooManyRequests(AppError):
    status, title, kind = 429, "Too many requests", "rate-limited"

    def __init__(self, detail: str, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.headers = headers


class PreconditionFailed(AppError):
    status, title, kind = 412, "Precondition failed", "precondition-failed"


class Unprocessable(AppError):
    """A well-formed request that breaks a business rule; `field` names the culprit."""

    status, title, kind = 422, "Unprocessable request", "rule"

    def __init__(
        self, detail: str, field: str | None = None, location: str = "body", **extra: Any
    ) -> None:
        params = (
            [{"name": f"{location}.{field}", "reason": detail, "location": [location, field]}]
            if field
            else None
        )
        super().__init__(detail, invalid_params=params, **extra)
