"""The opaque cursors of paged lists: the last id returned, URL-safe base64 without padding."""

from __future__ import annotations

import base64

from g60_chassis.errors import Unprocessable


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable("not a cursor this API returned", "cursor", "query") from exc
