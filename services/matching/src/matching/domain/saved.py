"""Copies of the allocation's part of a deferred-acceptance state (`Acceptance`), to come back
to: the repair's best round (`save`, `restore`), and one `settle` try kept or undone by copying
only what the state's marks name (`copy_marked`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from matching.domain.topcache import I64

if TYPE_CHECKING:
    from matching.domain.acceptance import Acceptance


@dataclass
class Saved:
    """A copy of the allocation's part of the state (the applicants need none: an entry holds
    only while its project's pointer is past it)."""

    ptr: I64
    assign: I64
    room: I64
    slots: I64
    hstart: I64
    hcap: I64
    hn: I64
    hk: I64
    hp: I64
    ha: I64
    hj: I64
    hused: I64


def save(s: Acceptance) -> Saved:
    return Saved(*(getattr(s, f.name).copy() for f in fields(Saved)))


def restore(s: Acceptance, saved: Saved) -> None:
    for f in fields(Saved):
        setattr(s, f.name, getattr(saved, f.name).copy())


def copy_marked(s: Acceptance, base: Saved, keep: bool) -> None:
    """Between the state and `base`, what the marks name: into `base` (keep the move) or
    back into the state (undo it). Projects: `dirty_p`; offers: `touched_o` (every offer
    that let a project go was touched), their runs of holdings where the layout is the same,
    else every run."""
    now = Saved(*(getattr(s, f.name) for f in fields(Saved)))
    src, dst = (now, base) if keep else (base, now)
    ps = np.flatnonzero(s.dirty_p)
    dst.ptr[ps], dst.assign[ps] = src.ptr[ps], src.assign[ps]
    os_ = np.flatnonzero(s.touched_o)
    if src.hused[1] == dst.hused[1] and src.hk.size == dst.hk.size:
        dst.room[os_], dst.slots[os_], dst.hn[os_] = src.room[os_], src.slots[os_], src.hn[os_]
        for o in os_.tolist():
            a, e = int(src.hstart[o]), int(src.hstart[o] + src.hn[o])
            dst.hk[a:e], dst.hp[a:e] = src.hk[a:e], src.hp[a:e]
            dst.ha[a:e], dst.hj[a:e] = src.ha[a:e], src.hj[a:e]
        return
    target = base if keep else s
    for f in fields(Saved):
        if f.name not in ("ptr", "assign"):
            setattr(target, f.name, getattr(src, f.name).copy())
