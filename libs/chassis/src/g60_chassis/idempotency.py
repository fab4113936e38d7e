"""Idempotent creates (the Stripe convention): the id of a created object is derived from the
caller and its `Idempotency-Key`, so a retried create — sequential or concurrent — finds the
first result instead of making another; the request's hash tells a true retry from a reuse of
the key for a different request (422). Concurrent retries race on the insert of that one id:
the store's id uniqueness picks the winner, the others read what it stored."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from g60_chassis.aggregates import Aggregates, AlreadyExists
from g60_chassis.errors import Unprocessable
from g60_chassis.principal import Principal


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def new_id(prefix: str, principal: Principal, idempotency_key: str | None) -> str:
    """A random id, or with a key one derived from (caller, key): the same on every retry."""
    if idempotency_key is None:
        return f"{prefix}_{secrets.token_hex(8)}"
    scope = f"{principal.role}:{principal.tenant_id or principal.key_id}:{idempotency_key}"
    return f"{prefix}_{hashlib.sha256(scope.encode()).hexdigest()[:16]}"


class Created(Protocol):
    id: str
    request_hash: str | None


C = TypeVar("C", bound=Created)


def _replay(existing: C, digest: str) -> tuple[C, bool]:
    if existing.request_hash is not None and existing.request_hash != digest:
        raise Unprocessable(
            "this Idempotency-Key was used with a different request", "Idempotency-Key", "header"
        )
    return existing, False


async def create_once(
    repo: Aggregates[Any],
    id: str,
    digest: str,
    keyed: bool,
    create: Callable[[], Awaitable[C]],
) -> tuple[C, bool]:
    """(object, created): `create()` builds and adds the object under `id`; with an
    Idempotency-Key (`keyed`) a stored object of that id is the answer instead, provided it
    was created by the same request (`digest`). The id is the key's, so a replay is found by
    its insert failing on that id: a first request (the usual case) reads nothing first."""
    try:
        return await create(), True
    except AlreadyExists:
        # any unique field may report the clash first (an enterprise's uscc on SQLite): the
        # object of the key's id existing is what makes it a replay
        if not keyed or (existing := await repo.get(id)) is None:
            raise
        return _replay(existing, digest)
