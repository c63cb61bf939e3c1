"""The caller's own account: ``GET /api/me`` and ``PATCH /api/me``."""

from src.domain.entity.user import CurrentUser, MeOut, MeUpdate, ProfileOut
from src.domain.errors import UnprocessableError
from src.gateway.user_profile_gateway import UserProfileGateway


class UserUseCase:
    """Reads and changes the caller's general user and profile."""

    def __init__(self, *, user: CurrentUser, profiles: UserProfileGateway) -> None:
        self.user = user
        self.profiles = profiles

    async def me(self) -> MeOut:
        """The caller's general user and profile (defaults when it has none)."""
        general_user = await self.profiles.get_general_user(self.user.id)
        profile = await self.profiles.get_profile(self.user.id)
        return MeOut(
            id=general_user.id,
            email=self.user.email,
            display_name=general_user.display_name,
            account_name=general_user.account_name,
            avatar_url=general_user.avatar_url,
            created_at=general_user.created_at,
            updated_at=general_user.updated_at,
            profile=ProfileOut.model_validate(profile) if profile else ProfileOut(),
        )

    async def update_me(self, body: MeUpdate) -> MeOut:
        """Apply the fields sent, then return the new state.

        Raises:
            ConflictError: The account name is taken (409).
            UnprocessableError: The default persona is not one the caller can use.
        """
        profile_changes = body.profile_changes()
        persona_id = profile_changes.get("default_virtual_user_id")
        if persona_id is not None and not await self.profiles.persona_is_visible(
            persona_id
        ):
            raise UnprocessableError(
                f"default_virtual_user_id: persona {persona_id} not found"
            )
        if general_user_changes := body.general_user_changes():
            await self.profiles.update_general_user(self.user.id, general_user_changes)
        if profile_changes:
            await self.profiles.update_profile(self.user.id, profile_changes)
        return await self.me()
