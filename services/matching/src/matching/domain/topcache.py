"""Each project's best eligible offers, kept as fixed-width numpy rows so that one offer can
enter or leave the lists of many projects in one vectorised step.

Row r holds `count[r]` entries sorted by key (high first), ties by offer id (low first), with
a payload `aux` per entry. Invariant: the entries are exactly the best `count[r]` eligible
offers of project r; `exhaustive[r]` says they are all of its eligible offers. An offer that is
not listed therefore ranks below every listed one, unless the row is exhaustive."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from matching.domain import offerkernels

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
B = npt.NDArray[np.bool_]


class TopCache:
    def __init__(self, depth: int, rows: int = 64) -> None:
        self.depth = depth
        self.off: I32 = np.full((rows, depth), -1, dtype=np.int32)  # offer rows: scanned often
        self.key = np.full((rows, depth), -1, dtype=np.int64)
        self.aux = np.zeros((rows, depth), dtype=np.int64)
        self.count = np.zeros(rows, dtype=np.int64)
        self.exhaustive = np.ones(rows, dtype=bool)

    @property
    def rows(self) -> int:
        return int(self.count.size)

    def ensure(self, rows: int) -> None:
        if rows <= self.rows:
            return
        new = max(rows, 2 * self.rows)
        extra = new - self.rows
        self.off = np.vstack([self.off, np.full((extra, self.depth), -1, dtype=np.int32)])
        self.key = np.vstack([self.key, np.full((extra, self.depth), -1, dtype=np.int64)])
        self.aux = np.vstack([self.aux, np.zeros((extra, self.depth), dtype=np.int64)])
        self.count = np.r_[self.count, np.zeros(extra, dtype=np.int64)]
        self.exhaustive = np.r_[self.exhaustive, np.ones(extra, dtype=bool)]

    def clear(self, row: int) -> None:
        self.off[row], self.key[row], self.aux[row] = -1, -1, 0
        self.count[row], self.exhaustive[row] = 0, True

    def fill(self, row: int, offs: I64, keys: I64, aux: I64, ids: Sequence[str | None]) -> None:
        """Set one row from all its eligible offers (unsorted)."""
        n, d = int(offs.size), self.depth
        if n > d:
            kth = np.partition(keys, n - d)[n - d]
            keep = np.flatnonzero(keys >= kth)  # every tie at the threshold, sorted below
        else:
            keep = np.arange(n)
        order = sorted(keep.tolist(), key=lambda i: (-int(keys[i]), ids[int(offs[i])] or ""))[:d]
        self.clear(row)
        k = len(order)
        self.off[row, :k], self.key[row, :k], self.aux[row, :k] = (
            offs[order],
            keys[order],
            aux[order],
        )
        self.count[row], self.exhaustive[row] = k, n <= d

    def set_rows(self, rows: I64, offs: I64, keys: I64, aux: I64, eligible: I64) -> None:
        """Set many rows from sorted, -1 padded lists (`eligible`: how many each row has)."""
        d = self.depth
        self.off[rows], self.key[rows], self.aux[rows] = offs[:, :d], keys[:, :d], aux[:, :d]
        self.count[rows] = np.minimum(eligible, d)
        self.exhaustive[rows] = eligible <= d

    def holders(
        self, offer: int, upto: int | None = None, rows: int | None = None
    ) -> tuple[I64, I64]:
        """(rows, positions) of the rows (of the first `rows`) that list `offer` within their
        first `upto` entries."""
        flat = np.flatnonzero(self.off[:rows].ravel() == offer)  # faster than a 2-D nonzero
        r, c = np.divmod(flat, self.depth)
        if upto is not None:
            r, c = r[c < upto], c[c < upto]
        return r, c

    def remove(self, offer: int, found: tuple[I64, I64] | None = None) -> I64:
        """Drop `offer` from every row (`found`: its holders, if already known); the rows it
        left."""
        r, c = found if found is not None else self.holders(offer)
        if r.size:  # in place, compiled (`offerkernels.drop`)
            offerkernels.drop(self.off, self.key, self.aux, self.count, r, c)
        return r

    def insert(self, rows: I64, offer: int, keys: I64, aux: I64, rank: I64) -> I64:
        """Offer `offer` (not listed anywhere) is eligible for `rows` with these keys: put it
        where it belongs in each row, if the row's list reaches that far (ties: the lower offer
        id first, `rank` being each offer row's place in the order of the ids, `id_order`). The
        rows changed. In place, compiled (`offerkernels.insert`)."""
        return offerkernels.insert(
            self.off, self.key, self.aux, self.count, self.exhaustive, rows, offer, keys, aux, rank
        )

    def candidates(self, rows: I64, keys: I64) -> B:
        """Which of `rows` an offer with these keys could enter (a superset, ties included)."""
        return offerkernels.entering(self.key, self.count, self.exhaustive, rows, keys)
