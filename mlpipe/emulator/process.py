"""The local AWS emulator: a patched moto server standing in for the three AWS accounts.

Why a child process: moto keeps all state in module globals and its patches are process-wide, so
the server runs in its own interpreter (``python -m mlpipe.emulator.process serve``). Tests use the
``Emulator`` context manager (one private server per test run); the CLI uses the daemon helpers
(``ensure_running``/``stop_running``/``status``) so several commands share one server whose
address is recorded in ``<state_dir>/emulator.json``.

Lifecycle guarantees of the daemon helpers (all tested with real processes):

* one server per state directory: check-start-record runs under an exclusive ``flock`` on
  ``<state_dir>/emulator.lock``, so concurrent callers wait and then reuse the one server;
* a recorded server is judged by its process (alive, not a zombie, and its command line carries
  the instance token of the record, so a reused pid is never mistaken for it), not only by an
  HTTP probe: a live server that is slow to answer is waited for, then reported, never replaced;
* a port taken between choosing it and binding it is retried with another free port;
* ``stop_running`` forgets the record only once the process is gone.

It only ever binds 127.0.0.1: the emulator accepts any credentials and must not be reachable
from elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from mlpipe.core.errors import EmulatorError

HOST = "127.0.0.1"
STATE_FILE = "emulator.json"
LOG_FILE = "emulator.log"
LOCK_FILE = "emulator.lock"
SERVE_MODULE = "mlpipe.emulator.process"
#: Where ``mlpipe`` keeps the daemon's record (``Workspace.emulator_dir``), relative to the project.
DEFAULT_STATE_DIR = Path(".mlpipe") / "emulator"
DEFAULT_START_TIMEOUT = 30.0
#: One HTTP probe of a running server. Generous: on a saturated 2-core machine moto can take
#: seconds to answer, and a slow answer must not count as "gone".
DEFAULT_PROBE_TIMEOUT = 5.0
#: How long a recorded server that is alive but silent is waited for before it is reported.
DEFAULT_BUSY_TIMEOUT = 30.0
#: Ports tried when the chosen free port is taken before the child binds it.
START_ATTEMPTS = 3
#: Exit code of ``serve`` when its port is already in use (EX_TEMPFAIL: try another port).
PORT_IN_USE_EXIT = 75
#: ``status`` exit codes for scripts (e.g. ``make clean``).
STATUS_RUNNING, STATUS_NOT_RUNNING, STATUS_UNRESPONSIVE = 0, 1, 2

#: Behaviour switched on before the server accepts requests. Step Functions executions run
#: through moto's interpreter; Lambda invocations answer without Docker (which is not available).
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


class PortInUse(EmulatorError):
    """The emulator's port is taken by another process (not a problem with the moto install)."""


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

    from mlpipe.emulator.faults import install_faults, lose_answers
    from mlpipe.emulator.patches import apply_patches
    from mlpipe.emulator.replay import ReplayRetriedRequests

    faults = install_faults()  # no-op unless MLPIPE_EMULATOR_FAULTS is set (reproductions and tests only)
    apply_patches()
    moto_api_backend.set_config(MOTO_CONFIG)

    # An SDK's re-send after a lost answer gets that answer again, not a second run (replay.py).
    app = lose_answers(ReplayRetriedRequests(DomainDispatcherApplication(create_backend_app)), faults)
    try:
        server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} on {host} is already in use by another process",
                "choose another port (or let the emulator pick a free one)",
            ) from exc
        raise

    def _stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"mlpipe emulator listening on http://{host}:{port}", flush=True)  # _wait_ready looks for it
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def free_port() -> int:
    """Ask the OS for a free TCP port on loopback (another process may take it before the child
    binds it: callers retry with another port when the child reports ``PORT_IN_USE_EXIT``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def is_ready(url: str, timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
    """True when a moto server answers its own API at ``url`` within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"{url}/moto-api/config", timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _serve_command(port: int, instance: str, state_dir: Path | None = None) -> list[str]:
    """The child's command line. ``--instance`` (and ``--state-dir``) are labels only: they let
    ``ps`` and the liveness check tell this server from any other process."""
    command = [sys.executable, "-m", SERVE_MODULE, "serve", "--host", HOST, "--port", str(port), "--instance", instance]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir.resolve())]
    return command


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the child: importable ``mlpipe`` and no single-account override."""
    env = {**os.environ, **(extra or {})}
    env.pop("MOTO_ACCOUNT_ID", None)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _read_since(path: Path, offset: int = 0) -> str:
    """What ``path`` got after ``offset`` (a shared log holds earlier starts too)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int = 30, offset: int = 0) -> str:
    """The last ``lines`` lines ``path`` got after ``offset``."""
    return "\n".join(_read_since(path, offset).splitlines()[-lines:]) or "(no output)"


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float, log: Path, offset: int = 0) -> None:
    """Wait until the child answers; raise ``PortInUse`` or ``EmulatorError`` saying why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = _tail(log, offset=offset)
            if proc.returncode == PORT_IN_USE_EXIT or "address already in use" in output.lower():
                raise PortInUse(
                    f"the emulator could not listen on {url}: the port is already in use "
                    f"(the child exited with code {proc.returncode}):\n{output}",
                    "another process took the port; start again (a free port is chosen each time)",
                )
            missing = "ModuleNotFoundError" in output or "ImportError" in output
            raise EmulatorError(
                f"the emulator exited with code {proc.returncode} while starting:\n{output}",
                "install the dev dependencies (moto[server]==5.2.5) in this environment"
                if missing
                else f"see the emulator output above (full log: {log})",
            )
        # Our child prints this line only after it has bound the port: an answer on the port
        # without it would come from another process that took the port first.
        if f"listening on {url}" in _read_since(log, offset) and is_ready(url, timeout=0.5):
            return
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise EmulatorError(
        f"the emulator did not answer at {url} within {timeout:.0f}s:\n{_tail(log, offset=offset)}",
        "look at the emulator log; a slow machine may need a longer start timeout",
    )


def _spawn(
    log_path: Path,
    start_timeout: float,
    *,
    port: int | None = None,
    fixed: bool = False,
    detached: bool = False,
    state_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int, str]:
    """Start a child and wait until it answers: ``(process, port, instance token)``.

    Why the loop: ``free_port()`` releases the port before the child binds it, so another process
    can take it in between; the child then reports ``PORT_IN_USE_EXIT`` and another port is
    tried. ``port`` is the first port tried; a ``fixed`` port is not replaced: the error says it
    is taken.
    """
    attempts = 1 if fixed else START_ATTEMPTS
    last: PortInUse | None = None
    for attempt in range(attempts):
        chosen = port if port is not None and attempt == 0 else free_port()
        instance = secrets.token_hex(8)
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                _serve_command(chosen, instance, state_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(env),
                start_new_session=detached,
            )
        try:
            _wait_ready(proc, f"http://{HOST}:{chosen}", start_timeout, log_path, offset)
        except PortInUse as exc:
            last = exc
            continue
        return proc, chosen, instance
    assert last is not None
    raise last


class Emulator:
    """A private emulator in a child process, for tests: ``with Emulator() as emu: emu.url``.

    ``env`` adds variables to the child's environment (e.g. ``MLPIPE_EMULATOR_FAULTS``).
    """

    def __init__(
        self,
        port: int | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._fixed_port = port
        self._env = dict(env or {})
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

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Emulator:
        """Start the child and wait until it answers; raises ``EmulatorError`` otherwise.

        Without an explicit port, a port taken before the child binds it is replaced by another
        free one (``.port``/``.url`` then name the port really used).
        """
        if self._proc is not None:
            return self
        self._log_dir = tempfile.TemporaryDirectory(prefix="mlpipe-emulator-")
        try:
            self._proc, self.port, _ = _spawn(
                self.log_path,
                self.start_timeout,
                port=self.port,
                fixed=self._fixed_port is not None,
                env=self._env,
            )
        except EmulatorError:
            self._log_dir.cleanup()
            self._log_dir = None
            raise
        self.url = f"http://{HOST}:{self.port}"
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
    """True while ``pid`` is a running (or stopped) process; a zombie counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; reap it if it is one.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done != 0:
            return False
    except ChildProcessError:
        pass
    # A zombie of another parent (e.g. an init that does not reap) is gone for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


