"""The caller's own account."""

from typing import Annotated

from fastapi import APIRouter, Depends

from src.controller.dependencies import CurrentUserDep, UserSessionDep
from src.domain.entity.user import MeOut, MeUpdate
from src.gateway.user_profile_gateway import UserProfileGateway
from src.usecase.user_usecase import UserUseCase

router = APIRouter(prefix="/api/me", tags=["users"])


def user_use_case(user: CurrentUserDep, session: UserSessionDep) -> UserUseCase:
    """The account use case on the request's transaction."""
    return UserUseCase(user=user, profiles=UserProfileGateway(session))


UserUseCaseDep = Annotated[UserUseCase, Depends(user_use_case)]


@router.get("")
async def get_me(use_case: UserUseCaseDep) -> MeOut:
    """The caller's general user and profile."""
    return await use_case.me()


@router.patch("")
async def update_me(body: MeUpdate, use_case: UserUseCaseDep) -> MeOut:
    """Change the caller's names, avatar or profile settings.

    The account name must be free (409 otherwise) and 3-32 characters of
    a-z, 0-9 and _ (422 otherwise).
    """
    return await use_case.update_me(body)
