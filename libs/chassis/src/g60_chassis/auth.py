"""API keys with roles. A key is `g60_<key id>.<secret>`; the store keeps the key id, the
SHA-256 of the secret (random 256-bit secrets need no slow hash), the role and the tenant it is
bound to. All services read one key store; operators create keys with
`python -m g60_chassis.keys create ...`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from g60_chassis.errors import Unauthorized, Unprocessable
from g60_chassis.principal import Principal
from g60_chassis.store import DocumentStore
from g60_contracts.auth import KeyIn, KeyOut
from g60_contracts.enums import Role

KEYS = "api_keys"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, store: DocumentStore, bootstrap_operator_key: str | None = None) -> None:
        self._store = store
        self._bootstrap = bootstrap_operator_key
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def create(self, role: Role, tenant_id: str | None = None, note: str = "") -> str:
        if role in (Role.enterprise, Role.funder) and not tenant_id:
            raise ValueError(f"a {role} key must be bound to a tenant id")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        await self._store.insert(
            KEYS,
            {
                "_id": key_id,
                "hash": _digest(secret),
                "role": role.value,
                "tenant_id": tenant_id,
                "note": note,
                "revoked": False,
                "created_at": datetime.now(UTC).isoformat(),
            },
        )
        return f"g60_{key_id}.{secret}"

    async def close(self) -> None:
        await self._store.close()

    async def authenticate(self, key: str) -> Principal | None:
        if self._bootstrap and hmac.compare_digest(key, self._bootstrap):
            return Principal("bootstrap", Role.operator)
        if not key.startswith("g60_") or "." not in key:
            return None
        key_id, secret = key[4:].split(".", 1)
        cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        doc = await self._store.get(KEYS, key_id)
        principal = None
        if doc and not doc.get("revoked") and hmac.compare_digest(doc["hash"], _digest(secret)):
            principal = Principal(key_id, Role(doc["role"]), doc.get("tenant_id"))
        self._cache[key] = (time.monotonic() + 30.0, principal)
        return principal


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")


async def authenticate(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if creds is None or not creds.credentials:
        raise Unauthorized("send Authorization: Bearer <api key>")
    keys: KeyStore = request.app.state.keys
    principal = await keys.authenticate(creds.credentials)
    if principal is None:
        raise Unauthorized("unknown or revoked api key")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def keys_router() -> APIRouter:
    """`POST /v1/keys` (operator): issue a key for a role, bound to a tenant where the role
    needs one. The key is shown once; only its hash is stored."""
    api = APIRouter(prefix="/v1", tags=["keys"])

    @api.post("/keys", status_code=201, summary="Issue an API key (operator)")
    async def issue_key(body: KeyIn, request: Request, who: CurrentPrincipal) -> KeyOut:
        who.require(Role.operator)
        keys: KeyStore = request.app.state.keys
        try:
            key = await keys.create(body.role, body.tenant_id, body.note)
        except ValueError as exc:
            raise Unprocessable(str(exc), "tenant_id") from exc
        return KeyOut(key=key, role=body.role, tenant_id=body.tenant_id)

    return api
