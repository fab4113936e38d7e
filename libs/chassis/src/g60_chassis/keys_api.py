"""`/v1/keys` (operators): issue, list, read, revoke and rotate API keys. A key for an
enterprise or a funder is bound to one that exists: a service checks the tenants it owns (the
projects service enterprises, funding funders; the all-in-one process both) and sends the
other roles' keys to their owner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, status

from g60_chassis.aggregates import decode_cursor, encode_cursor
from g60_chassis.auth import KeyStore, OperatorPrincipal
from g60_chassis.deps import Cursor, Limit
from g60_chassis.errors import Unprocessable
from g60_contracts.auth import KeyIn, KeyInfo, KeyOut, RotateIn
from g60_contracts.common import Page, Problem
from g60_contracts.enums import Role

TenantCheck = Callable[[str], Awaitable[bool]]
OWNER = {Role.enterprise: "projects", Role.funder: "funding"}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 422)
}


def keys_router(tenants: dict[Role, TenantCheck]) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["keys"], responses=ERRORS)

    def store(request: Request) -> KeyStore:
        keys: KeyStore = request.app.state.keys
        return keys

    @api.post("/keys", status_code=201, summary="Issue an API key (operator)")
    async def issue_key(body: KeyIn, request: Request, who: OperatorPrincipal) -> KeyOut:
        if body.role in OWNER and body.tenant_id:
            check = tenants.get(body.role)
            if check is None:
                raise Unprocessable(
                    f"{body.role.value} keys are issued by the {OWNER[body.role]} service",
                    "role",
                )
            if not await check(body.tenant_id):
                raise Unprocessable(f"no {body.role.value} {body.tenant_id!r}", "tenant_id")
        try:
            key, info = await store(request).issue(
                body.role, body.tenant_id, body.note, body.expires_at
            )
        except ValueError as exc:
            raise Unprocessable(str(exc), "tenant_id") from exc
        return KeyOut(
            key=key,
            id=info.id,
            role=info.role,
            tenant_id=info.tenant_id,
            expires_at=info.expires_at,
        )

    @api.get("/keys", summary="List API keys, never their secrets (operator)")
    async def list_keys(
        request: Request,
        who: OperatorPrincipal,
        limit: Limit = 50,
        cursor: Cursor = None,
        tenant_id: str | None = None,
    ) -> Page[KeyInfo]:
        items = await store(request).list(decode_cursor(cursor), limit + 1, tenant_id)
        more = len(items) > limit
        return Page[KeyInfo](
            items=items[:limit], next_cursor=encode_cursor(items[limit - 1].id) if more else None
        )

    @api.get("/keys/{id}", summary="Read an API key (operator)")
    async def get_key(id: str, request: Request, who: OperatorPrincipal) -> KeyInfo:
        return await store(request).get(id)

    @api.post(
        "/keys/{id}/revoke",
        summary="Revoke an API key: at once here, within 1 s elsewhere (operator)",
    )
    async def revoke_key(id: str, request: Request, who: OperatorPrincipal) -> KeyInfo:
        return await store(request).revoke(id)

    @api.post(
        "/keys/{id}/rotate",
        status_code=status.HTTP_201_CREATED,
        summary="Issue a successor; the old key works on for the overlap (operator)",
    )
    async def rotate_key(
        id: str,
        request: Request,
        who: OperatorPrincipal,
        body: Annotated[RotateIn | None, Body()] = None,
    ) -> KeyOut:
        overlap = timedelta(seconds=(body or RotateIn()).overlap_s)
        key, info = await store(request).rotate(id, overlap)
        return KeyOut(
            key=key,
            id=info.id,
            role=info.role,
            tenant_id=info.tenant_id,
            expires_at=info.expires_at,
        )

    return api
