"""API keys with roles. A key is `g60_<key id>.<secret>`; the store keeps the key id, the
SHA-256 of the secret (random 256-bit secrets need no slow hash), the role, the tenant it is
bound to, and its lifecycle: an optional expiry, revocation, and the key a rotation replaced it
with. All services read one key store. A key's stored record is kept in process for
`cache_s` (G60_KEY_CACHE_S, 1 s; 0 reads the store on every request): an expiry holds to the
second everywhere (checked on each request), a revocation or rotation at once on the service
that made it, and within `cache_s` on the others. Without it every request paid a store read.
Operators manage keys over `/v1/keys` (`keys_api.py`) or
`python -m allinone keys ...` (`make keys-*`)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from g60_chassis.errors import NotFound, TooManyRequests, Unauthorized
from g60_chassis.principal import Principal
from g60_chassis.ratelimit import Decision, RateLimiter
from g60_chassis.store import DocumentStore
from g60_contracts.auth import KeyInfo
from g60_contracts.enums import Role

KEYS = "api_keys"
MAX_CACHED = 10_000  # key records kept (stale ones dropped when full)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC) if value else None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _info(doc: dict[str, Any]) -> KeyInfo:
    return KeyInfo(
        id=doc["_id"],
        role=Role(doc["role"]),
        tenant_id=doc.get("tenant_id"),
        note=doc.get("note", ""),
        created_at=_when(doc["created_at"]) or datetime.now(UTC),
        expires_at=_when(doc.get("expires_at")),
        revoked=bool(doc.get("revoked")),
        revoked_at=_when(doc.get("revoked_at")),
        replaced_by=doc.get("replaced_by"),
    )


class KeyStore:
    def __init__(
        self,
        store: DocumentStore,
        bootstrap_operator_key: str | None = None,
        *,
        cache_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._bootstrap = bootstrap_operator_key
        self._cache_s, self._clock = cache_s, clock
        self._cached: dict[str, tuple[float, dict[str, Any]]] = {}  # key id → (until, record)

    @property
    def store(self) -> DocumentStore:
        """The platform's shared auth store (the rate limits' buckets live there too)."""
        return self._store

    async def create(
        self,
        role: Role,
        tenant_id: str | None = None,
        note: str = "",
        expires_at: datetime | None = None,
    ) -> str:
        key, _ = await self.issue(role, tenant_id, note, expires_at)
        return key

    async def issue(
        self,
        role: Role,
        tenant_id: str | None = None,
        note: str = "",
        expires_at: datetime | None = None,
        lineage: str | None = None,
    ) -> tuple[str, KeyInfo]:
        """A new key (its secret shown only here) and what is stored about it; `lineage`: the
        first key of the rotation chain it continues (None: it starts one)."""
        if role in (Role.enterprise, Role.funder) and not tenant_id:
            raise ValueError(f"a {role} key must be bound to a tenant id")
        if role not in (Role.enterprise, Role.funder) and tenant_id:
            raise ValueError(f"a {role} key is bound to no tenant")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        doc = {
            "_id": key_id,
            "hash": _digest(secret),
            "role": role.value,
            "tenant_id": tenant_id,
            "note": note,
            "revoked": False,
            "lineage": lineage or key_id,
            "created_at": datetime.now(UTC).isoformat(),
            "expires_at": expires_at.astimezone(UTC).isoformat() if expires_at else None,
        }
        await self._store.insert(KEYS, doc)
        return f"g60_{key_id}.{secret}", _info(doc)

    async def list(
        self, after_id: str | None = None, limit: int = 50, tenant_id: str | None = None
    ) -> list[KeyInfo]:
        where = {"tenant_id": tenant_id} if tenant_id else None
        docs = await self._store.find(KEYS, where, after_id=after_id, limit=limit)
        return [_info(d) for d in docs]

    async def get(self, key_id: str) -> KeyInfo:
        doc = await self._store.get(KEYS, key_id)
        if doc is None:
            raise NotFound.of("key", key_id)
        return _info(doc)

    async def revoke(self, key_id: str) -> KeyInfo:
        """Revoke a key: at once in this process, within `cache_s` in the others. Revoking again
        changes nothing."""
        doc = await self._store.get(KEYS, key_id)
        if doc is None:
            raise NotFound.of("key", key_id)
        if not doc.get("revoked"):
            doc.update(revoked=True, revoked_at=datetime.now(UTC).isoformat())
            await self._store.update(KEYS, doc, doc["version"])
        self._cached.pop(key_id, None)
        return _info(doc)

    async def rotate(self, key_id: str, overlap: timedelta) -> tuple[str, KeyInfo]:
        """A new key with the same role, tenant and note; the old one keeps working for
        `overlap` (or until its own expiry, if sooner), then stops."""
        doc = await self._store.get(KEYS, key_id)
        info = _info(doc) if doc else None
        if doc is None or info is None or not self._live(doc):
            raise NotFound.of("live key", key_id)
        lineage = doc.get("lineage") or key_id
        key, new = await self.issue(info.role, info.tenant_id, info.note, info.expires_at, lineage)
        ends = datetime.now(UTC) + overlap
        if info.expires_at is None or ends < info.expires_at:
            doc["expires_at"] = ends.isoformat()
        doc["replaced_by"] = new.id
        await self._store.update(KEYS, doc, doc["version"])
        self._cached.pop(key_id, None)
        return key, new

    async def lineage(self, key_id: str) -> str:
        """The first key of `key_id`'s rotation chain (itself if it was never rotated from
        another, or is unknown): what a key-bound holder's resources are tied to, so that
        the keys a rotation issues keep managing them."""
        doc = await self._record(key_id)
        return str(doc.get("lineage") or key_id) if doc else key_id

    @staticmethod
    def _live(doc: dict[str, Any]) -> bool:
        expires = _when(doc.get("expires_at"))
        return not doc.get("revoked") and (expires is None or expires > datetime.now(UTC))

    async def close(self) -> None:
        await self._store.close()

    async def authenticate(self, key: str) -> Principal | None:
        if self._bootstrap and hmac.compare_digest(key.encode(), self._bootstrap.encode()):
            return Principal("bootstrap", Role.operator)
        if not key.startswith("g60_") or "." not in key or len(key) > 200:
            return None
        key_id, secret = key[4:].split(".", 1)
        doc = await self._record(key_id)
        if doc and self._live(doc) and hmac.compare_digest(doc["hash"], _digest(secret)):
            return Principal(key_id, Role(doc["role"]), doc.get("tenant_id"))
        return None

    async def _record(self, key_id: str) -> dict[str, Any] | None:
        """The stored record of a key, from the cache while fresh (an unknown id is not
        cached: a key issued on another service works at once)."""
        now = self._clock()
        cached = self._cached.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        doc = await self._store.get(KEYS, key_id)
        if doc is not None and self._cache_s > 0:
            if len(self._cached) >= MAX_CACHED:
                self._cached = {k: v for k, v in self._cached.items() if v[0] > now}
            self._cached[key_id] = (now + self._cache_s, doc)
        return doc


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")


def _limited(decision: Decision, what: str) -> TooManyRequests:
    return TooManyRequests(
        f"{what}: retry in {decision.retry_after_s} s", headers=decision.headers()
    )


async def authenticate(
    request: Request,
    response: Response,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller's principal, within the rate limits: the client address's bucket first (and
    a 429 while it has failed to authenticate too often), then the key's bucket."""
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    address = request.client.host if request.client else "unknown"
    if limiter is not None:
        decision = await limiter.address(address)
        if not decision.allowed:
            raise _limited(decision, "too many requests (or failed authentications) from here")
    if creds is None or not creds.credentials:
        raise Unauthorized("send Authorization: Bearer <api key>")
    keys: KeyStore = request.app.state.keys
    principal = await keys.authenticate(creds.credentials)
    if principal is None:
        if limiter is not None and not (failed := await limiter.failed(address)).allowed:
            raise _limited(failed, "too many failed authentications from here")
        raise Unauthorized("unknown, revoked or expired api key")
    if limiter is not None:
        decision = await limiter.key(principal.key_id)
        if not decision.allowed:
            raise _limited(decision, "too many requests with this key")
        response.headers.update(decision.headers())
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def operator(who: CurrentPrincipal) -> Principal:
    who.require(Role.operator)
    return who


OperatorPrincipal = Annotated[Principal, Depends(operator)]
