"""Envelopes shared by every HTTP API: pages and problem details (RFC 9457)."""

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list. Pass `next_cursor` back as `cursor` for the next one; null: no more."""

    items: list[T]
    next_cursor: str | None = None


class InvalidParam(BaseModel):
    name: str = Field(examples=["body.amount_cny"])
    reason: str = Field(examples=["Input should be greater than 0"])
    location: list[str | int] = Field(examples=[["body", "amount_cny"]])


class Problem(BaseModel):
    """RFC 9457 problem details, served as application/problem+json."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://g60.example/problems/validation",
                    "title": "Request validation failed",
                    "status": 422,
                    "detail": "1 field is not valid",
                    "instance": "/v1/projects",
                    "invalid_params": [
                        {
                            "name": "body.amount_cny",
                            "reason": "Input should be greater than 0",
                            "location": ["body", "amount_cny"],
                        }
                    ],
                }
            ]
        },
    )
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = None
    extra: dict[str, Any] | None = None
