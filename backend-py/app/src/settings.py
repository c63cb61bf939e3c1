"""Application settings: one class, read from the environment and env files."""

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[3]
"""The repository root (backend-py/app/src/settings.py -> repo)."""

DEV_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"  # noqa: S105
"""The Supabase CLI's local default secret; refused in production."""


class Settings(BaseSettings):
    """Every setting of the backend; documented in env/backend/example.env."""

    model_config = SettingsConfigDict(
        env_file=(REPO_ROOT / "env/backend/local.env",),
        env_file_encoding="utf-8",
        extra="ignore",
        # `OPENAI_API_KEY=` (empty) means unset, not an empty key.
        env_ignore_empty=True,
        case_sensitive=False,
    )

    # Runtime
    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1)
    shutdown_grace_s: int = Field(default=10, ge=0)
    """On SIGTERM, how long in-flight requests and streams may still run."""
    log_level: str = "INFO"
    log_json: bool = True
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:3000"])

    # Database
    database_url: str | None = None
    embedded_db_dir: Path = Path(".data/postgres")
    # Few connections on purpose: Postgres runs about two statements per core
    # at once, and more backends only add switching. A chat turn holds one
    # only for its short transactions, never while the model writes.
    db_pool_size: int = Field(default=6, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    # Finished answers are saved on connections of their own: an answer the
    # user has read never queues behind new turns waiting for DB_POOL_SIZE's.
    db_answer_pool_size: int = Field(default=3, ge=1)
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    # Client-side bound on any statement: a database that stops answering (a
    # frozen host, a network partition) cannot enforce its own timeout.
    db_command_timeout_s: float = Field(default=20.0, gt=0)
    # The pool's wait is the process's admission queue: see example.env.
    db_pool_timeout_s: float = Field(default=30.0, gt=0)

    # Supabase and auth
    supabase_url: str | None = None
    supabase_anon_key: SecretStr | None = None
    supabase_service_role_key: SecretStr | None = None
    # Unset by default: env/backend/local.env sets the development secret.
    supabase_jwt_secret: SecretStr | None = None
    jwt_algorithms: list[str] = Field(
        default_factory=lambda: ["ES256", "RS256", "HS256"]
    )
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None
    jwt_leeway_s: int = Field(default=30, ge=0)
    jwks_url: str | None = None
    jwks_cache_ttl_s: int = Field(default=600, ge=0)
    jwks_timeout_s: float = Field(default=3.0, gt=0)
    allow_anonymous_users: bool = False
    dev_jwt_private_key_path: Path | None = None
    dev_token_ttl_s: int = Field(default=3600, gt=0)

    # LLM and embeddings
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_chat_model: str = "gpt-4o-mini"
    openai_embedding_model: str = "text-embedding-3-small"
    allowed_chat_models: list[str] = Field(
        default_factory=lambda: ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1"]
    )
    embedding_dimensions: int = 384
    embedding_batch_size: int = Field(default=32, ge=1)
    llm_temperature: float = Field(default=0.3, ge=0, le=2)
    llm_max_tokens: int = Field(default=1024, ge=1)
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0)
    llm_max_connections: int = Field(default=1000, ge=1)

    # LangSmith tracing
    langsmith_tracing: bool = False
    langsmith_api_key: SecretStr | None = None
    langsmith_endpoint: str | None = None
    langsmith_project: str = "rag-chat"

    # Limits
    max_message_chars: int = Field(default=4000, ge=1)
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    max_upload_bytes: int = Field(default=10_485_760, ge=1024)
    max_header_bytes: int = Field(default=32_768, ge=4096)
    body_read_timeout_s: float = Field(default=60.0, gt=0)
    max_page_size: int = Field(default=100, ge=1)
    max_rooms_per_user: int = Field(default=500, ge=1)
    max_search_k: int = Field(default=50, ge=1)
    rate_limit_chat_per_minute: int = Field(default=30, ge=1)
    rate_limit_ingest_per_minute: int = Field(default=20, ge=1)

    # Room events (GET /api/chat-rooms/{id}/events)
    room_events_max_streams_per_user: int = Field(default=5, ge=1)
    room_events_keepalive_s: float = Field(default=15.0, gt=0)
    room_events_token_interval_s: float = Field(default=0.05, ge=0)
    """How long an answer's tokens gather before one ``answer.token`` is sent."""

    # Knowledge: chunking and retrieval
    chunk_size: int = Field(default=1000, ge=100)
    chunk_overlap: int = Field(default=150, ge=0)
    text_search_config: str = "english"
    retrieval_k: int = Field(default=5, ge=1)
    retrieval_vector_weight: float = Field(default=1.0, ge=0)
    retrieval_text_weight: float = Field(default=1.0, ge=0)
    retrieval_rrf_k: int = Field(default=60, ge=1)
    retrieval_candidates: int = Field(default=20, ge=1)
    retrieval_text_candidates: int = Field(default=10, ge=1)
    retrieval_page_weight: float = Field(default=1.0, ge=0)
    retrieval_pages: int = Field(default=5, ge=1)
    retrieval_text_scan_limit: int = Field(default=100, ge=1)
    hnsw_ef_search: int = Field(default=48, ge=1)
    history_token_budget: int = Field(default=2000, ge=0)

    # Ingestion worker
    worker_enabled: bool = True
    worker_poll_interval_s: float = Field(default=5.0, gt=0)
    worker_max_attempts: int = Field(default=5, ge=1)
    worker_concurrency: int = Field(default=1, ge=1)
    worker_lease_s: float = Field(default=30.0, gt=0)
    worker_retry_base_s: float = Field(default=10.0, ge=0)
    worker_chunks_per_turn: int = Field(default=512, ge=1)
    """New chunks a document may embed per claim; a larger one takes turns."""
    parse_timeout_s: float = Field(default=60.0, gt=0)
    parse_memory_mb: int = Field(default=1024, ge=128)

    @model_validator(mode="after")
    def _refuse_unsafe_production_values(self) -> Self:
        if self.environment != "production":
            return self
        secret = self.supabase_jwt_secret
        if secret is not None and secret.get_secret_value() == DEV_JWT_SECRET:
            raise ValueError(
                "SUPABASE_JWT_SECRET is the development default; set the "
                "project's JWT secret, or leave it unset when the project signs "
                "tokens with asymmetric keys only (JWKS)"
            )
        if self.database_url is None:
            raise ValueError("DATABASE_URL must be set in production")
        if self.dev_jwt_private_key_path is not None:
            raise ValueError("DEV_JWT_PRIVATE_KEY_PATH must not be set in production")
        return self

    @property
    def embedded_db_path(self) -> Path:
        """The embedded database folder, relative paths taken from the repo root."""
        path = self.embedded_db_dir
        return path if path.is_absolute() else REPO_ROOT / path

    @property
    def expected_issuer(self) -> str | None:
        """The `iss` a token must carry, when one is known."""
        if self.jwt_issuer:
            return self.jwt_issuer
        if self.supabase_url:
            return f"{self.supabase_url.rstrip('/')}/auth/v1"
        return None

    @property
    def resolved_jwks_url(self) -> str | None:
        """Where the project's signing keys are published."""
        if self.jwks_url:
            return self.jwks_url
        if self.supabase_url:
            return f"{self.supabase_url.rstrip('/')}/auth/v1/.well-known/jwks.json"
        return None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
