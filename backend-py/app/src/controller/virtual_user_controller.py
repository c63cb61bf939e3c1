"""AI personas."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from src.controller.dependencies import CurrentUserDep, SettingsDep, UserSessionDep
from src.domain.entity.chat import PersonaCreate, PersonaOut, PersonaUpdate
from src.domain.entity.request import MAX_ROW_ID
from src.gateway.virtual_user_gateway import VirtualUserGateway
from src.usecase.virtual_user_usecase import VirtualUserUseCase

router = APIRouter(prefix="/api/virtual-users", tags=["personas"])

PersonaId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def virtual_user_use_case(
    user: CurrentUserDep, session: UserSessionDep, settings: SettingsDep
) -> VirtualUserUseCase:
    """The persona use case on the request's transaction."""
    return VirtualUserUseCase(
        user=user, personas=VirtualUserGateway(session), settings=settings
    )


PersonaUseCaseDep = Annotated[VirtualUserUseCase, Depends(virtual_user_use_case)]


@router.get("")
async def list_personas(use_case: PersonaUseCaseDep) -> list[PersonaOut]:
    """The admins' personas (the default first) and the caller's own."""
    return await use_case.list_personas()


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_persona(
    body: PersonaCreate, use_case: PersonaUseCaseDep
) -> PersonaOut:
    """Create a persona of the caller's own."""
    return await use_case.create(body)


@router.patch("/{persona_id}")
async def update_persona(
    persona_id: PersonaId, body: PersonaUpdate, use_case: PersonaUseCaseDep
) -> PersonaOut:
    """Change one of the caller's personas."""
    return await use_case.update(persona_id, body)


@router.delete("/{persona_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_persona(
    persona_id: PersonaId, use_case: PersonaUseCaseDep
) -> Response:
    """Delete one of the caller's personas."""
    await use_case.delete(persona_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
