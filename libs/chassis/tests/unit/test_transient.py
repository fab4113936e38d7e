"""Which failures are outages (the event waits) and which are the event's (dead letter)."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure

from g60_chassis.bus import PermanentError, unreachable
from g60_chassis.mongo import unavailable


def test_connection_failures_and_server_internal_errors_are_outages():
    assert unavailable(AutoReconnect("connection closed"))
    assert unavailable(OperationFailure("failed to connect to `user=postgres`", code=1))
    assert unreachable(ConnectionRefusedError()) and unreachable(TimeoutError())


def test_bad_data_and_duplicates_are_not():
    class M(BaseModel):
        n: int

    try:
        M.model_validate({"n": "x"})
    except ValidationError as exc:
        assert not unavailable(exc) and not unreachable(exc)
    assert not unavailable(DuplicateKeyError("E11000", code=11000))
    assert not unavailable(OperationFailure("bad query", code=2))
    assert not unreachable(PermanentError("bad data"))
