"""The growable table: rows given to many ids at once are those given one by one (new ids in
one step; repeated, known ids or free rows the slow way)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.domain.table import Table


class _T(Table):
    COLUMNS: ClassVar[dict[str, tuple[Any, Any]]] = {"x": (np.int64, 0)}


@pytest.mark.parametrize(
    ("before", "removed", "ids"),
    [
        ([], [], ["a", "b", "c"]),  # all new: one step
        (["a", "b"], [], ["c", "d"]),
        (["a", "b"], [], ["b", "c"]),  # a known id keeps its row
        (["a", "b", "c"], ["b"], ["d", "e"]),  # a free row is reused
        ([], [], ["a", "b", "a"]),  # a repeated id: one row, the last values
    ],
)
def test_put_many_gives_the_rows_of_one_by_one(
    before: list[str], removed: list[str], ids: list[str]
) -> None:
    many, one = _T(2), _T(2)
    for t in (many, one):
        for i in before:
            t.put(i, {"x": 1})
        for i in removed:
            t.remove(i)
    rows = many.put_many(ids, [{"x": n} for n in range(len(ids))])
    want = [one.put(i, {"x": n}) for n, i in enumerate(ids)]
    assert rows.tolist() == want
    assert many.row == one.row and many.size == one.size  # capacities may differ
    assert many.ids[: many.size] == one.ids[: one.size]
    assert many.view()["x"].tolist() == one.view()["x"].tolist()
    assert many.view()["active"].tolist() == one.view()["active"].tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["put", "remove", "many", "order"]), st.integers(0, 30)),
        max_size=60,
    )
)
def test_the_kept_id_order_is_the_sorted_one(ops: list[tuple[str, int]]) -> None:
    t = _T(2)
    for kind, i in ops:
        if kind == "put":
            t.put(f"id{i}", {"x": i})
        elif kind == "remove":
            t.remove(f"id{i}")
        elif kind == "many":
            t.put_many([f"id{i}", f"id{i + 7}"], [{"x": 1}, {"x": 2}])
        else:
            t.id_order()  # kept from here on, then updated id by id
        want = np.full(t.size, t.size, dtype=np.int64)
        for place, id in enumerate(sorted(t.row)):
            want[t.row[id]] = place
        assert t.id_order().tolist() == want.tolist()