def _cmdline(pid: int) -> list[str] | None:
    """The process's argument list, or None when this system cannot tell (no ``/proc``)."""
    proc_file = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self/cmdline").exists():
        try:
            return [arg for arg in proc_file.read_bytes().decode(errors="replace").split("\0") if arg]
        except OSError:
            return []
    try:
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
    except OSError:
        return None
    return out.stdout.split() if out.returncode == 0 else []


def _is_our_server(record: dict[str, Any]) -> bool:
    """True when the recorded pid is alive and really is the recorded server.

    Why: pids are reused, so "a process with that pid exists" is not enough; its command line must
    be ours and carry the record's instance token (records written before tokens existed are
    matched on the port). Where no command line can be read, an HTTP answer is the fallback.
    """
    pid = int(record["pid"])
    if not _pid_alive(pid):
        return False
    args = _cmdline(pid)
    if args is None:
        return is_ready(_url(record))
    if SERVE_MODULE not in args or "serve" not in args:
        return False
    instance = record.get("instance")
    if instance:
        return _option(args, "--instance") == instance
    return _option(args, "--port") == str(record["port"])


def _option(args: list[str], name: str) -> str | None:
    try:
        return args[args.index(name) + 1]
    except (ValueError, IndexError):
        return None


def _url(record: dict[str, Any]) -> str:
    return f"http://{HOST}:{record['port']}"


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


