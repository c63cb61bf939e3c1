"""Serve a ``http.server`` on 127.0.0.1 from a background thread, for tests."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer


@contextmanager
def serving(httpd: ThreadingHTTPServer) -> Iterator[str]:
    """Serve ``httpd`` until the block ends; yields ``http://127.0.0.1:<port>``."""
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
