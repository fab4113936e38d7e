"""Projects whose preference list changed only from some place on, as the allocation kept
between runs sees them (`market.py`).

A new or changed offer enters or moves in thousands of projects' lists (its scores changed, or
it ranks differently), mostly below where those projects got. Taking each of them out and
letting it propose again from the top cost tens of thousands of proposals per change (and the
batch beyond 5 % of the market). Instead: a project holding an offer whose list changed only
from place q on was rejected by the offers before q, and still would be (an offer that gained
room is reopened anyway, `stability.unsettle`). With q beyond what it proposed from, the state
holds for it as it is; otherwise it lets go and proposes again from q. An unallocated project
ran out of its list, so any new entry counts: it is left to the general path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from matching.domain import changes
from matching.domain.acceptance import Acceptance
from matching.domain.preferences import SnapshotLists
from matching.domain.snapshot import MarketSnapshot


def unmoved(
    s: Acceptance,
    lists: SnapshotLists,
    old: MarketSnapshot,
    m: MarketSnapshot,
    c: changes.Changes,
) -> tuple[changes.Changes, dict[int, int]]:
    """The changes without the projects that keep their state (they take their new lists
    here) and without those that go back (returned: project row → place q)."""
    rows = c.projects
    k = min(len(old.project_ids), len(m.project_ids))
    rows = rows[rows < k]
    rows = rows[changes.same_ids(old.project_ids, m.project_ids, rows)]
    P0, P1 = old.projects, m.projects
    rows = rows[P0["active"][rows] & P1["active"][rows]]
    rows = rows[P0["amount"][rows] == P1["amount"][rows]]
    ps = rows.tolist()
    deep = np.fromiter((p in lists.deep for p in ps), bool, len(ps))
    rows = rows[(s.assign[rows] >= 0) & ~deep]
    ptr = s.ptr[rows]
    inside = ptr <= old.pref_off.shape[1]  # (deeper ones are in `lists.deep`)
    rows, ptr = rows[inside], ptr[inside]
    if rows.size == 0:
        return c, {}
    o0, o1 = old.pref_off[rows], m.pref_off[rows]
    differ = (o0 != o1) | (old.pref_aux[rows] != m.pref_aux[rows])
    differ |= np.isin(o0, c.reset) | np.isin(o1, c.reset)
    differ &= np.arange(o0.shape[1])[None, :] < ptr[:, None]
    moved = differ.any(axis=1)
    same = ~moved & (m.pref_count[rows] >= ptr)
    back = dict(zip(rows[moved].tolist(), differ[moved].argmax(axis=1).tolist(), strict=True))
    lists.take(m, rows[same])
    return replace(c, projects=np.setdiff1d(c.projects, rows[same | moved])), back


def rewound(
    s: Acceptance, lists: SnapshotLists, m: MarketSnapshot, back: dict[int, int]
) -> set[int]:
    """The projects of `back` let go of what they hold and of their proposals from their q
    on, and take their new lists; the offers they held (they gained room)."""
    freed = set[int]()
    for p, q in back.items():
        o = s.leave(p)
        if o is not None:
            freed.add(o)
        s.ptr[p] = q  # (its proposals from q on no longer count as applications)
    lists.take(m, np.fromiter(back, np.int64, len(back)))
    return freed