def _write_state(state_dir: Path, record: dict[str, Any]) -> None:
    tmp = state_dir / f".{STATE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(state_dir / STATE_FILE)


def _forget(state_dir: Path) -> None:
    (state_dir / STATE_FILE).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(state_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the state directory's exclusive lock (``flock``) for check-start-record or stop.

    Why: without it, concurrent commands each find no server, each start one, and only the last
    record survives (the others keep running, unrecorded). The lock is released by the kernel if
    the holder dies; the child servers do not inherit it (``close_fds``).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK_FILE, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise EmulatorError(
                        f"another mlpipe command (pid {holder}) has held the emulator lock "
                        f"{state_dir / LOCK_FILE} for more than {timeout:.0f}s",
                        "wait for it to finish; if that process is gone or hung, end it and retry",
                    ) from None
                time.sleep(0.05)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _lock_timeout(start_timeout: float, busy_timeout: float) -> float:
    """Long enough for the holder to finish whatever it may legitimately be doing."""
    return start_timeout * START_ATTEMPTS + busy_timeout + 10.0


def status(state_dir: Path, probe_timeout: float = DEFAULT_PROBE_TIMEOUT) -> dict[str, Any] | None:
    """The recorded emulator if its process is alive and ours, else None (read-only, no lock).

    The record (``pid``, ``port``, ``log``, ``started``, ``instance``) plus ``url`` and ``state``:
    ``"running"`` when it answers within ``probe_timeout``, ``"unresponsive"`` when it is alive but
    does not (busy or stopped): it still holds the emulated resources, so it is reported, not
    dropped.
    """
    record = _read_state(state_dir)
    if record is None or not _is_our_server(record):
        return None
    url = _url(record)
    state = "running" if is_ready(url, timeout=probe_timeout) else "unresponsive"
    return {**record, "url": url, "state": state}


def is_running(state_dir: Path) -> bool:
    """True while a live emulator process of ours is recorded, answering or not (for ``clean``)."""
    record = _read_state(state_dir)
    return record is not None and _is_our_server(record)


def _wait_answering(record: dict[str, Any], busy_timeout: float, probe_timeout: float) -> str:
    """Wait for a live recorded server to answer: ``"ready"``, ``"dead"`` (it exited meanwhile) or
    ``"silent"`` (alive, but no answer within ``busy_timeout``)."""
    url, deadline = _url(record), time.monotonic() + busy_timeout
    while True:
        remaining = deadline - time.monotonic()
        if is_ready(url, timeout=max(0.2, min(probe_timeout, remaining))):
            return "ready"
        if not _is_our_server(record):
            return "dead"
        if time.monotonic() >= deadline:
            return "silent"
        time.sleep(0.2)


def ensure_running(
    state_dir: Path,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    *,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    lock_timeout: float | None = None,
) -> str:
    """Return the URL of the recorded emulator, starting a detached one if none is recorded.

    Safe under concurrency: callers serialize on the state directory's lock, so exactly one server
    is started and every caller gets its URL. A recorded server that is alive but slow is waited
    for up to ``busy_timeout`` seconds, then reported with ``EmulatorError``; it is never replaced
    (it holds the emulated accounts' resources). A record whose process is gone (or is not ours
    any more) is dropped. The child gets its own session so it outlives the command that started
    it; its output goes to ``state_dir/emulator.log``.
    """
    timeout = lock_timeout if lock_timeout is not None else _lock_timeout(start_timeout, busy_timeout)
    with _locked(state_dir, timeout):
        record = _read_state(state_dir)
        if record is not None and _is_our_server(record):
            outcome = _wait_answering(record, busy_timeout, probe_timeout)
            if outcome == "ready":
                return _url(record)
            if outcome == "silent":
                raise EmulatorError(
                    f"the emulator recorded in {state_dir / STATE_FILE} (pid {record['pid']}, {_url(record)}) "
                    f"is running but has not answered for {busy_timeout:.0f}s",
                    "it may be overloaded or stopped: wait and retry, or run `mlpipe emulator stop` "
                    "to end it (its emulated resources are lost)",
                )
        _forget(state_dir)
        log_path = state_dir / LOG_FILE
        proc, port, instance = _spawn(log_path, start_timeout, detached=True, state_dir=state_dir)
        _write_state(
            state_dir,
            {
                "pid": proc.pid,
                "port": port,
                "instance": instance,
                "log": str(log_path),
                "started": time.time(),
            },
        )
        return f"http://{HOST}:{port}"


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM (and SIGCONT, so a stopped server can act on it), then SIGKILL after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    for sig, wait in ((None, timeout), (signal.SIGKILL, 5.0)):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.05)
    raise EmulatorError(
        f"the emulator (pid {pid}) is still alive after SIGKILL",
        f"it is kept in the record; look at the process (`ps -p {pid}`) and end it by hand",
    )


