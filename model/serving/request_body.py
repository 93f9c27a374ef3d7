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
import json
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


def read_body(environ: dict[str, Any], stream: Any, max_bytes: int, timeout_s: float) -> bytearray:
    """The whole request body, or BodyError (413 too large, 408 too slow, 400 malformed/incomplete).

    A bytearray grown in place (not a list of chunks joined at the end, which holds the body twice),
    so `take_text` can release it before the JSON is parsed.

    `environ` is the WSGI environ (its `gunicorn.socket`, when present, is what the
    deadline shuts); `stream` the body stream (flask's `request.stream`).
    """
    declared = _declared_length(environ, max_bytes)
    sock = environ.get("gunicorn.socket")
    token = _WATCHDOG.arm(sock, timeout_s) if isinstance(sock, socket.socket) else None
    try:
        body, failure = _read_stream(stream, max_bytes)
    finally:
        fired = _WATCHDOG.disarm(token) if token is not None else False
    _check_arrived(len(body), declared, fired, failure, timeout_s)
    return body


def _declared_length(environ: dict[str, Any], max_bytes: int) -> int | None:
    """The Content-Length in bytes (None when not sent); BodyError when it is not a number or over the limit."""
    declared_text = (environ.get("CONTENT_LENGTH") or "").strip()
    if not declared_text:
        return None
    if not declared_text.isdigit():
        raise BodyError(400, f"The Content-Length header {declared_text[:40]!r} is not a number of bytes.")
    declared = int(declared_text)
    if declared > max_bytes:
        raise BodyError(413, _too_large(max_bytes, f"its Content-Length is {declared:,} bytes"))
    return declared


def _read_stream(stream: Any, max_bytes: int) -> tuple[bytearray, Exception | None]:
    """Every byte the stream gives, and the exception that ended it early (None at a clean end).

    BodyError (413) as soon as more than `max_bytes` arrived; any other failure is returned, not raised: the
    server's reader gives up when the watchdog shuts the socket or the client leaves, and `_check_arrived`
    tells which.
    """
    body = bytearray()
    try:
        while chunk := stream.read(READ_CHUNK_BYTES):
            body += chunk
            if len(body) > max_bytes:
                raise BodyError(413, _too_large(max_bytes, f"more than {max_bytes:,} bytes were sent"))
    except BodyError:
        raise
    except Exception as exc:  # the server's reader gives up when the socket is shut or the client leaves
        return body, exc
    return body, None


def _check_arrived(size: int, declared: int | None, fired: bool, failure: Exception | None, timeout_s: float) -> None:
    """BodyError 408 when the deadline shut the socket, 400 when the body ended before its Content-Length."""
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


def take_text(body: bytearray) -> str:
    """The body as text, decoded the way `json.loads` decodes bytes (UTF-8/16/32, a UTF-8 BOM dropped).

    Why: json.loads(bytes) keeps the bytes alive while it builds the text and then the objects, so a
    32 MB body is held three times. This decodes, then empties `body` (its memory is freed) before
    the caller parses. Raises UnicodeDecodeError (a ValueError) for text that is not UTF-8/16/32.
    """
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    body.clear()
    return text


def _too_large(max_bytes: int, what: str) -> str:
    return (
        f"The request body is too large ({what}); the limit is {max_bytes:,} bytes ({max_bytes >> 20} MiB). "
        "Split the records over several requests, or score files with python -m model.batch_score."
    )


# check_json_items allows twice the arrays/objects a valid request can hold, so a request just over the
# record limit still reaches the record check and its precise message (100k empty containers cost ~7 MB).
# Commas get no slack: each may start a string, and strings are what a body at the limit spends memory on.
ITEM_SLACK = 2


