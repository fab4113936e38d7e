"""How the operator CLI reaches a platform: one URL (the embedded all-in-one process, or a
gateway), or one URL per service (the distributed shape run apart), with an operator key.
Requests use the platform's paths; a transport routes each path to the service that serves it,
so the same code (the demo seeding among it) talks to either shape."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from g60_chassis.settings import PlatformSettings

DEFAULT_URL = "http://127.0.0.1:8000"


class OperatorError(Exception):
    """One clear line for the operator, and the exit code that says what kind of failure."""

    USAGE, UNREACHABLE, REFUSED, FAILED = 2, 3, 4, 1

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


KEY_ISSUERS = {"enterprise": "projects", "funder": "funding"}  # they check the tenant exists


def service_of(path: str, body: bytes = b"") -> str:
    """Which service serves a /v1 path (matches, explanations, stats: matching). A new key
    goes to the service that owns its tenant."""
    parts = [p for p in path.split("/") if p]
    if parts == ["v1", "keys"] and body:
        try:
            role = json.loads(body).get("role")
        except (ValueError, AttributeError):
            role = None
        return KEY_ISSUERS.get(str(role), "matching")
    if len(parts) >= 2 and parts[0] == "v1":
        tail = parts[3] if len(parts) > 3 else ""
        if parts[1] in ("enterprises", "projects") and tail not in ("matches", "explain"):
            return "projects"
        if parts[1] in ("funders", "offers") and tail != "matches":
            return "funding"
    return "matching"


@dataclass(frozen=True)
class Target:
    url: str
    urls: dict[str, str]  # per service, where they differ from `url`
    key: str

    def url_for(self, service: str) -> str:
        return self.urls.get(service, self.url)


class Routing(httpx.AsyncBaseTransport):
    def __init__(self, target: Target) -> None:
        self.target = target
        self.inner = httpx.AsyncHTTPTransport(retries=2)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content if request.method == "POST" else b""
        base = httpx.URL(self.target.url_for(service_of(request.url.path, body)))
        request.url = request.url.copy_with(scheme=base.scheme, host=base.host, port=base.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def resolve(url: str | None, key: str | None, settings: PlatformSettings) -> Target:
    """URL: the option, else G60_URL, else the embedded default (:8000). Per-service URLs from
    G60_PROJECTS_URL / G60_FUNDING_URL / G60_MATCHING_URL. Key: the option, else
    G60_OPERATOR_KEY, else the embedded platform's `<data dir>/operator.key`, else
    G60_BOOTSTRAP_OPERATOR_KEY."""
    base = (url or os.environ.get("G60_URL") or DEFAULT_URL).rstrip("/")
    urls = {
        s: u.rstrip("/")
        for s in ("projects", "funding", "matching")
        if (u := os.environ.get(f"G60_{s.upper()}_URL"))
    }
    key = key or os.environ.get("G60_OPERATOR_KEY")
    stored = Path(settings.data_dir) / "operator.key"
    if not key and stored.exists():
        key = stored.read_text().strip()
    key = key or settings.bootstrap_operator_key
    if not key:
        raise OperatorError(
            f"no operator key: pass --key, set G60_OPERATOR_KEY, or run `make run` once "
            f"(it writes {stored})",
            OperatorError.USAGE,
        )
    return Target(base, urls, key)


def client(target: Target, timeout: float = 120.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url="http://g60",
        transport=Routing(target),
        headers={"Authorization": f"Bearer {target.key}"},
        timeout=timeout,
    )


def check(response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer; else an `OperatorError` naming the problem."""
    if response.is_success:
        return response.json()
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title") or response.reason_phrase
        fields = [p.get("name") for p in body.get("invalid_params") or [] if p.get("name")]
        if fields:
            detail = f"{detail} ({', '.join(fields)})"
    except ValueError:
        detail = response.text[:200] or response.reason_phrase
    what = f"{response.request.method} {response.request.url.path}"
    code = OperatorError.REFUSED if response.status_code < 500 else OperatorError.FAILED
    raise OperatorError(f"{what}: {response.status_code} {detail}", code)
