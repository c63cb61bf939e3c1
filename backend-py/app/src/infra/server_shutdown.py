"""The server's shutdown as the app sees it, from its first moment.

On SIGTERM uvicorn stops accepting connections and gives in-flight requests
``SHUTDOWN_GRACE_S`` to finish; the app's lifespan ends only after that. A
response that never ends by itself (a room's event stream) would hold the
shutdown for the whole grace period: what keeps such responses registers here
(:func:`on_server_shutdown`), and the server's HTTP protocol
(``src.infra.http_protocol``) calls :func:`server_shutting_down` as the
shutdown begins.
"""

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

_listeners: list[Callable[[], None]] = []


def on_server_shutdown(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` when the server starts shutting down.

    Returns:
        What removes it again (the app's lifespan ends).
    """
    _listeners.append(listener)

    def remove() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return remove


def server_shutting_down() -> None:
    """Tell the listeners that the server is shutting down (once per shutdown)."""
    listeners = list(_listeners)
    _listeners.clear()
    for listener in listeners:
        listener()
    if listeners:
        logger.info("shutdown: ended the open event streams")
