"""Projects whose preference list changed only from some place on, as the allocation kept
between runs sees them (`market.py`).

A new or changed offer enters or moves in thousands of projects' lists (its scores changed, or
it ranks differently), mostly below where those projects got. Taking each of them out and
letting it propose again from the top cost tens of thousands of proposals per change (and the
batch beyond 5 % of the market). Instead: a project holding an offer whose list changed only
from place q on was rejected by the offers before q, and still would be (an offer that gained
room is reopened anyway, `stability.unsettle`). With q beyond what it proposed from, the state
holds for it as it is; otherwise it lets go and proposes again from q. An unallocated project
ran out of its list, so any new entry counts: it is left to the general path.

A list lengthened beyond the cache (`deep`) that a changed offer was or may now be in is read
again from the market as deep, all such lists in one lengthening, and compared the same way:
such projects went back to the top before, ran out of the cache's part of their lists again
and were lengthened again one group at a time (most of the slowest runs after one change).
A list stays lengthened only while its project proposed beyond the cache, or ran out of it
(`shallow`): which lists a lengthening happened to take along must not decide which of these
paths a project takes."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from matching.domain import changes, pairs, scoring
from matching.domain.acceptance import Acceptance
from matching.domain.preferences import MIN_DEPTH, SnapshotLists
from matching.domain.snapshot import MarketSnapshot
from matching.domain.topcache import I64, B


def unmoved(
    s: Acceptance,
    lists: SnapshotLists,
    old: MarketSnapshot,
    m: MarketSnapshot,
    c: changes.Changes,
) -> tuple[changes.Changes, dict[int, int]]:
    """The changes without the projects that keep their state (they take their new lists
    here) and without those that go back (returned: project row → place q)."""
    shallow(s, lists, old)
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


def shallow(s: Acceptance, lists: SnapshotLists, old: MarketSnapshot) -> None:
    """Lengthened lists whose projects did not propose beyond what the cache of `old` (the
    snapshot the state is of) holds: the cache's lists again, no longer in `lists.deep`
    (lengthened again only if a project is pushed that far). A list is lengthened when its
    project runs out of it, but also when another project does while it is about to, or
    when it was cut; which of them are lengthened must not decide how their projects go on
    after a change (from the cache's comparison, `unmoved`, or proposing again from the top):
    with mixed amounts that changes the order of proposals. So a list stays lengthened
    exactly while its project's place is beyond the cache's. An unallocated project ran out
    of its list, so of the lengthened one: it read beyond the cache even at a place within it
    (the rest of its list was empty then), and keeps it lengthened, where `hit` sees a
    changed offer enter it (with the cache's list, cut where it ran out, the offer came after
    its end unseen: a blocking pair neither proposed to nor listed)."""
    if not lists.deep:
        return
    rows = np.fromiter(lists.deep, np.int64, len(lists.deep))
    rows = rows[rows < len(old.project_ids)]
    rows = rows[s.assign[rows] >= 0]
    rows = np.sort(rows[s.ptr[rows] <= old.pref_count[rows]])
    if rows.size == 0:
        return
    lists.put(
        rows, old.pref_off[rows], old.pref_aux[rows], old.pref_count[rows], old.pref_complete[rows]
    )
    lists.deep.difference_update(rows.tolist())


@dataclass(frozen=True)
class Hit:
    """Rows lengthened beyond the cache that a changed offer was or may now be in (`rows`,
    ascending), and where a changed offer is eligible for one of them now: (row, offer, its
    enterprise score) triples, `at`/`offer`/`e`."""

    rows: I64
    at: I64
    offer: I64
    e: I64

    def without(self, rows: I64) -> Hit:
        keep = ~np.isin(self.at, rows)
        return Hit(np.setdiff1d(self.rows, rows), self.at[keep], self.offer[keep], self.e[keep])


def hit(lists: SnapshotLists, m: MarketSnapshot, changed: I64) -> Hit:
    """The deep rows (`lists.deep`) that an offer of `changed` was or may now be in: read
    again (the cache is exact only as deep as it goes)."""
    none = np.zeros(0, dtype=np.int64)
    if not lists.deep or changed.size == 0:
        return Hit(none, none, none, none)
    rows = np.sort(np.fromiter(lists.deep, dtype=np.int64, count=len(lists.deep)))
    n = lists.length[rows]
    at = np.repeat(lists.start[rows], n) + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    out = [np.repeat(rows, n)[np.isin(lists.pool_o[at], changed)]]  # every deep list at once
    ats, offs, es = [none], [none], [none]
    for o in changed.tolist():
        O1 = {k: v[o : o + 1] for k, v in m.offers.items()}
        eligible, e_q, _ = pairs.offer_vs_projects(m.projects, O1, m.as_of_ord)
        mine = np.isin(eligible, rows)
        ats.append(eligible[mine])
        offs.append(np.full(int(mine.sum()), o, np.int64))
        es.append(e_q[mine])
    out += ats
    return Hit(np.unique(np.concatenate(out)), np.concatenate(ats), np.concatenate(offs),
               np.concatenate(es))  # fmt: skip


def _ahead(s: Acceptance, lists: SnapshotLists, m: MarketSnapshot, h: Hit, changed: I64) -> B:
    """Of the allocated rows `h.rows`: those whose lists may have changed before where the
    project proposed (place `ptr`), so read again. The others' lists hold up to there: a
    changed offer was not among their first `ptr` entries, and comes now (if at all) after
    the last of them (the list's order: the enterprise's score high first, then the offer
    id's rank low first; the scores of unchanged pairs are unchanged)."""
    rows, ptr = h.rows, s.ptr[h.rows]
    w = int(ptr.max())
    upto = np.arange(w)[None, :] < ptr[:, None]
    o0 = lists.pool_o[np.where(upto, lists.start[rows][:, None] + np.arange(w)[None, :], 0)]
    must: B = (np.isin(o0, changed) & upto).any(axis=1) | (ptr < 1)
    last = o0[np.arange(rows.size), np.maximum(ptr - 1, 0)]
    P = pairs.take(m.projects, rows, scoring.P_COLUMNS)
    e_last, _ = scoring.totals(P, pairs.take(m.offers, last))
    i = np.searchsorted(rows, h.at)
    rank = m.offer_rank
    before = (h.e > e_last[i]) | ((h.e == e_last[i]) & (rank[h.offer] < rank[last[i]]))
    must[i[before]] = True
    return must


def deep(
    s: Acceptance, lists: SnapshotLists, m: MarketSnapshot, h: Hit, reset: I64, changed: I64
) -> tuple[I64, dict[int, int]]:
    """`unmoved` for rows whose lists were lengthened beyond the cache (`lists.deep`) and that
    a changed offer was or may now be in (`hit`: the cache cannot tell how their lists
    changed). Those where a changed offer may now come before where the project proposed
    (`_ahead`) get their lists again from the market, as deep (one lengthening for all), and
    are compared with the old ones up to there; the others' lists are cut there (they hold
    that far; lengthened again only if the project is pushed beyond). The rows left to the
    general path (unallocated), and those that go back (project row → place q); the others
    keep their state."""
    allocated = s.assign[h.rows] >= 0
    rest = h.rows[~allocated]
    keep = np.isin(h.at, h.rows[allocated])
    h = Hit(h.rows[allocated], h.at[keep], h.offer[keep], h.e[keep])
    if h.rows.size == 0:
        return rest, {}
    lists.take(m, rest[:0])  # (the lists read on from `m`: the lengthening below reads it)
    must = _ahead(s, lists, m, h, changed)
    cut = h.rows[~must]
    lists.length[cut] = np.minimum(lists.length[cut], s.ptr[cut])
    lists.complete[cut] = False
    rows = h.rows[must]
    if rows.size == 0:
        return rest, {}
    n, ptr = lists.length[rows], s.ptr[rows]
    w = int(ptr.max())
    upto = np.arange(w)[None, :] < ptr[:, None]
    at = np.where(upto, lists.start[rows][:, None] + np.arange(w)[None, :], 0)
    o0, f0 = lists.pool_o[at], lists.pool_f[at]
    lists.deepen(rows, np.maximum(n, MIN_DEPTH))
    inside = np.arange(w)[None, :] < lists.length[rows][:, None]
    at = np.where(inside, lists.start[rows][:, None] + np.arange(w)[None, :], 0)
    o1 = np.where(inside, lists.pool_o[at], -1)
    f1 = np.where(inside, lists.pool_f[at], -1)
    differ = (o0 != o1) | (f0 != f1) | np.isin(o0, reset) | np.isin(o1, reset)
    differ &= upto
    moved = differ.any(axis=1)
    back = dict(zip(rows[moved].tolist(), differ[moved].argmax(axis=1).tolist(), strict=True))
    return rest, back


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
    # (lists lengthened beyond the cache are already the market's: `deep`)
    lists.take(m, np.fromiter((p for p in back if p not in lists.deep), np.int64))
    return freed
