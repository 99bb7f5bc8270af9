"""End-to-end fixtures: one emulator per test session, the CLI as a subprocess, a traffic recorder.

Every command runs as its own process (`python -m mlpipe ...`), as `make plan` then `make apply`
do, against one loopback emulator given by MLPIPE_EMULATOR_URL. Each process also gets fake AWS
keys and an HTTP(S) proxy that records and refuses every request: a request that leaves for a
real AWS endpoint (anything but loopback) is caught there, and the tests assert none did.
"""

from __future__ import annotations

import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from mlpipe.emulator.process import Emulator
from tests.conftest import ROOT


class _Recorder(BaseHTTPRequestHandler):
    """Records the target of every proxied request and refuses it (403): nothing gets through."""

    seen: list[str]

    def _refuse(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(403, "mlpipe test: traffic outside loopback is not allowed")
        self.end_headers()

    do_CONNECT = do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class TrafficRecorder:
    url: str
    seen: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def recorder() -> Iterator[TrafficRecorder]:
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield TrafficRecorder(f"http://127.0.0.1:{server.server_address[1]}", seen)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@dataclass
class Cli:
    """`python -m mlpipe` in one project directory, as a user's shell would run it."""

    project: Path
    config: Path
    env: dict[str, str]

    def run(self, *args: str, config: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        argv = [
            sys.executable,
            "-m",
            "mlpipe",
            "--config",
            str(config or self.config),
            "--project-dir",
            str(self.project),
        ]
        return subprocess.run(
            [*argv, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "mlpipe", "--config", str(self.config), "--project-dir", str(self.project)]
        return subprocess.Popen(
            [*argv, *args], cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )


def cli_env(emulator: Emulator, recorder: TrafficRecorder) -> dict[str, str]:
    env = {
        **os.environ,
        "MLPIPE_EMULATOR_URL": emulator.url,
        # A user with real-looking credentials in the environment: nothing may use them.
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = recorder.url
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def make_cli(tmp_path: Path, emulator: Emulator, recorder: TrafficRecorder, config_text: str) -> Cli:
    config = tmp_path / "platform.toml"
    config.write_text(config_text)
    return Cli(tmp_path, config, cli_env(emulator, recorder))