def stop_running(state_dir: Path, timeout: float = 5.0) -> bool:
    """Stop the recorded emulator; True if one was running.

    The record is removed only once the process is gone (or was never ours: a stale record of a
    dead or reused pid is removed without signalling anything). A server that does not answer
    HTTP (busy, stopped) is still stopped.
    """
    with _locked(state_dir, _lock_timeout(DEFAULT_START_TIMEOUT, DEFAULT_BUSY_TIMEOUT)):
        record = _read_state(state_dir)
        if record is None:
            _forget(state_dir)  # unreadable record
            return False
        if not _is_our_server(record):
            _forget(state_dir)
            return False
        _terminate(int(record["pid"]), timeout)
        _forget(state_dir)
        return True


# ------------------------------------------------------------------------------------------------
# Module CLI
# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m mlpipe.emulator.process serve|start|stop|status``.

    ``status`` exits 0 when the emulator answers, 2 when its process is alive but does not answer,
    1 when none is running: ``make clean`` refuses (or stops it first) unless the code is 1.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {SERVE_MODULE}", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the emulator in the foreground")
    p_serve.add_argument("--host", default=HOST)
    p_serve.add_argument("--port", type=int, default=5000)
    p_serve.add_argument("--instance", default="", help="label identifying this server (set by start)")
    p_serve.add_argument("--state-dir", default="", help="label: the state directory that records it")
    for name, text in (
        ("start", "start a background emulator (or reuse the running one)"),
        ("stop", "stop the background emulator"),
        ("status", "show the background emulator (exit 0 running, 2 not answering, 1 not running)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
        if name == "status":
            p.add_argument("--probe-timeout", type=float, default=DEFAULT_PROBE_TIMEOUT)
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
        info = status(args.state_dir, probe_timeout=args.probe_timeout)
        print(json.dumps(info, indent=2) if info else "not running")
        if info is None:
            return STATUS_NOT_RUNNING
        return STATUS_RUNNING if info["state"] == "running" else STATUS_UNRESPONSIVE
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return PORT_IN_USE_EXIT
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
