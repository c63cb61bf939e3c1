"""AI personas: everyone reads the admins' ones; users manage their own."""

from src.domain.entity.chat import PersonaCreate, PersonaOut, PersonaUpdate
from src.domain.entity.models import VirtualUsers
from src.domain.entity.user import CurrentUser
from src.domain.errors import ForbiddenError, NotFoundError
from src.gateway.llm_gateway import validate_chat_model
from src.gateway.virtual_user_gateway import VirtualUserGateway
from src.settings import Settings


def persona_out(row: VirtualUsers) -> PersonaOut:
    """The API shape of a persona."""
    return PersonaOut.model_validate(row, from_attributes=True)


class VirtualUserUseCase:
    """Persona management for one caller inside the request's transaction."""

    def __init__(
        self, *, user: CurrentUser, personas: VirtualUserGateway, settings: Settings
    ) -> None:
        self.user = user
        self.personas = personas
        self.settings = settings

    async def list_personas(self) -> list[PersonaOut]:
        """The admins' personas (default first), then the caller's own."""
        return [persona_out(p) for p in await self.personas.list_visible(self.user.id)]

    async def create(self, body: PersonaCreate) -> PersonaOut:
        """A persona owned by the caller; its model must be an allowed one."""
        if body.model is not None:
            validate_chat_model(self.settings, body.model)
        row = await self.personas.create(
            owner_id=self.user.id, fields=body.model_dump()
        )
        return persona_out(row)

    async def update(self, persona_id: int, body: PersonaUpdate) -> PersonaOut:
        """Change one of the caller's personas."""
        await self._own(persona_id)
        changes = body.changes()
        if changes.get("model") is not None:
            validate_chat_model(self.settings, changes["model"])
        if not changes:
            row = await self.personas.get(persona_id)
            assert row is not None  # noqa: S101 - checked by _own
            return persona_out(row)
        return persona_out(await self.personas.update(persona_id, changes))

    async def delete(self, persona_id: int) -> None:
        """Delete one of the caller's personas (rooms fall back to the default)."""
        await self._own(persona_id)
        await self.personas.delete(persona_id)

    async def _own(self, persona_id: int) -> VirtualUsers:
        row = await self.personas.get_visible(persona_id, self.user.id)
        if row is None:
            raise NotFoundError(f"Virtual user {persona_id} not found")
        if row.owner_id != self.user.id:
            raise ForbiddenError("Personas provided by the admins cannot be changed")
        return row
