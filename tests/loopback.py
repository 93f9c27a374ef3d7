"""A stand-in HTTP server on loopback for client tests: a broken or hostile endpoint, never the project's own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POLL_S = 0.02


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], daemon_threads: bool = False) -> Iterator[str]:
    """`handler` on a free loopback port, in a thread; yields the scoring URL and stops the server on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = daemon_threads
    # serve_forever polls for shutdown every poll_interval (0.5 s by default): each test would wait that long.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_S}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/score"
    finally:
        server.shutdown()
        server.server_close()
