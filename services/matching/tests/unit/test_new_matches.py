"""New matches of a wide change: an offer entering many projects' top k makes one new match
per project on the event path, each with its `proposed` decision citing the versions of the
inputs it judged and its event in the outbox; each input is stored once for all of them."""

from __future__ import annotations

from typing import Any

from services.matching.tests.unit.test_use_cases import Market

PROJECTS = [f"prj-{i:02d}" for i in range(12)]


async def test_an_offer_entering_many_top_ks_stores_each_input_once() -> None:
    m = Market()
    await m.wide(PROJECTS)
    stored_before = {d["_id"] for d in await m.store.find("decision_inputs", None, limit=10**6)}

    await m.offer("new", pricing={"rate_bp": 300})  # the best offer of every project

    inputs = {d["_id"] for d in await m.store.find("decision_inputs", None, limit=10**6)}
    assert inputs - stored_before == {"offer:new:1"}  # the projects' were stored already
    assert {f"project:{p}:1" for p in PROJECTS} | {"enterprise:ent-1:0"} <= inputs
    for pid in PROJECTS:
        match = await m.match(pid, "new")
        assert (match.status, match.rank) == ("proposed", 1)
        [decision] = match.records()
        assert (decision.kind, decision.project_version, decision.offer_version) == (
            "proposed",
            1,
            1,
        )
        assert decision.enterprise_view == match.enterprise_view != {}
        assert await m.events(pid, "new") == ["g60.match.proposed.v1"]


async def test_the_first_matches_of_new_inputs_store_them_with_the_matches() -> None:
    m = Market()
    m.svc.proposals.inline = 0
    await m.enterprise()
    for id in PROJECTS[:3]:
        await m.project(id)  # no offer yet: nothing proposed, no input stored
    assert await m.store.find("decision_inputs", None) == []
    await m.offer("new", pricing={"rate_bp": 300})
    inputs = {d["_id"] for d in await m.store.find("decision_inputs", None, limit=10**6)}
    assert inputs == {"offer:new:1", "enterprise:ent-1:0"} | {
        f"project:{p}:1" for p in PROJECTS[:3]
    }
    for pid in PROJECTS[:3]:
        assert (await m.match(pid, "new")).status == "proposed"


async def test_a_change_wider_than_a_batch_is_stored_in_one_pass() -> None:
    """An offer entering more top ks than a reconciliation batch: one engine pass for the
    breakdowns of every project's new pair and one insert of all the new matches (three of
    each for the widest offer at 100,000 x 10,000 before), and every project then holds the
    engine's new top k, the new pair's event in the outbox."""
    from matching.service.proposals import BATCH

    m = Market()
    m.svc.proposals.inline = 0
    await m.enterprise()
    await m.offer("off-a", pricing={"rate_bp": 420})
    many = [f"prj-{i:03d}" for i in range(BATCH + 6)]
    for id in many:
        await m.project(id)
    await m.svc.proposals.settling.settled()
    passes: list[int] = []
    inserts: list[int] = []
    breakdowns, add_many = m.svc.engine.with_breakdowns, m.svc.matches.add_many

    def counted_breakdowns(proposals: Any) -> Any:
        passes.append(len(proposals))
        return breakdowns(proposals)

    async def counted_add_many(objs: Any, events: Any = None) -> Any:
        inserts.append(len(objs))
        return await add_many(objs, events)

    m.svc.engine.with_breakdowns = counted_breakdowns  # type: ignore[method-assign]
    m.svc.matches.add_many = counted_add_many  # type: ignore[method-assign]
    await m.offer("new", pricing={"rate_bp": 300})  # the best offer of every project
    assert passes == [len(many)] and inserts == [len(many)]

    await m.svc.proposals.settling.settled()
    for pid in many:
        assert await m.events(pid, "new") == ["g60.match.proposed.v1"]
        wanted = m.svc.engine.proposals_for_projects([pid], breakdowns=False, allocated=False)
        for p in wanted[pid]:
            match = await m.match(pid, p.offer_id)
            assert (match.status, match.rank) == ("proposed", p.rank)
