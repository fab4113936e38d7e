"""Event ids: random version-4 UUIDs (as `uuid.uuid4().hex` wrote them), drawn from the OS
many at a time (`envelope.new_id`), none repeated, a forked child's its own."""

from __future__ import annotations

import os
import uuid

from g60_chassis import envelope
from g60_chassis.envelope import Envelope, new_id


def test_ids_are_uuid4_hex_and_never_repeat_across_draws() -> None:
    ids = [new_id() for _ in range(3 * envelope.IDS_PER_DRAW + 7)]  # several draws
    assert len(set(ids)) == len(ids)
    for id in ids:
        parsed = uuid.UUID(id)
        assert (parsed.hex, parsed.version, parsed.variant) == (id, 4, uuid.RFC_4122)
    assert len({Envelope("t", "s", "x", {}).id for _ in range(600)}) == 600


def test_a_forked_child_does_not_reuse_the_parents_ids() -> None:
    new_id()  # the parent holds a drawn pool
    left = list(envelope._ids)
    assert left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, " ".join(new_id() for _ in range(8)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    assert len(child) == 8
    assert not set(child) & set(left)  # the parent's pool was not the child's
