"""Outbound translation: match transitions → MatchSnapshot CloudEvents on the matches topic,
keyed by the match id (so one match's transitions stay in order)."""

from __future__ import annotations

from g60_chassis.aggregates import Outgoing
from g60_chassis.envelope import Envelope
from g60_contracts.events import EventType, MatchSnapshot
from matching.domain.match import Match

SOURCE = "/g60/matching"
TYPES = {
    "proposed": EventType.match_proposed,
    "retracted": EventType.match_retracted,
    "accepted": EventType.match_accepted,
    "agreed": EventType.match_agreed,
    "reserved": EventType.match_reserved,
    "rejected": EventType.match_rejected,
    "declined": EventType.match_declined,
    "expired": EventType.match_expired,
    "closed": EventType.deal_closed,
}


def snapshot(match: Match) -> MatchSnapshot:
    # read by attribute: dumping the whole match first (its decisions too) took twice as long,
    # once per event of a wide change (~300 for an offer entering 147 top ks)
    return MatchSnapshot.model_validate(match, from_attributes=True)


class ContractMatchEvents:
    def __init__(self, topic: str) -> None:
        self.topic = topic

    def match(self, kind: str, match: Match) -> Outgoing:
        data = snapshot(match).model_dump(mode="json")
        return [
            (
                self.topic,
                Envelope(type=TYPES[kind].value, source=SOURCE, subject=match.id, data=data),
            )
        ]
