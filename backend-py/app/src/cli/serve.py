"""``make run``: serve the API with uvicorn on HOST:PORT (from settings)."""

import uvicorn

from src.infra.http_protocol import BoundedHeadersProtocol
from src.settings import get_settings


def main() -> None:
    """Start uvicorn with the configured host, port and workers."""
    settings = get_settings()
    uvicorn.run(
        "src.app:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        http=BoundedHeadersProtocol,  # 431 on oversized headers, as they arrive
        proxy_headers=True,
        access_log=False,  # RequestContextMiddleware writes one line per request
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


if __name__ == "__main__":
    main()
