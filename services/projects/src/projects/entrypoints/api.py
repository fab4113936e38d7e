"""HTTP API of the projects service (v1): translate requests to use cases and back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from g60_chassis.deps import CurrentPrincipal, Cursor, IdempotencyKey, IfMatch, Limit, set_etag
from g60_contracts.common import Page, Problem
from g60_contracts.enums import ProjectStatus, Sector, Stage
from g60_contracts.projects import EnterpriseIn, EnterpriseOut, ProjectIn, ProjectOut, ProjectPatch
from projects.domain.model import Enterprise, Project
from projects.service.handlers import ProjectsService

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 409, 412, 422)
}


def _enterprise(e: Enterprise) -> EnterpriseOut:
    return EnterpriseOut.model_validate(e.model_dump())


def _project(p: Project) -> ProjectOut:
    return ProjectOut.model_validate(p.model_dump())


def router(svc: ProjectsService) -> APIRouter:
    api = APIRouter(prefix="/v1", responses=ERRORS)

    @api.post(
        "/enterprises", status_code=201, tags=["enterprises"], summary="Register an enterprise"
    )
    async def register_enterprise(
        body: EnterpriseIn, who: CurrentPrincipal, response: Response, key: IdempotencyKey
    ) -> EnterpriseOut:
        enterprise, created = await svc.register_enterprise(who, body.model_dump(), key)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        response.headers["Location"] = f"/v1/enterprises/{enterprise.id}"
        return _enterprise(enterprise)

    @api.get("/enterprises/{id}", tags=["enterprises"], summary="Read an enterprise")
    async def get_enterprise(id: str, who: CurrentPrincipal) -> EnterpriseOut:
        return _enterprise(await svc.get_enterprise(who, id))

    @api.post("/projects", status_code=201, tags=["projects"], summary="Post a financing need")
    async def submit_project(
        body: ProjectIn, who: CurrentPrincipal, response: Response, key: IdempotencyKey
    ) -> ProjectOut:
        project, created = await svc.submit_project(who, body.model_dump(), key)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        response.headers["Location"] = f"/v1/projects/{project.id}"
        set_etag(response, project.version)
        return _project(project)

    @api.get("/projects/{id}", tags=["projects"], summary="Read a financing need")
    async def get_project(id: str, who: CurrentPrincipal, response: Response) -> ProjectOut:
        project = await svc.get_project(who, id)
        set_etag(response, project.version)
        return _project(project)

    @api.get("/projects", tags=["projects"], summary="List financing needs")
    async def list_projects(
        who: CurrentPrincipal,
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[ProjectStatus | None, Query()] = None,
        sector: Annotated[Sector | None, Query()] = None,
        stage: Annotated[Stage | None, Query()] = None,
        enterprise_id: Annotated[str | None, Query()] = None,
    ) -> Page[ProjectOut]:
        filters = {
            "status": status,
            "sector": sector,
            "stage": stage,
            "enterprise_id": enterprise_id,
        }
        items, next_cursor = await svc.list_projects(
            who,
            {k: None if v is None else str(v) for k, v in filters.items()},
            cursor,
            limit,
        )
        return Page[ProjectOut](items=[_project(p) for p in items], next_cursor=next_cursor)

    @api.patch("/projects/{id}", tags=["projects"], summary="Change a financing need")
    async def update_project(
        id: str, body: ProjectPatch, who: CurrentPrincipal, if_match: IfMatch, response: Response
    ) -> ProjectOut:
        changes = body.model_dump(exclude_unset=True, mode="python")
        project = await svc.update_project(who, id, changes, if_match)
        set_etag(response, project.version)
        return _project(project)

    @api.post("/projects/{id}/withdraw", tags=["projects"], summary="Withdraw a financing need")
    async def withdraw_project(id: str, who: CurrentPrincipal, response: Response) -> ProjectOut:
        project = await svc.withdraw_project(who, id)
        set_etag(response, project.version)
        return _project(project)

    return api
