"""A lane: the request slots are free again once a request is over, while the outcome is
stored; an ordered subject waits for the stored outcome; storing outcomes is bounded too."""

from __future__ import annotations

from subscriptions.service.lanes import SETTLING, Entry, Lane, Limits


def _lane(ordered: bool, width: int, *entries: Entry) -> Lane:
    lane = Lane(Limits(ordered=ordered, max_in_flight=width, rate_per_s=1e9))
    for entry in entries:
        lane.add(entry, fresh=True)
    return lane


def test_a_slot_serves_the_next_request_while_the_outcome_is_stored() -> None:
    a, b = Entry(0.0, 1, "d1", "prj_1"), Entry(0.0, 2, "d2", "prj_2")
    lane = _lane(False, 1, a, b)
    assert [e.id for e in lane.take(1.0)[0]] == ["d1"]
    assert lane.take(1.0)[0] == []  # one request at a time
    lane.sent(a)
    assert [e.id for e in lane.take(1.0)[0]] == ["d2"]
    lane.finished(a)
    lane.sent(a)  # finished after sent: counted once
    assert lane.in_flight == 1 and lane.unsettled == 1


def test_an_ordered_subject_waits_for_the_stored_outcome() -> None:
    a, b = Entry(0.0, 1, "d1", "prj_1"), Entry(0.0, 2, "d2", "prj_1")
    lane = _lane(True, 4, a, b)
    assert [e.id for e in lane.take(1.0)[0]] == ["d1"]
    lane.sent(a)
    assert lane.take(1.0)[0] == []  # d1's outcome is not stored yet
    lane.finished(a)
    lane.done(a)
    assert [e.id for e in lane.take(1.0)[0]] == ["d2"]


def test_outcomes_being_stored_are_bounded() -> None:
    entries = [Entry(0.0, i, f"d{i}", f"prj_{i}") for i in range(SETTLING + 2)]
    lane = _lane(False, 1, *entries)
    taken = []
    for _ in range(SETTLING + 2):
        for entry in lane.take(1.0)[0]:
            lane.sent(entry)
            taken.append(entry)
    assert len(taken) == SETTLING  # the store is behind: no more requests until it catches up
    lane.finished(taken[0])
    assert len(lane.take(1.0)[0]) == 1
