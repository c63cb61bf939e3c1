"""Domain errors. Each carries its HTTP status; one handler renders them all."""

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error the API reports on purpose.

    Attributes:
        status_code: The HTTP status the API answers with.
        code: A stable machine-readable name for clients.
        message: A sentence for people.
        headers: Extra response headers (``WWW-Authenticate``, ``Retry-After``).
    """

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"error": self.code, "message": self.message}


class BadRequestError(DomainError):
    """The request is understood but not acceptable."""


class NotFoundError(DomainError):
    """The thing does not exist, or the caller may not know it exists."""

    status_code = 404
    code = "not_found"


class ConflictError(DomainError):
    """The request conflicts with the current state (e.g. a taken name)."""

    status_code = 409
    code = "conflict"


class ForbiddenError(DomainError):
    """The caller is known but may not do this."""

    status_code = 403
    code = "forbidden"


class PayloadTooLargeError(DomainError):
    """The body or upload is over its limit."""

    status_code = 413
    code = "payload_too_large"


class RequestTimeoutError(DomainError):
    """The client did not send the request body in time."""

    status_code = 408
    code = "request_timeout"


class HeadersTooLargeError(DomainError):
    """The request's headers are over their limit."""

    status_code = 431
    code = "request_header_fields_too_large"


class UnsupportedMediaTypeError(DomainError):
    """The content type is not one the endpoint reads."""

    status_code = 415
    code = "unsupported_media_type"


class UnprocessableError(DomainError):
    """The input is well-formed but invalid."""

    status_code = 422
    code = "validation_error"


class RateLimitedError(DomainError):
    """Too many requests; retry after the given number of seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class TooManyStreamsError(DomainError):
    """The user holds as many open event streams as allowed."""

    status_code = 429
    code = "too_many_streams"


class AuthenticationError(DomainError):
    """The bearer token is missing or invalid (RFC 6750)."""

    status_code = 401
    code = "invalid_token"

    def __init__(self, message: str) -> None:
        description = message.replace('"', "'")
        super().__init__(
            message,
            headers={
                "WWW-Authenticate": (
                    f'Bearer error="invalid_token", error_description="{description}"'
                )
            },
        )


class ServiceUnavailableError(DomainError):
    """A dependency (database, key server) is down; try again later."""

    status_code = 503
    code = "service_unavailable"


class ServerBusyError(ServiceUnavailableError):
    """The process is at capacity: no database connection freed up in time.

    The database may well be idle: its connections are held by requests this
    process is too busy to move on. Distinct from an unreachable database.
    """

    code = "server_busy"


class LLMProviderError(DomainError):
    """The language-model or embedding provider failed."""

    status_code = 502
    code = "llm_provider_error"


class LLMRateLimitError(LLMProviderError):
    """The provider refused for rate limits after our retries."""

    code = "llm_rate_limited"


class LLMTimeoutError(DomainError):
    """The provider did not answer in time."""

    status_code = 504
    code = "llm_timeout"


class MigrationError(Exception):
    """The migration history and the migration files disagree."""
