"""The local AWS emulator: a patched moto server standing in for the three AWS accounts.

Why a child process: moto keeps all state in module globals and its patches are process-wide, so
the server runs in its own interpreter (``python -m mlpipe.emulator.process serve``). Tests use the
``Emulator`` context manager (one private server per test run); the CLI uses the daemon helpers
(``ensure_running``/``stop_running``/``status``) so several commands share one server whose
address is recorded in ``<state_dir>/emulator.json``.

It only ever binds 127.0.0.1: the emulator accepts any credentials and must not be reachable
from elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from mlpipe.core.errors import EmulatorError

HOST = "127.0.0.1"
STATE_FILE = "emulator.json"
LOG_FILE = "emulator.log"
DEFAULT_START_TIMEOUT = 30.0

#: Behaviour switched on before the server accepts requests. Step Functions executions run
#: through moto's interpreter; Lambda invocations answer without Docker (which is not available).
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def _require_loopback(host: str) -> None:
    if host != HOST:
        raise EmulatorError(
            f"refusing to bind the emulator to {host!r}",
            f"the emulator accepts any credentials, so it only listens on {HOST}",
        )


def serve(host: str = HOST, port: int = 5000) -> None:
    """Run the patched moto server in this process until it is killed (the child's entry point)."""
    _require_loopback(host)
    # Resources must land in the account the provider assumed a role into; a fixed account
    # would put all three accounts' resources together.
    os.environ.pop("MOTO_ACCOUNT_ID", None)
    # The Step Functions interpreter calls SageMaker/Lambda on this same server.
    os.environ["MOTO_PORT"] = str(port)

    from moto.moto_api._internal.models import moto_api_backend
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from mlpipe.emulator.patches import apply_patches

    apply_patches()
    moto_api_backend.set_config(MOTO_CONFIG)

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)

    def _stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"mlpipe emulator listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def free_port() -> int:
    """Ask the OS for a free TCP port on loopback (small race, acceptable for a local tool)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def is_ready(url: str, timeout: float = 1.0) -> bool:
    """True when a moto server answers its own API at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/moto-api/config", timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "mlpipe.emulator.process", "serve", "--host", HOST, "--port", str(port)]


def _child_env() -> dict[str, str]:
    """Environment for the child: importable ``mlpipe`` and no single-account override."""
    env = dict(os.environ)
    env.pop("MOTO_ACCOUNT_ID", None)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(
                f"the emulator exited with code {proc.returncode} while starting:\n{_tail(log)}",
                "check that moto[server]==5.2.5 is installed in this environment",
            )
        if is_ready(url, timeout=0.5):
            return
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise EmulatorError(
        f"the emulator did not answer at {url} within {timeout:.0f}s:\n{_tail(log)}",
        "look at the emulator log; a slow machine may need a longer start timeout",
    )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


class Emulator:
    """A private emulator in a child process, for tests: ``with Emulator() as emu: emu.url``."""

    def __init__(self, port: int | None = None, start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def log_path(self) -> Path:
        """The child's combined output (useful when a test fails)."""
        if self._log_dir is None:
            raise EmulatorError("the emulator has not been started", "call start() first")
        return Path(self._log_dir.name) / LOG_FILE

    def start(self) -> Emulator:
        """Start the child and wait until it answers; raises ``EmulatorError`` otherwise."""
        if self._proc is not None:
            return self
        self._log_dir = tempfile.TemporaryDirectory(prefix="mlpipe-emulator-")
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                _serve_command(self.port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(),
            )
        try:
            _wait_ready(self._proc, self.url, self.start_timeout, self.log_path)
        except EmulatorError:
            self._proc = None
            raise
        return self

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 5 s) and remove its log."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------
# Daemon mode for the CLI
# ------------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; reap it if it is one.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    if not isinstance(data.get("port"), int):
        return None
    return data


def status(state_dir: Path) -> dict[str, Any] | None:
    """The recorded emulator (pid, port, url, log, started) if it is alive and answering."""
    data = _read_state(state_dir)
    if data is None or not _pid_alive(data["pid"]):
        return None
    url = f"http://{HOST}:{data['port']}"
    if not is_ready(url):
        return None
    return {**data, "url": url}


def ensure_running(state_dir: Path, start_timeout: float = DEFAULT_START_TIMEOUT) -> str:
    """Return the URL of the recorded emulator, starting a detached one if none answers.

    The child gets its own session so it outlives the CLI command that started it; its output
    goes to ``state_dir/emulator.log``.
    """
    current = status(state_dir)
    if current is not None:
        return str(current["url"])
    stale = _read_state(state_dir)
    if stale is not None and _pid_alive(stale["pid"]):
        # Recorded process alive but not answering (hung or not ours any more): do not reuse it.
        (state_dir / STATE_FILE).unlink(missing_ok=True)

    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = state_dir / LOG_FILE
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            _serve_command(port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    _wait_ready(proc, url, start_timeout, log_path)
    record = {"pid": proc.pid, "port": port, "log": str(log_path), "started": time.time()}
    tmp = state_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(state_dir / STATE_FILE)
    return url


def stop_running(state_dir: Path, timeout: float = 5.0) -> bool:
    """Stop the recorded emulator; True if one was running. Always forgets the record."""
    data = _read_state(state_dir)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    if data is None or not _pid_alive(data["pid"]):
        return False
    # Only signal the pid if it still is our emulator (answers on the recorded port); a pid
    # from an old record may have been reused by an unrelated process.
    if not is_ready(f"http://{HOST}:{data['port']}"):
        return False
    pid = data["pid"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


# ------------------------------------------------------------------------------------------------
# Module CLI
# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m mlpipe.emulator.process serve|start|stop|status``."""
    parser = argparse.ArgumentParser(prog="python -m mlpipe.emulator.process", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the emulator in the foreground")
    p_serve.add_argument("--host", default=HOST)
    p_serve.add_argument("--port", type=int, default=5000)
    for name, text in (
        ("start", "start a background emulator (or reuse the running one)"),
        ("stop", "stop the background emulator"),
        ("status", "show the background emulator"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--state-dir", type=Path, default=Path(".mlpipe"))
    args = parser.parse_args(argv)

    try:
        if args.command == "serve":
            serve(args.host, args.port)
            return 0
        if args.command == "start":
            print(ensure_running(args.state_dir))
            return 0
        if args.command == "stop":
            print("stopped" if stop_running(args.state_dir) else "not running")
            return 0
        info = status(args.state_dir)
        print(json.dumps(info, indent=2) if info else "not running")
        return 0 if info else 1
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
