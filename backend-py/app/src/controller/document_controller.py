"""``/api/documents``: add (text or file), list, read and delete documents.

``POST`` takes either a JSON body or a ``multipart/form-data`` upload, told
apart by ``Content-Type``; both answer 202 with the queued document (200 when
the caller already has the same content there) and the client polls
``GET /api/documents/{id}`` until ``status`` is ``ready`` or ``failed``.
"""

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema
from starlette.datastructures import UploadFile

from src.controller.dependencies import (
    CurrentUserDep,
    PageLimitDep,
    RateLimitsDep,
    SettingsDep,
    UserSessionDep,
)
from src.domain.entity.document import (
    DocumentCreate,
    DocumentList,
    DocumentOut,
    UserVisibility,
)
from src.domain.entity.request import MAX_ROW_ID, RequestModel, RowId
from src.domain.errors import (
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from src.domain.service.document_parsing import (
    SUPPORTED_EXTENSIONS,
    SUPPORTED_MEDIA_TYPES,
)
from src.gateway.document_gateway import DocumentGateway
from src.middleware.error_handlers import ErrorBody
from src.settings import Settings
from src.usecase.document_usecase import AddedDocument, DocumentUseCase, Upload

router = APIRouter(prefix="/api/documents", tags=["knowledge"])

ModelT = TypeVar("ModelT", bound=BaseModel)
DocumentId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


class UploadForm(RequestModel):
    """The form fields that come with an uploaded file."""

    model_config = ConfigDict(extra="forbid")

    # A form has no null: an absent or empty title is the file's name.
    title: str | SkipJsonSchema[None] = Field(
        default=None, min_length=1, max_length=200
    )
    visibility: UserVisibility = "private"
    chat_room_id: RowId | SkipJsonSchema[None] = None


UPLOAD_TYPES = (
    f"A file named *{', *'.join(SUPPORTED_EXTENSIONS)}, or of type "
    f"{', '.join(SUPPORTED_MEDIA_TYPES)} (the extension decides; the part's "
    "Content-Type is read when the name has none of these); other files are 415."
)

_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentCreate.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": UPLOAD_TYPES,
                        },
                        **UploadForm.model_json_schema()["properties"],
                    },
                },
                "encoding": {"file": {"contentType": ", ".join(SUPPORTED_MEDIA_TYPES)}},
            },
        },
    }
}


async def within_ingestion_rate_limit(
    user: CurrentUserDep, limits: RateLimitsDep, settings: SettingsDep
) -> None:
    """Refuse past ``RATE_LIMIT_INGEST_PER_MINUTE`` (429 with ``Retry-After``)."""
    await limits.take(
        user.id,
        bucket="ingestion",
        per_minute=settings.rate_limit_ingest_per_minute,
        what="document uploads",
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    description="Store a document (JSON text or an uploaded file) and queue its "
    f"indexing. {UPLOAD_TYPES}",
    openapi_extra=_REQUEST_BODY,
    dependencies=[Depends(within_ingestion_rate_limit)],
    responses={
        200: {"model": DocumentOut, "description": "Already stored"},
        413: {"model": ErrorBody, "description": "File over MAX_UPLOAD_BYTES"},
        415: {"model": ErrorBody, "description": "Unsupported file or body type"},
        422: {
            "model": ErrorBody,
            "description": "Invalid body, form field or file content",
        },
        429: {"model": ErrorBody, "description": "Over RATE_LIMIT_INGEST_PER_MINUTE"},
    },
)
async def add_document(
    request: Request,
    response: Response,
    user: CurrentUserDep,
    session: UserSessionDep,
    settings: SettingsDep,
) -> DocumentOut:
    """Store a document (JSON text or an uploaded file) and queue its indexing."""
    use_case = DocumentUseCase(DocumentGateway(session))
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        body = _validated(DocumentCreate, await request.body())
        added = await use_case.add_text(user=user, body=body)
    elif media_type == "multipart/form-data":
        upload = await _read_upload(request, settings)
        added = await use_case.add_upload(user=user, upload=upload)
    else:
        raise UnsupportedMediaTypeError(
            "send application/json or a multipart/form-data file upload"
        )
    return _respond(added, response)


@router.get("")
async def list_documents(
    user: CurrentUserDep,
    session: UserSessionDep,
    limit: PageLimitDep,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> DocumentList:
    """The caller's documents with their indexing status, newest first."""
    documents = await DocumentUseCase(DocumentGateway(session)).list_own(
        user=user, limit=limit, offset=offset
    )
    return DocumentList(items=[DocumentOut.model_validate(d) for d in documents])


@router.get("/{document_id}")
async def get_document(
    document_id: DocumentId, _: CurrentUserDep, session: UserSessionDep
) -> DocumentOut:
    """One document the caller may read (own, shared, or of their rooms)."""
    document = await DocumentUseCase(DocumentGateway(session)).get(
        document_id=document_id
    )
    return DocumentOut.model_validate(document)


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(
    document_id: DocumentId, user: CurrentUserDep, session: UserSessionDep
) -> None:
    """Delete one of the caller's documents and its chunks."""
    await DocumentUseCase(DocumentGateway(session)).delete(
        user=user, document_id=document_id
    )


def _respond(added: AddedDocument, response: Response) -> DocumentOut:
    if not added.created:
        response.status_code = status.HTTP_200_OK
    return DocumentOut.model_validate(added.document)


def _validated(model: type[ModelT], data: bytes | dict[str, Any]) -> ModelT:
    """Validate a body by hand, reporting errors as FastAPI's own 422 does."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from exc


async def _read_upload(request: Request, settings: Settings) -> Upload:
    # The whole body is bounded by the body-limit middleware; the file here.
    form = await request.form(max_files=1, max_fields=10)
    file = form.get("file")
    fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
    fields = {k: v for k, v in fields.items() if v != ""}
    parsed = _validated(UploadForm, fields)
    if not isinstance(file, UploadFile):
        raise RequestValidationError(
            [{"loc": ("body", "file"), "msg": "a file is required", "type": "missing"}]
        )
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise _too_large(settings)
    return Upload(
        filename=file.filename or "upload",
        content_type=file.content_type,
        data=data,
        title=parsed.title,
        visibility=parsed.visibility,
        chat_room_id=parsed.chat_room_id,
    )


def _too_large(settings: Settings) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"files are limited to {settings.max_upload_bytes} bytes"
    )
