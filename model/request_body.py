"""Read a scoring request's body within a size limit and a deadline.

Why this exists: gunicorn (under azmlinfsrv) hands the body to the application as a
blocking stream with no time limit, so a client that sends headers and then a partial
body (or a huge `Content-Length`) holds a worker thread until it gives up. Here the
declared length is checked before reading, the bytes read are counted, and a
per-process watchdog thread half-closes the socket's read side when the deadline
passes, which wakes the blocked read at once. The caller turns the errors into
413 / 408 / 400 answers with `Connection: close`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import Any

READ_CHUNK_BYTES = 256 * 1024


class BodyError(Exception):
    """The body cannot be read; `status` is the HTTP status to answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Watchdog:
    """One daemon thread per process that shuts the read side of sockets whose deadline passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._socks: dict[int, socket.socket] = {}
        self._fired: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, seconds: float) -> int:
        token = next(self._ids)
        with self._cond:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="risk-body-watchdog", daemon=True)
                self._thread.start()
            self._socks[token] = sock
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            self._cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """Stop watching; True if the deadline had already fired for this token."""
        with self._cond:
            self._socks.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._socks:
                    heapq.heappop(self._heap)  # disarmed
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                sock = self._socks.pop(token)
                self._fired.add(token)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)  # the blocked recv() returns at once


_WATCHDOG = _Watchdog()


def read_body(environ: dict[str, Any], stream: Any, max_bytes: int, timeout_s: float) -> bytes:
    """The whole request body, or BodyError (413 too large, 408 too slow, 400 malformed/incomplete).

    `environ` is the WSGI environ (its `gunicorn.socket`, when present, is what the
    deadline shuts); `stream` the body stream (flask's `request.stream`).
    """
    declared_text = (environ.get("CONTENT_LENGTH") or "").strip()
    declared: int | None = None
    if declared_text:
        if not declared_text.isdigit():
            raise BodyError(400, f"The Content-Length header {declared_text[:40]!r} is not a number of bytes.")
        declared = int(declared_text)
        if declared > max_bytes:
            raise BodyError(413, _too_large(max_bytes, f"its Content-Length is {declared:,} bytes"))
    sock = environ.get("gunicorn.socket")
    token = _WATCHDOG.arm(sock, timeout_s) if isinstance(sock, socket.socket) else None
    parts: list[bytes] = []
    size = 0
    failure: Exception | None = None
    try:
        while True:
            chunk = stream.read(READ_CHUNK_BYTES)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise BodyError(413, _too_large(max_bytes, f"more than {max_bytes:,} bytes were sent"))
    except BodyError:
        raise
    except Exception as exc:  # the server's reader gives up when the socket is shut or the client leaves
        failure = exc
    finally:
        fired = _WATCHDOG.disarm(token) if token is not None else False
    if fired:
        raise BodyError(
            408,
            f"The request body did not arrive within {timeout_s:g} s ({size:,} bytes received). "
            "Send the whole body at once; a request is small JSON.",
        )
    if failure is not None or (declared is not None and size < declared):
        raise BodyError(
            400,
            f"The request body ended early ({size:,} of {declared if declared is not None else '?'} bytes): "
            "the connection closed while sending. Send the whole body.",
        )
    return b"".join(parts)


def _too_large(max_bytes: int, what: str) -> str:
    return (
        f"The request body is too large ({what}); the limit is {max_bytes:,} bytes ({max_bytes >> 20} MiB). "
        "Split the records over several requests, or score files with python -m model.batch_score."
    )