def check_json_items(body: bytes | bytearray, max_records: int, fields_per_record: int) -> None:
    """Refuse, before parsing, a body holding far more JSON items than `max_records` records can need.

    Why: `json.loads` builds every item before the payload can be validated, and a 32 MB body of
    empty lists (`{"data":[[],[],...]}`, ~11 million of them) costs the worker about 0.8 GB for
    seconds; two at once exceed the deployment's memory limit. Counting bytes is cheap (bytes.count
    runs at memory speed) and bounds the items json.loads can create: every container starts with
    `[` or `{`, and every further item in one follows a `,`. A valid request holds one object per
    record plus the body and its list, and at most `fields_per_record` commas per record (between
    fields, between records, inside the race values). Brackets and commas inside strings count too,
    which can only refuse more, never less. Raises BodyError(400) saying what to send instead.
    """
    containers = body.count(b"[") + body.count(b"{")
    allowed = ITEM_SLACK * (max_records + 2)
    if containers > allowed:
        raise BodyError(
            400,
            f"The request body holds {containers:,} JSON arrays/objects ('[' or '{{'), far more than "
            f'{max_records:,} records need. Send {{"data": [{{...}}, ...]}}: one flat object per record, at most '
            f"{max_records:,} records per request.",
        )
    commas = body.count(b",")
    allowed = max_records * fields_per_record + 2
    if commas > allowed:
        raise BodyError(
            400,
            f"The request body holds {commas:,} commas, far more than {max_records:,} records of the contract's "
            f"fields need. Send at most {max_records:,} records per request, each a flat object of those fields.",
        )


_HEADER_TOKEN = threading.local()  # the watchdog token of the request this server thread is reading
# A connection that waited in the worker's queue behind stalled ones still gets this long once a thread
# takes it (its headers are usually in the socket already), so a crowd of stalled clients delays the
# others by this much per WORKER_COUNT x threads of them instead of by the whole deadline.
MIN_HEADER_S = 0.5


def install_header_deadline(seconds: float) -> bool:
    """Give each request `seconds` to send its request line and headers, in this gunicorn gthread worker.

    Why: gunicorn has no header-read timeout. A connection that sends part of its headers and
    stalls holds a worker thread until the client leaves, so WORKER_COUNT x threads (8) such
    connections left health checks unanswered. Here the worker's `handle` (which reads and parses
    the headers on a pool thread) arms the body watchdog on the socket, and `handle_request` (called
    once the headers are parsed) disarms it; when the deadline passes first, the socket's read side
    is shut, the parser sees the connection end and gunicorn closes it. The clock starts when the
    connection is queued for a thread (accepted, or readable again), not when a thread is free.
    Returns False (and changes nothing) when the server is not gunicorn's gthread worker of the
    expected shape.
    """
    try:
        from gunicorn.workers import gthread
    except ImportError:
        return False
    worker = gthread.ThreadWorker
    if getattr(worker, "_risk_header_deadline_s", None) is not None:
        worker._risk_header_deadline_s = seconds
        return True
    if not all(callable(getattr(worker, name, None)) for name in ("handle", "handle_request", "enqueue_req")):
        return False
    original_handle, original_handle_request = worker.handle, worker.handle_request
    original_enqueue = worker.enqueue_req

    def enqueue_req(self: Any, conn: Any) -> Any:
        conn._risk_queued_at = time.monotonic()
        return original_enqueue(self, conn)

    def handle(self: Any, conn: Any) -> Any:
        sock = getattr(conn, "sock", None)
        now = time.monotonic()
        left = max(getattr(conn, "_risk_queued_at", now) + worker._risk_header_deadline_s - now, MIN_HEADER_S)
        token = _WATCHDOG.arm(sock, left) if isinstance(sock, socket.socket) else None
        _HEADER_TOKEN.value = token
        try:
            return original_handle(self, conn)
        finally:
            _headers_read()

    def handle_request(self: Any, req: Any, conn: Any) -> Any:
        _headers_read()
        return original_handle_request(self, req, conn)

    worker._risk_header_deadline_s = seconds
    worker.handle, worker.handle_request, worker.enqueue_req = handle, handle_request, enqueue_req
    return True


def _headers_read() -> None:
    """Disarm this thread's header deadline, if one is armed."""
    token = getattr(_HEADER_TOKEN, "value", None)
    _HEADER_TOKEN.value = None
    if token is not None:
        _WATCHDOG.disarm(token)
