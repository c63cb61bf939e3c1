"""Rooms, their members and their history."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from src.controller.dependencies import (
    CurrentUserDep,
    PageLimitDep,
    SettingsDep,
    UserSessionDep,
)
from src.domain.entity.chat import (
    MemberAdd,
    MessagePage,
    RoomCreate,
    RoomOut,
    RoomUpdate,
)
from src.domain.entity.request import MAX_ROW_ID
from src.gateway.chat_room_gateway import ChatRoomGateway
from src.gateway.message_gateway import MessageGateway
from src.gateway.virtual_user_gateway import VirtualUserGateway
from src.usecase.chat_room_usecase import ChatRoomUseCase

router = APIRouter(prefix="/api/chat-rooms", tags=["chat rooms"])

RoomId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def chat_room_use_case(
    user: CurrentUserDep, session: UserSessionDep, settings: SettingsDep
) -> ChatRoomUseCase:
    """The room use case on the request's transaction."""
    return ChatRoomUseCase(
        user=user,
        rooms=ChatRoomGateway(session),
        personas=VirtualUserGateway(session),
        messages=MessageGateway(session),
        settings=settings,
    )


RoomUseCaseDep = Annotated[ChatRoomUseCase, Depends(chat_room_use_case)]


@router.get("")
async def list_rooms(use_case: RoomUseCaseDep, limit: PageLimitDep) -> list[RoomOut]:
    """The caller's rooms, newest activity first, with a last-message preview."""
    return await use_case.list_rooms(limit)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_room(body: RoomCreate, use_case: RoomUseCaseDep) -> RoomOut:
    """Create a room owned by the caller."""
    return await use_case.create(body)


@router.get("/{room_id}")
async def get_room(room_id: RoomId, use_case: RoomUseCaseDep) -> RoomOut:
    """A room with its members (404 unless the caller is one)."""
    return await use_case.get(room_id)


@router.patch("/{room_id}")
async def update_room(
    room_id: RoomId, body: RoomUpdate, use_case: RoomUseCaseDep
) -> RoomOut:
    """Rename a room or change its persona (owner only)."""
    return await use_case.update(room_id, body)


@router.delete("/{room_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_room(room_id: RoomId, use_case: RoomUseCaseDep) -> Response:
    """Delete a room and its messages (owner only)."""
    await use_case.delete(room_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{room_id}/members", status_code=status.HTTP_201_CREATED)
async def add_member(
    room_id: RoomId, body: MemberAdd, use_case: RoomUseCaseDep
) -> RoomOut:
    """Add a user by id or account name (owner only)."""
    return await use_case.add_member(room_id, body)


@router.delete("/{room_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    room_id: RoomId, user_id: uuid.UUID, use_case: RoomUseCaseDep
) -> Response:
    """The owner removes a member, or a member leaves."""
    await use_case.remove_member(room_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{room_id}/messages")
async def list_messages(
    room_id: RoomId,
    use_case: RoomUseCaseDep,
    limit: PageLimitDep,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="a message id")
    ] = None,
) -> MessagePage:
    """History, oldest to newest; pass ``next_before`` as ``before`` for older."""
    return await use_case.history(room_id, before=before, limit=limit)
