"""Bodies of the key endpoint (operator)."""

from pydantic import BaseModel, ConfigDict, Field

from g60_contracts.enums import Role


class KeyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"role": "enterprise", "tenant_id": "ent_3f9a1c", "note": "ERP link"}]
        },
    )
    role: Role
    tenant_id: str | None = Field(None, description="enterprise id or funder id for those roles")
    note: str = Field("", max_length=200)


class KeyOut(BaseModel):
    key: str = Field(description="shown once; store it as a secret", examples=["g60_1a2b3c.s3cr3t"])
    role: Role
    tenant_id: str | None = None
