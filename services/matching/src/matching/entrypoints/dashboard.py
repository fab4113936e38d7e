"""`/dashboard`: the corridor's statistics as charts, for operators. Works offline: the chart
library (Chart.js 4, MIT, from npm) is shipped in this package and served from here.

Sign-in: an operator key as `Authorization: Bearer`, or once through the form, which opens a
session (a random token in an HttpOnly, SameSite=Strict cookie, kept in this process for 8
hours). The session holds the key and checks it on every request, so a revoked key ends it."""

from __future__ import annotations

import html
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from g60_chassis.auth import KeyStore
from g60_chassis.errors import Unauthorized
from g60_chassis.principal import Principal
from g60_contracts.enums import Role
from g60_contracts.stats import StatsOut
from matching.service.stats import Stats

STATIC = Path(__file__).parent / "static"
COOKIE = "g60_dashboard"
SESSION_S = 8 * 3600
MAX_SESSIONS = 1000


class Sessions:
    def __init__(self) -> None:
        self._by_token: dict[str, tuple[str, float]] = {}  # token → (key, expiry)

    def open(self, key: str) -> str:
        now = time.monotonic()
        self._by_token = {t: v for t, v in self._by_token.items() if v[1] > now}
        while len(self._by_token) >= MAX_SESSIONS:
            self._by_token.pop(next(iter(self._by_token)))
        token = secrets.token_urlsafe(32)
        self._by_token[token] = (key, now + SESSION_S)
        return token

    def key(self, token: str | None) -> str | None:
        entry = self._by_token.get(token or "")
        return entry[0] if entry and entry[1] > time.monotonic() else None

    def close(self, token: str | None) -> None:
        self._by_token.pop(token or "", None)


async def _operator(request: Request, sessions: Sessions) -> Principal | None:
    keys: KeyStore = request.app.state.keys
    auth = request.headers.get("authorization", "")
    key = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    key = key or sessions.key(request.cookies.get(COOKIE))
    principal = await keys.authenticate(key) if key else None
    return principal if principal is not None and principal.role == Role.operator else None


def router(stats: Stats) -> APIRouter:
    api = APIRouter(include_in_schema=False)
    sessions = Sessions()

    @api.get("/dashboard")
    async def dashboard(request: Request) -> HTMLResponse:
        if await _operator(request, sessions) is None:
            return HTMLResponse(_page("sign-in.html", error=""), status_code=401)
        return HTMLResponse(_page("dashboard.html"))

    @api.post("/dashboard/session")
    async def sign_in(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(errors="replace")[:4096])
        key = (form.get("key") or [""])[0].strip()
        keys: KeyStore = request.app.state.keys
        principal = await keys.authenticate(key) if key else None
        if principal is None or principal.role != Role.operator:
            page = _page("sign-in.html", error="That is not a live operator key.")
            return HTMLResponse(page, status_code=401)
        response = RedirectResponse("/dashboard", status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(
            COOKIE,
            sessions.open(key),
            max_age=SESSION_S,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/dashboard",
        )
        return response

    @api.post("/dashboard/sign-out")
    async def sign_out(request: Request) -> Response:
        sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/dashboard", status_code=303)
        response.delete_cookie(COOKIE, path="/dashboard")
        return response

    @api.get("/dashboard/stats.json")
    async def figures(request: Request) -> StatsOut:
        principal = await _operator(request, sessions)
        if principal is None:
            raise Unauthorized("sign in with an operator key")
        return await stats.figures(principal)

    @api.get("/dashboard/chart.umd.min.js")
    async def chart_js() -> FileResponse:
        return FileResponse(
            STATIC / "chart.umd.min.js",
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @api.get("/dashboard/dashboard.js")
    async def dashboard_js() -> FileResponse:
        return FileResponse(STATIC / "dashboard.js", media_type="text/javascript")

    return api


def _page(name: str, error: str = "") -> str:
    return (STATIC / name).read_text().replace("{{error}}", html.escape(error))
