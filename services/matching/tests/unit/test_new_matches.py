"""New matches of a wide change: an offer entering many projects' top k makes one new match
per project on the event path, each with its `proposed` decision citing the versions of the
inputs it judged and its event in the outbox; each input is stored once for all of them."""

from __future__ import annotations

from services.matching.tests.unit.test_use_cases import Market

PROJECTS = [f"prj-{i:02d}" for i in range(12)]


async def test_an_offer_entering_many_top_ks_stores_each_input_once() -> None:
    m = Market()
    m.svc.proposals.inline = 0  # any change goes the wide way
    await m.enterprise()
    for id, rate in (("off-a", 420), ("off-b", 400), ("off-c", 440)):
        await m.offer(id, pricing={"rate_bp": rate})
    for id in PROJECTS:
        await m.project(id)
    await m.svc.proposals.settling.settled()
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
