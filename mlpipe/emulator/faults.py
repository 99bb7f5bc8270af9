"""Opt-in fault injection, to reproduce how Terraform's AWS provider reacts to a slow or failing emulator.

Never active unless ``MLPIPE_EMULATOR_FAULTS`` is set in the emulator's environment (the ``Emulator``
test helper passes it with ``env=``). The value is a comma-separated list of:

* ``lambda.create.delay=SECONDS``: every ``CreateFunction`` takes that much longer, between moto's
  "does it exist?" check and its store (a saturated machine; it also widens the window in which
  concurrent creates of one name race). Used to show that provider 5.100.0 waits for a slow answer:
  its SDK has no HTTP timeout, so slowness alone never makes it send the create again.
* ``lambda.create.fail_after_commit=N``: the first N ``CreateFunction`` calls store the function and
  then fail with HTTP 500 (an answer lost after the emulator committed). The SDK retries at once;
  without the all-or-nothing create patch that retry gets 409 for minutes.
* ``lambda.create.lose_answer=N``: the first N successful ``CreateFunction`` answers are computed
  (the function is stored) and then lost: the connection is reset instead of answered, as on a
  loaded machine. The SDK sends the create again; ``replay.py`` answers it with the lost answer.

Faults are installed under the emulator's own patches, so the patches see them as moto behaviour.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

ENV_VAR = "MLPIPE_EMULATOR_FAULTS"
KNOWN = ("lambda.create.delay", "lambda.create.fail_after_commit", "lambda.create.lose_answer")


def parse_faults(spec: str) -> dict[str, float]:
    """``"a=1,b=2.5"`` -> ``{"a": 1.0, "b": 2.5}``; unknown names or bad numbers raise ValueError."""
    faults: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, value = item.partition("=")
        if name not in KNOWN:
            raise ValueError(f"unknown emulator fault {name!r} (known: {', '.join(KNOWN)})")
        faults[name] = float(value or "1")
    return faults


def install_faults(spec: str | None = None) -> dict[str, float]:
    """Install the faults named in ``spec`` (default: the environment variable); returns them."""
    faults = parse_faults(os.environ.get(ENV_VAR, "") if spec is None else spec)
    if not faults:
        return faults
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda.responses import LambdaResponse

    original = LambdaResponse.create_function
    original_store = LambdaBackend.create_function
    delay = faults.get("lambda.create.delay", 0.0)
    failures = {"left": int(faults.get("lambda.create.fail_after_commit", 0))}
    lock = threading.Lock()

    def slow_store(self: Any, spec: dict[str, Any]) -> Any:
        time.sleep(delay)
        return original_store(self, spec)

    def create_function(self: Any) -> Any:
        result = original(self)
        with lock:
            fail, failures["left"] = failures["left"] > 0, failures["left"] - 1
        if fail:
            raise RuntimeError("injected fault: CreateFunction failed after the function was stored")
        return result

    LambdaResponse.create_function = create_function  # type: ignore[method-assign]
    if delay:
        LambdaBackend.create_function = slow_store  # type: ignore[method-assign]
    print(f"mlpipe emulator: FAULTS INJECTED {faults}", file=sys.stderr, flush=True)
    return faults


def lose_answers(app: Callable[..., Iterable[bytes]], faults: dict[str, float]) -> Callable[..., Iterable[bytes]]:
    """Wrap the server's WSGI app (outermost) so that ``lambda.create.lose_answer`` answers are lost."""
    left = {"n": int(faults.get("lambda.create.lose_answer", 0))}
    if not left["n"]:
        return app
    lock = threading.Lock()

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        create = environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").rstrip("/").endswith(
            "/2015-03-31/functions"
        )
        if not create:
            return app(environ, start_response)
        answer: dict[str, Any] = {}

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answer["status"], answer["headers"] = status, headers
            return lambda _data: None

        body = b"".join(app(environ, hold))
        with lock:
            lose = left["n"] > 0 and str(answer["status"]).startswith("2")
            left["n"] -= int(lose)
        if lose:
            print("mlpipe emulator: FAULT: CreateFunction answered, answer lost (connection reset)", file=sys.stderr)
            connection = environ["werkzeug.socket"]
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Closing the descriptor itself (the handler's file objects keep a socket.close() from
            # doing so): with a zero linger the client gets a reset, and the answer never leaves.
            os.close(connection.detach())
            raise ConnectionResetError("injected fault: the CreateFunction answer was lost")
        start_response(answer["status"], answer["headers"])
        return [body]

    return wrapper
