"""Ports of the projects service: what the use cases need from the outside world."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from g60_chassis.aggregates import Outgoing
from projects.domain.model import Enterprise, Project, ProjectEventKind


class ProjectEvents(Protocol):
    """Builds the outgoing events (contract payloads, topic, key) for domain changes."""

    def enterprise_registered(self, enterprise: Enterprise) -> Outgoing: ...
    def project(self, kind: ProjectEventKind, project: Project) -> Outgoing: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...
