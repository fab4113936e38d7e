"""Event contracts. On Kafka each event is a CloudEvent 1.0 in binary mode: `ce_id`, `ce_type`
(one of `EventType`), `ce_source`, `ce_time`, `ce_subject` (= the aggregate id, also the record
key) in headers; the value is the JSON of the payload model below. Events that describe an
aggregate's new state carry the whole snapshot (event-carried state transfer), so a consumer
never has to call back. A breaking change is a new type version (`.v2`), published beside `.v1`.
"""

from enum import StrEnum

from pydantic import BaseModel

from g60_contracts.enums import MatchStatus
from g60_contracts.funding import FunderOut, OfferOut
from g60_contracts.matching import MatchOut
from g60_contracts.projects import EnterpriseOut, ProjectOut
from g60_contracts.types import AmountCny


class EventType(StrEnum):
    enterprise_registered = "g60.enterprise.registered.v1"
    project_submitted = "g60.project.submitted.v1"
    project_updated = "g60.project.updated.v1"
    project_withdrawn = "g60.project.withdrawn.v1"
    project_funded = "g60.project.funded.v1"
    funder_registered = "g60.funder.registered.v1"
    offer_published = "g60.offer.published.v1"
    offer_updated = "g60.offer.updated.v1"
    offer_withdrawn = "g60.offer.withdrawn.v1"
    offer_capacity_changed = "g60.offer.capacity_changed.v1"
    capacity_reserved = "g60.capacity.reserved.v1"
    capacity_rejected = "g60.capacity.rejected.v1"
    match_proposed = "g60.match.proposed.v1"
    match_retracted = "g60.match.retracted.v1"
    match_accepted = "g60.match.accepted.v1"
    match_agreed = "g60.match.agreed.v1"
    match_reserved = "g60.match.reserved.v1"
    match_rejected = "g60.match.rejected.v1"
    match_declined = "g60.match.declined.v1"
    match_expired = "g60.match.expired.v1"
    deal_closed = "g60.deal.closed.v1"


class EnterpriseRegistered(EnterpriseOut):
    pass


class ProjectSnapshot(ProjectOut):
    """project.submitted / project.updated / project.withdrawn / project.funded"""


class FunderRegistered(FunderOut):
    pass


class OfferSnapshot(OfferOut):
    """offer.published / offer.updated / offer.withdrawn / offer.capacity_changed"""


class CapacityDecision(BaseModel):
    """capacity.reserved / capacity.rejected: funding's answer to match.agreed."""

    match_id: str
    offer_id: str
    project_id: str
    amount_cny: AmountCny
    remaining_cny: AmountCny
    reason: str | None = None


class MatchSnapshot(MatchOut):
    """Every match.* event and deal.closed carry the match as it is after the transition."""

    previous_status: MatchStatus | None = None


PAYLOADS: dict[EventType, type[BaseModel]] = {
    EventType.enterprise_registered: EnterpriseRegistered,
    EventType.project_submitted: ProjectSnapshot,
    EventType.project_updated: ProjectSnapshot,
    EventType.project_withdrawn: ProjectSnapshot,
    EventType.project_funded: ProjectSnapshot,
    EventType.funder_registered: FunderRegistered,
    EventType.offer_published: OfferSnapshot,
    EventType.offer_updated: OfferSnapshot,
    EventType.offer_withdrawn: OfferSnapshot,
    EventType.offer_capacity_changed: OfferSnapshot,
    EventType.capacity_reserved: CapacityDecision,
    EventType.capacity_rejected: CapacityDecision,
    **{
        t: MatchSnapshot
        for t in (
            EventType.match_proposed,
            EventType.match_retracted,
            EventType.match_accepted,
            EventType.match_agreed,
            EventType.match_reserved,
            EventType.match_rejected,
            EventType.match_declined,
            EventType.match_expired,
            EventType.deal_closed,
        )
    },
}
