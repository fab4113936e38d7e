"""Outbound translation: domain changes → contract payloads in CloudEvents envelopes, on the
projects topic, keyed by the aggregate id."""

from __future__ import annotations

from g60_chassis.aggregates import Outgoing
from g60_chassis.envelope import Envelope
from g60_contracts.events import EnterpriseRegistered, EventType, ProjectSnapshot
from projects.domain.model import Enterprise, Project, ProjectEventKind

SOURCE = "/g60/projects"
_PROJECT_TYPES = {
    "submitted": EventType.project_submitted,
    "updated": EventType.project_updated,
    "withdrawn": EventType.project_withdrawn,
    "funded": EventType.project_funded,
}


class ContractProjectEvents:
    def __init__(self, topic: str) -> None:
        self.topic = topic

    def enterprise_registered(self, enterprise: Enterprise) -> Outgoing:
        payload = EnterpriseRegistered.model_validate(enterprise.model_dump())
        return [
            (self.topic, self._envelope(EventType.enterprise_registered, enterprise.id, payload))
        ]

    def project(self, kind: ProjectEventKind, project: Project) -> Outgoing:
        payload = ProjectSnapshot.model_validate(project.model_dump())
        return [(self.topic, self._envelope(_PROJECT_TYPES[kind], project.id, payload))]

    @staticmethod
    def _envelope(
        type: EventType, subject: str, payload: EnterpriseRegistered | ProjectSnapshot
    ) -> Envelope:
        return Envelope(
            type=type.value, source=SOURCE, subject=subject, data=payload.model_dump(mode="json")
        )
