"""Typed FastAPI dependencies every service's routers share (`Annotated` aliases). Each is
`async def`, not `def`: FastAPI runs a plain function in its thread pool, a hand-off to a
worker thread and back on every request (~7% of the projects service's CPU per POST on
py-spy's samples)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Response

from g60_chassis.auth import CurrentPrincipal
from g60_chassis.errors import PreconditionFailed


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(description='the ETag you read, e.g. `"3"`; a mismatch answers 412'),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 18):  # versions fit in 18 digits
        raise PreconditionFailed(f"If-Match {if_match[:40]!r} is not an ETag this API returned")
    return int(tag)


async def _idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="retrying a create with the same key returns the first result",
        ),
    ] = None,
) -> str | None:
    return idempotency_key


IfMatch = Annotated[int | None, Depends(_if_match)]
IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page")]


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


__all__ = ["CurrentPrincipal", "Cursor", "IdempotencyKey", "IfMatch", "Limit", "set_etag"]
