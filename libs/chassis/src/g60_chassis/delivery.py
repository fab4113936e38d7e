"""The delivery policy every bus adapter shares: a handler's retries, the errors that are
the infrastructure's (the event comes again) and the dead letters of the others."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from g60_chassis.envelope import Envelope

log = logging.getLogger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]
# Handles a consumed batch at once, with the effect of handling its events in order (a handler
# that can share store calls and engine passes among them). If it raises, the bus delivers the
# batch's events one by one to the plain handler (retries, dead letters): the handlers are
# idempotent, so a batch's partial effect is applied again harmlessly.
BatchHandler = Callable[[Sequence[Envelope]], Awaitable[None]]


class PermanentError(Exception):
    """The event can never be processed (bad data): dead-letter it without further attempts."""


def unreachable(exc: BaseException) -> bool:
    """A failure of the infrastructure, not of the event: a connection refused or timed out."""
    return isinstance(exc, ConnectionError | TimeoutError)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 3
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    dlq_suffix: str = ".dlq"
    # An event whose handler still fails with such an error after the last attempt is not
    # dead-lettered: the error propagates, the record is not committed and comes again (a
    # store that is down must delay events, never divert them). Adapters add their own.
    transient: Callable[[BaseException], bool] = unreachable


def _time_ordered_id() -> str:
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


@dataclass
class DeadLetter:
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]
    id: str = field(default_factory=_time_ordered_id)


class DeadLetterKeeper(Protocol):
    """Where an in-process bus's dead letters outlive the process (`g60_chassis.dead_letters`)."""

    async def load(self) -> list[DeadLetter]: ...
    async def put(self, letter: DeadLetter) -> None: ...
    async def drop(self, letters: list[DeadLetter]) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Position:
    """Where a record came from, for the dead-letter headers."""

    topic: str
    partition: int = 0
    offset: int = -1


async def deliver(
    handler: Handler,
    envelope: Envelope | None,
    raw: tuple[bytes, dict[str, str], str],
    position: Position,
    policy: DeliveryPolicy,
    dead_letter: Callable[[DeadLetter], Awaitable[None]],
    parse_error: Exception | None = None,
    first_error: Exception | None = None,
) -> bool:
    """Run `handler` with retries; after the last failed attempt, or at once for a permanent
    error, hand the original record to `dead_letter`, unless the error is `policy.transient`:
    then it is raised and the caller must not commit the record. Returns True when the handler
    succeeded; the caller commits the offset after this returns, whichever way it went.
    `first_error`: the caller made the first attempt itself, and it raised this."""
    attempts = 0
    error: BaseException | None = parse_error
    if envelope is not None and first_error is not None:
        attempts, error = 1, first_error
    elif envelope is not None:
        try:  # the first attempt outside the retry machinery: most events need no retry
            attempts = 1
            await handler(envelope)
            return True
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            error = exc
    retriable = not isinstance(error, PermanentError | ValidationError)
    if envelope is not None and policy.max_attempts > 1 and retriable:
        try:
            await asyncio.sleep(policy.backoff_initial_s)
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(policy.max_attempts - 1),
                wait=wait_exponential(
                    multiplier=policy.backoff_initial_s, max=policy.backoff_max_s
                ),
                retry=retry_if_not_exception_type((PermanentError, ValidationError)),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    await handler(envelope)
            return True
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            error = exc
    if envelope is not None and error is not None and policy.transient(error):
        log.warning(
            "%s[%s]@%s: infrastructure unavailable after %d attempt(s), not dead-lettered "
            "(it comes again): %r",
            position.topic,
            position.partition,
            position.offset,
            attempts,
            error,
        )
        await asyncio.sleep(policy.backoff_max_s)
        raise error
    value, headers, key = raw
    log.warning(
        "dead-lettering %s[%s]@%s after %d attempt(s): %r",
        position.topic,
        position.partition,
        position.offset,
        max(attempts, 1),
        error,
    )
    await dead_letter(
        DeadLetter(
            topic=position.topic + policy.dlq_suffix,
            key=key,
            value=value,
            headers={
                **headers,
                "dlq_original_topic": position.topic,
                "dlq_original_partition": str(position.partition),
                "dlq_original_offset": str(position.offset),
                "dlq_error": repr(error)[:1000],
                "dlq_attempts": str(max(attempts, 1)),
            },
        )
    )
    return False


async def deliver_batch(batch: BatchHandler | None, events: Sequence[Envelope], where: str) -> bool:
    """Try `batch` on events that all parsed; True if it handled them all. False (nothing to
    undo: the handlers are idempotent) means: deliver them one by one."""
    if batch is None or len(events) < 2:
        return False
    try:
        await batch(events)
        return True
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:
        log.info("%s: a batch of %d failed (%r): delivering one by one", where, len(events), exc)
        return False
