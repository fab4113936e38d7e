"""Idempotent creates: the id of a created object is derived from the caller and its
`Idempotency-Key`, so a retried create finds the first result instead of making another; the
request's hash tells a true retry from a reuse of the key for a different request."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from g60_chassis.principal import Principal


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def new_id(prefix: str, principal: Principal, idempotency_key: str | None) -> str:
    """A random id, or with a key one derived from (caller, key): the same on every retry."""
    if idempotency_key is None:
        return f"{prefix}_{secrets.token_hex(8)}"
    scope = f"{principal.role}:{principal.tenant_id or principal.key_id}:{idempotency_key}"
    return f"{prefix}_{hashlib.sha256(scope.encode()).hexdigest()[:16]}"
