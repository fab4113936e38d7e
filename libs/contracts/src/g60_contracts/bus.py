"""`/v1/bus` (operators): the embedded platform's in-process bus, as `g60 topics` and
`g60 dlq-*` show it (data only). On Kafka those commands ask the broker instead."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class BusTopic(BaseModel):
    name: str
    published: int = Field(description="events published on it since the process started")
    dead_letters: int = 0


class BusOut(BaseModel):
    kind: Literal["memory", "kafka"]
    topics: list[BusTopic] = []


class DeadLetterOut(BaseModel):
    position: int = Field(description="its place in the dead-letter list of this topic")
    key: str
    type: str
    original_topic: str
    error: str
    attempts: str


class CountOut(BaseModel):
    count: int
