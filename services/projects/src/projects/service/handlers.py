"""Use cases of the projects service. Access rules live here: an operator sees everything, an
enterprise key only its own enterprise and projects (another tenant's object is a 404, not a
403, so ids cannot be probed), partners read the catalogue."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from g60_chassis.aggregates import Aggregates, AlreadyExists, retry_on_conflict
from g60_chassis.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from g60_chassis.idempotency import create_once, new_id, request_hash
from g60_chassis.principal import Principal
from g60_contracts.enums import Role
from projects.domain.model import Enterprise, Project, RuleViolation
from projects.service.ports import Clock, ProjectEvents

READERS = (Role.operator, Role.enterprise, Role.partner)
KNOWN_ENTERPRISES = 100_000  # ids remembered to exist (then forgotten all at once)


class ProjectsService:
    def __init__(
        self,
        enterprises: Aggregates[Enterprise],
        projects: Aggregates[Project],
        events: ProjectEvents,
        clock: Clock,
        new_id: Callable[[str, Principal, str | None], str] = new_id,
    ) -> None:
        self.enterprises, self.projects, self.events = enterprises, projects, events
        self.clock, self.new_id = clock, new_id
        # enterprises seen to exist: a need's POST checks its enterprise without a store read
        # (an enterprise is never deleted, so a positive answer does not go stale)
        self._existing: set[str] = set()

    # enterprises -------------------------------------------------------------------------
    async def register_enterprise(
        self, principal: Principal, body: dict[str, Any], idempotency_key: str | None = None
    ) -> tuple[Enterprise, bool]:
        """Returns (enterprise, created). One enterprise per USCC: the unique index on `uscc`
        decides between concurrent registrations; the losers get a 409 naming the winner."""
        principal.require(Role.operator)
        id = self.new_id("ent", principal, idempotency_key)
        digest = request_hash(body)

        async def create() -> Enterprise:
            enterprise = Enterprise(**body, id=id, request_hash=digest, created_at=self.clock())
            try:
                return await self.enterprises.add(enterprise, self.events.enterprise_registered)
            except AlreadyExists as exc:
                if exc.field != "uscc":
                    raise
                clash, _ = await self.enterprises.list({"uscc": body["uscc"]}, limit=1)
                if clash and clash[0].id == id:
                    raise  # this key's own enterprise: a replay, answered by create_once
                raise Conflict(
                    f"an enterprise with uscc {body['uscc']} is registered",
                    field="uscc",
                    existing_id=clash[0].id if clash else None,
                ) from exc

        return await create_once(self.enterprises, id, digest, bool(idempotency_key), create)

    async def enterprise_exists(self, id: str) -> bool:
        return await self.enterprises.get(id) is not None

    async def _enterprise_exists(self, id: str) -> bool:
        if id not in self._existing:
            if await self.enterprises.get(id) is None:
                return False
            if len(self._existing) >= KNOWN_ENTERPRISES:
                self._existing.clear()
            self._existing.add(id)
        return True

    async def get_enterprise(self, principal: Principal, id: str) -> Enterprise:
        principal.require(*READERS)
        enterprise = await self.enterprises.get(id)
        if enterprise is None or (principal.role == Role.enterprise and principal.tenant_id != id):
            raise NotFound.of("enterprise", id)
        return enterprise

    # projects ----------------------------------------------------------------------------
    async def submit_project(
        self, principal: Principal, body: dict[str, Any], idempotency_key: str | None = None
    ) -> tuple[Project, bool]:
        principal.require(Role.operator, Role.enterprise)
        if principal.role == Role.enterprise:
            if body.get("enterprise_id") not in (None, principal.tenant_id):
                raise NotFound.of("enterprise", body["enterprise_id"])
            body = {**body, "enterprise_id": principal.tenant_id}
        if not body.get("enterprise_id"):
            raise Unprocessable("enterprise_id is required for an operator", "enterprise_id")
        if not await self._enterprise_exists(body["enterprise_id"]):
            raise Unprocessable(f"no enterprise {body['enterprise_id']!r}", "enterprise_id")
        digest = request_hash(body)
        id = self.new_id("prj", principal, idempotency_key)

        async def create() -> Project:
            now = self.clock()
            project = Project(**body, id=id, request_hash=digest, created_at=now, updated_at=now)
            try:
                project.check()
            except RuleViolation as exc:
                raise Unprocessable(str(exc), exc.field) from exc
            return await self.projects.add(project, partial(self.events.project, "submitted"))

        return await create_once(self.projects, id, digest, bool(idempotency_key), create)

    async def get_project(self, principal: Principal, id: str) -> Project:
        principal.require(*READERS)
        project = await self.projects.get(id)
        if project is None or not self._visible(principal, project):
            raise NotFound.of("project", id)
        return project

    async def list_projects(
        self, principal: Principal, filters: dict[str, Any], cursor: str | None, limit: int
    ) -> tuple[list[Project], str | None]:
        principal.require(*READERS)
        where = {k: v for k, v in filters.items() if v is not None}
        if principal.role == Role.enterprise:
            where["enterprise_id"] = principal.tenant_id
        return await self.projects.list(where, cursor, limit)

    async def update_project(
        self, principal: Principal, id: str, changes: dict[str, Any], if_match: int | None
    ) -> Project:
        principal.require(Role.operator, Role.enterprise)
        project = await self.get_project(principal, id)
        if if_match is not None and if_match != project.version:
            raise PreconditionFailed(
                f"the project is at version {project.version}, not {if_match}",
                current_version=project.version,
            )
        try:
            kind = project.change(changes, self.clock())
        except RuleViolation as exc:
            if exc.field == "status":
                raise Conflict(str(exc)) from exc
            raise Unprocessable(str(exc), exc.field) from exc
        return await self.projects.save(project, partial(self.events.project, kind))

    async def withdraw_project(self, principal: Principal, id: str) -> Project:
        principal.require(Role.operator, Role.enterprise)
        await self.get_project(principal, id)

        async def attempt() -> Project:
            project = await self.projects.get(id)
            assert project is not None
            try:
                kind = project.withdraw(self.clock())
            except RuleViolation as exc:
                raise Conflict(str(exc)) from exc
            if kind is None:
                return project
            return await self.projects.save(project, partial(self.events.project, kind))

        result: Project = await retry_on_conflict(attempt)
        return result

    # events in ---------------------------------------------------------------------------
    async def on_deal_closed(self, project_id: str, match_id: str, amount_cny: int) -> None:
        """A deal closed on the matching side: the project is funded. Idempotent."""

        async def attempt() -> None:
            project = await self.projects.get(project_id)
            if project is None:
                raise NotFound.of("project", project_id)
            kind = project.fund(match_id, amount_cny, self.clock())
            if kind is not None:
                await self.projects.save(project, partial(self.events.project, kind))

        await retry_on_conflict(attempt)

    @staticmethod
    def _visible(principal: Principal, project: Project) -> bool:
        return principal.role != Role.enterprise or project.enterprise_id == principal.tenant_id
