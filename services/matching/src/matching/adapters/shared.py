"""The snapshot's way to the child process through shared memory, not the pipe.

`ProcessPoolExecutor` pickles a call's arguments in its feeder thread, in one C call that
holds the GIL throughout: at 100,000 × 10,000 the snapshot (~70 MB of numpy arrays and 100,000
ids) took 0.5–0.65 s to pickle on the loaded machine, and the event loop stood still for as
long (measured: a 525 ms stall of a 1 ms sleeper; the GETs' 378–574 ms maxima during the
refresh). Here the arrays are copied into one `SharedMemory` block on the event loop, a few
hundred kilobytes at a time with the loop free between them (`ship`), and the child is sent
only their places and the ids joined in one string (pickled as one buffer); it copies them out
(`land`), so its kept state owns its memory. The block is unlinked once the run is over
(`Shipped.close`). The standard library's `multiprocessing.shared_memory` is the tool; only
the layout is written here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from matching.domain.snapshot import MarketSnapshot

CHUNK = 1 << 19  # bytes copied between two yields of the event loop (~0.1 ms)
ALIGN = 64
SEP = "\x00"  # ids never hold it; an empty part is a free row (None)


@dataclass(frozen=True)
class Place:
    field: str  # the snapshot's field
    key: str | None  # the column, for the two tables' fields
    offset: int
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Shipped:
    """What goes through the pipe: the block's name, where each array is, and the rest."""

    name: str
    places: tuple[Place, ...]
    project_ids: str
    offer_ids: str
    version: int
    as_of_ord: int


def _arrays(snapshot: MarketSnapshot) -> list[tuple[str, str | None, np.ndarray[Any, Any]]]:
    out: list[tuple[str, str | None, np.ndarray[Any, Any]]] = []
    for f in fields(MarketSnapshot):
        v = getattr(snapshot, f.name)
        if isinstance(v, dict):
            out += [(f.name, k, np.ascontiguousarray(a)) for k, a in v.items()]
        elif isinstance(v, np.ndarray):
            out.append((f.name, None, np.ascontiguousarray(v)))
    return out


def _join(ids: tuple[str | None, ...]) -> str:
    return SEP.join(i or "" for i in ids)


def _split(s: str, n: int) -> tuple[str | None, ...]:
    return tuple(i or None for i in s.split(SEP)) if n else ()


async def ship(snapshot: MarketSnapshot) -> tuple[Shipped, SharedMemory]:
    """Copy the snapshot's arrays into a new shared block, the event loop free between
    chunks; the caller closes and unlinks the block once the child is done with it."""
    arrays, places, at = _arrays(snapshot), [], 0
    for name, key, a in arrays:
        places.append(Place(name, key, at, a.shape, a.dtype.str))
        at += -(-a.nbytes // ALIGN) * ALIGN
    block = SharedMemory(create=True, size=max(at, ALIGN))
    buf: np.ndarray[Any, Any] | None = np.ndarray((at,), dtype=np.uint8, buffer=block.buf)
    try:
        for place, (_, _, a) in zip(places, arrays, strict=True):
            raw = a.reshape(-1).view(np.uint8)
            for lo in range(0, raw.size, CHUNK):
                hi = min(lo + CHUNK, raw.size)
                buf[place.offset + lo : place.offset + hi] = raw[lo:hi]  # type: ignore[index]
                await asyncio.sleep(0)
        buf = None  # no view of the block left: it can be closed
        project_ids, offer_ids = _join(snapshot.project_ids), _join(snapshot.offer_ids)
    except BaseException:
        buf = None
        block.close()
        block.unlink()
        raise
    shipped = Shipped(
        block.name,
        tuple(places),
        project_ids,
        offer_ids,
        snapshot.version,
        snapshot.as_of_ord,
    )
    return shipped, block


def land(shipped: Shipped) -> MarketSnapshot:
    """In the child: the snapshot back from the shared block, copied out of it."""
    block = SharedMemory(name=shipped.name)
    got: dict[str, Any] = {}
    try:
        for p in shipped.places:
            count = int(np.prod(p.shape, dtype=np.int64))
            raw = block.buf
            assert raw is not None
            a = np.frombuffer(raw, np.dtype(p.dtype), count, p.offset).reshape(p.shape)
            a, raw = a.copy(), None  # owned by the child (its kept state): no view of the block
            if p.key is None:
                got[p.field] = a
            else:
                got.setdefault(p.field, {})[p.key] = a
    finally:
        block.close()
    n_p = int(got["projects"]["active"].size)
    n_o = int(got["offers"]["active"].size)
    return MarketSnapshot(
        version=shipped.version,
        as_of_ord=shipped.as_of_ord,
        project_ids=_split(shipped.project_ids, n_p),
        offer_ids=_split(shipped.offer_ids, n_o),
        **got,
    )
