"""A request re-sent by the SDK after a lost answer gets that answer; nothing else is ever replayed.

The layer (``mlpipe/emulator/replay.py``) sits in front of moto: unit tests drive it with a counting
WSGI app, and one test drives a real emulator with boto3, whose requests carry the same SDK headers
as the provider's (``amz-sdk-invocation-id``, ``amz-sdk-request``).
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from mlpipe.emulator.process import Emulator
from mlpipe.emulator.replay import MAX_BODY, ReplayRetriedRequests, attempt_number


class _Counting:
    """A WSGI app that answers ``<status>`` with a body naming how many times it ran."""

    def __init__(self, status: str = "200 OK", size: int = 0, gate: threading.Event | None = None) -> None:
        self.calls = 0
        self.status, self.size, self.gate = status, size, gate
        self.bodies: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.calls += 1
        self.bodies.append(environ["wsgi.input"].read())
        if self.gate is not None:
            self.gate.wait(10)
        start_response(self.status, [("Content-Type", "text/plain"), ("X-Run", str(self.calls))])
        return [f"run {self.calls}".encode() + b"." * self.size]


def _call(
    app: ReplayRetriedRequests, invocation: str | None = "inv-1", attempt: int = 1, body: bytes = b"Action=CreateRole"
) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    if invocation is not None:
        environ["HTTP_AMZ_SDK_INVOCATION_ID"] = invocation
        environ["HTTP_AMZ_SDK_REQUEST"] = f"attempt={attempt}; max=5"
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    answer = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], answer


def test_a_resent_request_gets_the_first_answer_and_runs_once() -> None:
    inner = _Counting()
    app = ReplayRetriedRequests(inner, log=lambda _l: None)
    assert _call(app) == ("200 OK", {"Content-Type": "text/plain", "X-Run": "1"}, b"run 1")
    assert _call(app, attempt=2) == ("200 OK", {"Content-Type": "text/plain", "X-Run": "1"}, b"run 1")
    assert _call(app, attempt=3) == ("200 OK", {"Content-Type": "text/plain", "X-Run": "1"}, b"run 1")
    assert inner.calls == 1 and app.replayed == 2
    assert inner.bodies == [b"Action=CreateRole"]  # the app read the body the layer had read first


@pytest.mark.parametrize(
    ("second", "why"),
    [
        ({"invocation": "inv-2", "attempt": 2}, "another call of the operation: AWS's answer (already exists)"),
        ({"attempt": 2, "body": b"Action=DeleteRole"}, "same id, another request: never someone else's answer"),
        ({"attempt": 1}, "a first attempt always runs"),
        ({"invocation": None}, "no SDK headers"),
    ],
)
def test_everything_but_a_resend_of_the_same_request_runs(second: dict[str, Any], why: str) -> None:
    inner = _Counting()
    app = ReplayRetriedRequests(inner, log=lambda _l: None)
    _call(app)
    assert _call(app, **second)[2] == b"run 2", why
    assert inner.calls == 2 and app.replayed == 0


@pytest.mark.parametrize("status", ["409 Conflict", "500 Internal Server Error", "400 Bad Request"])
def test_a_retry_after_an_error_answer_runs_again(status: str) -> None:
    inner = _Counting(status)
    app = ReplayRetriedRequests(inner, log=lambda _l: None)
    _call(app)
    assert _call(app, attempt=2)[2] == b"run 2"
    assert inner.calls == 2


def test_large_requests_and_answers_are_passed_through_never_stored() -> None:
    big_answer = _Counting(size=MAX_BODY)
    app = ReplayRetriedRequests(big_answer, log=lambda _l: None)
    _call(app)
    assert _call(app, attempt=2)[2].startswith(b"run 2")
    small = _Counting()
    app = ReplayRetriedRequests(small, log=lambda _l: None)
    upload = b"x" * (MAX_BODY + 1)
    _call(app, body=upload)
    assert _call(app, attempt=2, body=upload)[2] == b"run 2"
    assert small.bodies == [upload, upload]  # passed through whole


def test_a_retry_that_overtakes_its_first_attempt_waits_for_it() -> None:
    gate = threading.Event()
    inner = _Counting(gate=gate)
    app = ReplayRetriedRequests(inner, log=lambda _l: None)
    first: list[bytes] = []
    thread = threading.Thread(target=lambda: first.append(_call(app)[2]))
    thread.start()
    while inner.calls == 0:  # the first attempt is inside moto
        threading.Event().wait(0.01)
    retry: list[bytes] = []
    resend = threading.Thread(target=lambda: retry.append(_call(app, attempt=2)[2]))
    resend.start()
    resend.join(0.3)
    assert resend.is_alive()  # waiting for the first attempt, not running the create a second time
    gate.set()
    thread.join(5)
    resend.join(5)
    assert first == retry == [b"run 1"] and inner.calls == 1


def test_old_answers_are_dropped_beyond_the_capacity() -> None:
    inner = _Counting()
    app = ReplayRetriedRequests(inner, capacity=2, log=lambda _l: None)
    for name in ("a", "b", "c"):
        _call(app, invocation=name)
    assert _call(app, invocation="c", attempt=2)[2] == b"run 3"
    assert _call(app, invocation="a", attempt=2)[2] == b"run 4"  # forgotten: runs (as without the layer)


@pytest.mark.parametrize(
    ("header", "attempt"), [("attempt=2; max=5", 2), ("ttl=x; attempt=10; max=25", 10), ("", 1), ("attempt=x", 1)]
)
def test_attempt_number(header: str, attempt: int) -> None:
    assert attempt_number(header) == attempt


# -- against a real emulator, with boto3's own SDK headers ----------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def _iam(emulator: Emulator, headers: dict[str, str]) -> Any:
    iam = boto3.client(
        "iam",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="mlpipe-local",
        aws_secret_access_key="mlpipe-local",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def set_headers(request: Any, **_kwargs: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    iam.meta.events.register("before-send.iam.*", set_headers)
    return iam


def test_the_emulator_answers_a_resent_create_as_the_first_time(emulator: Emulator) -> None:
    """A CreateRole whose answer was lost is sent again: the role, not EntityAlreadyExists."""
    invocation = str(uuid.uuid4())
    trust = '{"Version":"2012-10-17","Statement":[]}'
    first = _iam(emulator, {"amz-sdk-invocation-id": invocation, "amz-sdk-request": "attempt=1; max=5"})
    made = first.create_role(RoleName="replayed", AssumeRolePolicyDocument=trust)["Role"]
    resent = _iam(emulator, {"amz-sdk-invocation-id": invocation, "amz-sdk-request": "attempt=2; max=5"})
    again = resent.create_role(RoleName="replayed", AssumeRolePolicyDocument=trust)["Role"]
    assert (again["RoleId"], again["Arn"]) == (made["RoleId"], made["Arn"])
    assert "answered a re-sent request (attempt 2" in emulator.log_path.read_text()
    # a new call of the operation is answered as AWS would
    other = _iam(emulator, {"amz-sdk-invocation-id": str(uuid.uuid4()), "amz-sdk-request": "attempt=2; max=5"})
    with pytest.raises(ClientError) as exists:
        other.create_role(RoleName="replayed", AssumeRolePolicyDocument=trust)
    assert exists.value.response["Error"]["Code"] == "EntityAlreadyExists"
