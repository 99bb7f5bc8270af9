"""A request the SDK sends again after losing the emulator's answer gets that answer, not a second run.

Why: on a loaded machine the emulator's answer to a request is now and then lost on its way to the
provider (docs/emulator-notes.md: "IAM CreateRole already exists under the bench's load", "A read's
answer lost twice in a row"). The AWS SDKs then send the same request again, marked as such: the
same ``amz-sdk-invocation-id`` (one per operation call, kept across its retries) and
``amz-sdk-request: attempt=2; max=N``. For a read that costs one more round trip; for a create it
meets the object the first attempt made, and the apply stops with "already exists" for an object it
made itself.

This WSGI layer keeps the successful answers (2xx) of recent requests by invocation id, method, path
and body, and answers a re-sent request (attempt 2 or later) with the stored answer, as if the first
one had arrived. If the first attempt is still being handled, the retry waits for it. Everything
else runs exactly as before: a first attempt, a request without SDK headers, a new call of the same
operation (a new invocation id: AWS's own answer, e.g. ``EntityAlreadyExists``, is kept), a retry
whose body differs, a retry after an error answer, and large requests or answers (not stored).
"""

from __future__ import annotations

import hashlib
import io
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Answers kept (least recently stored dropped first); each at most MAX_BODY bytes, so at most ~64 MiB.
CAPACITY = 2048
#: Requests and answers larger than this are passed through and never stored (object uploads, downloads).
MAX_BODY = 32 * 1024
#: How long a retry waits for its first attempt, if that is still being handled.
WAIT_FOR_FIRST_S = 60.0
_ATTEMPT = re.compile(r"(?:^|;)\s*attempt=(\d+)")


@dataclass(frozen=True)
class _Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes


def attempt_number(header: str) -> int:
    """``"attempt=2; max=5"`` -> 2; 1 when the header is missing or unreadable."""
    match = _ATTEMPT.search(header or "")
    return int(match.group(1)) if match else 1


class ReplayRetriedRequests:
    """Wraps the emulator's WSGI app; thread-safe (the server handles each connection in a thread)."""

    def __init__(self, app: WSGIApp, capacity: int = CAPACITY, log: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.capacity = capacity
        self.replayed = 0
        self._answers: OrderedDict[tuple[str, ...], _Answer] = OrderedDict()
        self._running: dict[tuple[str, ...], threading.Event] = {}
        self._lock = threading.Lock()
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        invocation = environ.get("HTTP_AMZ_SDK_INVOCATION_ID", "")
        length = environ.get("CONTENT_LENGTH") or "0"
        if not invocation or not length.isdigit() or int(length) > MAX_BODY or "HTTP_TRANSFER_ENCODING" in environ:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(length)) if int(length) else b""
        environ["wsgi.input"] = io.BytesIO(body)
        key = (
            invocation,
            environ.get("REQUEST_METHOD", ""),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            hashlib.sha256(body).hexdigest(),
        )
        attempt = attempt_number(environ.get("HTTP_AMZ_SDK_REQUEST", ""))
        if attempt > 1:
            answer = self._stored(key)
            if answer is not None:
                with self._lock:
                    self.replayed += 1
                self._log(
                    f"mlpipe emulator: answered a re-sent request (attempt {attempt}, invocation {invocation}, "
                    f"{key[1]} {key[2]}) with the answer its first attempt got"
                )
                start_response(answer.status, list(answer.headers))
                return [answer.body]
        return self._run_and_store(key, environ, start_response)

    def _stored(self, key: tuple[str, ...]) -> _Answer | None:
        with self._lock:
            running = self._running.get(key)
        if running is not None:
            running.wait(WAIT_FOR_FIRST_S)
        with self._lock:
            return self._answers.get(key)

    def _run_and_store(
        self, key: tuple[str, ...], environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        done = threading.Event()
        with self._lock:
            self._running.setdefault(key, done)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, list(headers)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            result = self.app(environ, capture)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            status = str(captured.get("status", ""))
            if status.startswith("2") and len(body) <= MAX_BODY:
                with self._lock:
                    self._answers[key] = _Answer(status, captured["headers"], body)
                    self._answers.move_to_end(key)
                    while len(self._answers) > self.capacity:
                        self._answers.popitem(last=False)
            return [body]
        finally:
            with self._lock:
                if self._running.get(key) is done:
                    del self._running[key]
            done.set()
