"""The responses every operation can give, written into each service's OpenAPI document once
here instead of on every route: a partner (and the fuzzing suite) sees every status code the
chassis itself may answer — 400 for a body that is not JSON, 401/403, 413, 422, 429, 500 — as
problem+json, and the 200 of a create retried with its Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

PROBLEM = {"$ref": "#/components/schemas/Problem"}
_RATE_HEADERS = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
    "RateLimit-Limit": {"description": "requests in a full bucket", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "requests left now", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "seconds until one more", "schema": {"type": "integer"}},
}
COMMON: dict[str, str] = {
    "401": "no API key, or an unknown, revoked or expired one",
    "403": "the key's role may not do this",
    "422": "a parameter or the body is not valid: `invalid_params` names each field",
    "429": "too many requests for this key or address: wait `Retry-After` seconds",
    "500": "an unexpected error, logged under the `request_id` it returns",
}
WITH_BODY: dict[str, str] = {
    "400": "the body is not decodable JSON",
    "413": "the body is larger than the service accepts",
}
OPEN = {"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc", "/asyncapi"}


def _problem(description: str, code: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }
    if code == "429":
        out["headers"] = _RATE_HEADERS
    return out


def document_common_responses(app: FastAPI) -> None:
    """Wrap `app.openapi` so the generated document lists the chassis's own responses."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for path, item in schema.get("paths", {}).items():
            for method, op in item.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                _add(path, method, op)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op["responses"]
    codes = dict(COMMON)
    if path in OPEN:
        codes = {"429": COMMON["429"], "500": COMMON["500"]}
    if "requestBody" in op or method in ("post", "put", "patch"):
        codes.update(WITH_BODY)
    for code, description in codes.items():
        if code == "422" or code not in responses:
            responses[code] = _problem(
                responses.get(code, {}).get("description", description), code
            )
        else:
            content = responses[code].setdefault("content", {})
            content.pop("application/json", None)
            content["application/problem+json"] = {"schema": PROBLEM}
    for code, spec in list(responses.items()):
        if code.startswith(("4", "5")):  # every error is problem+json
            content = spec.setdefault("content", {})
            content.pop("application/json", None)
            content.setdefault("application/problem+json", {"schema": PROBLEM})
    if method == "post" and "201" in responses and "200" not in responses:
        responses["200"] = {
            **responses["201"],
            "description": "a retry with the same `Idempotency-Key` and body: the object the "
            "first request created",
        }
