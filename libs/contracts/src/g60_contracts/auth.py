"""Bodies of the key endpoints (operator): issue, list, revoke, rotate."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from g60_contracts.enums import Role
from g60_contracts.types import Text


class KeyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "role": "enterprise",
                    "tenant_id": "ent_3f9a1c",
                    "note": "ERP link",
                    "expires_at": "2027-12-31T00:00:00Z",
                }
            ]
        },
    )
    role: Role
    tenant_id: str | None = Field(
        None, max_length=100, description="enterprise id or funder id for those roles"
    )
    note: Text = Field("", max_length=200)
    expires_at: datetime | None = Field(None, description="none: until revoked")


class KeyInfo(BaseModel):
    """A key as listed: never its secret."""

    id: str = Field(examples=["1a2b3c4d5e6f"])
    role: Role
    tenant_id: str | None = None
    note: str = ""
    created_at: datetime
    expires_at: datetime | None = None
    revoked: bool = False
    revoked_at: datetime | None = None
    replaced_by: str | None = Field(None, description="the key that a rotation issued for it")


class KeyOut(BaseModel):
    key: str = Field(description="shown once; store it as a secret", examples=["g60_1a2b3c.s3cr3t"])
    id: str = Field(examples=["1a2b3c4d5e6f"])
    role: Role
    tenant_id: str | None = None
    expires_at: datetime | None = None


class RotateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"overlap_s": 86400}]}
    )
    overlap_s: int = Field(
        86_400,
        ge=0,
        le=30 * 86_400,
        strict=True,
        description="how long the old key keeps working beside the new one (seconds)",
    )
