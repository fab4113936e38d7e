"""Who is calling: the role and the tenant an API key is bound to. No web imports, so use cases
can take it as an argument."""

from __future__ import annotations

from dataclasses import dataclass

from g60_chassis.errors import Forbidden
from g60_contracts.enums import Role


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role
    tenant_id: str | None = None  # the enterprise id or funder id for those roles

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this needs one of the roles: {allowed}")


OPERATOR = Principal("internal", Role.operator)
