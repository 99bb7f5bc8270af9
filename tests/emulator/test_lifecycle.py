"""The emulator daemon's lifecycle under races, slowness, taken ports and stale records.

Why real processes: every fault below was reproduced with real concurrent commands (three
``start`` at once left two orphans; a slow server was forgotten while it kept serving; a taken
port blamed the moto install; ``stop`` forgot a live process). Each test drives real emulator
children and checks the processes themselves (via ``/proc``), not only what the API returns.
Every server a test starts is labelled with that test's state directory and killed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpipe.core.errors import EmulatorError
from mlpipe.emulator import process
from mlpipe.emulator.process import (
    Emulator,
    PortInUse,
    ensure_running,
    is_ready,
    is_running,
    status,
    stop_running,
)

pytestmark = pytest.mark.heavy  # scheduling only: see tests/conftest.py

ROOT = Path(__file__).resolve().parents[2]


def servers_for(state_dir: Path) -> list[int]:
    """Pids of live emulator servers whose command line names ``state_dir`` (found via /proc)."""
    label = str(state_dir.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if process.SERVE_MODULE in args and "serve" in args and label in args and process._pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def recorded_pid(state_dir: Path) -> int:
    return int(json.loads((state_dir / "emulator.json").read_text())["pid"])


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A private state directory; any server still labelled with it is killed at the end."""
    path = tmp_path / "emulator"
    yield path
    for pid in servers_for(path):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def busy_listener() -> socket.socket:
    """A socket listening on a loopback port, so binding that port fails."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_concurrent_starts_share_one_server(state_dir: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mlpipe.emulator.process import ensure_running\n"
        "while not Path(sys.argv[2]).exists():\n"
        "    time.sleep(0.005)\n"
        "print(ensure_running(Path(sys.argv[1])))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(state_dir), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(1.0)  # all three are waiting for the signal (imports done)
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    urls = {out.strip() for out, _ in results}
    assert len(urls) == 1, results
    live = servers_for(state_dir)
    assert live == [recorded_pid(state_dir)]
    assert is_ready(urls.pop())
    assert stop_running(state_dir) is True
    assert servers_for(state_dir) == []


def test_slow_server_is_waited_for_and_not_replaced(state_dir: Path) -> None:
    url = ensure_running(state_dir)
    pid = recorded_pid(state_dir)
    os.kill(pid, signal.SIGSTOP)
    try:
        info = status(state_dir, probe_timeout=0.5)
        assert info is not None and info["state"] == "unresponsive" and info["pid"] == pid
        assert is_running(state_dir)
        threading.Timer(2.0, os.kill, (pid, signal.SIGCONT)).start()
        started = time.monotonic()
        again = ensure_running(state_dir, probe_timeout=0.5, busy_timeout=20)
        waited = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert again == url
    assert waited >= 1.5
    assert recorded_pid(state_dir) == pid
    assert servers_for(state_dir) == [pid]
    assert stop_running(state_dir) is True


def test_silent_server_is_reported_not_replaced(state_dir: Path) -> None:
    ensure_running(state_dir)
    pid = recorded_pid(state_dir)
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(EmulatorError) as err:
            ensure_running(state_dir, probe_timeout=0.3, busy_timeout=1.0)
        assert f"pid {pid}" in err.value.message
        assert "has not answered" in err.value.message
        assert recorded_pid(state_dir) == pid
        assert servers_for(state_dir) == [pid]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert stop_running(state_dir) is True


def test_taken_port_is_retried_with_another(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with busy_listener() as busy:
        taken = busy.getsockname()[1]
        real_free_port = process.free_port
        offered: list[int] = []

        def first_the_taken_port() -> int:
            offered.append(taken if not offered else real_free_port())
            return offered[-1]

        monkeypatch.setattr(process, "free_port", first_the_taken_port)
        url = ensure_running(state_dir)
    assert offered[0] == taken and len(offered) == 2
    assert url == f"http://127.0.0.1:{offered[1]}"
    assert is_ready(url)
    assert "already in use" in (state_dir / "emulator.log").read_text()
    assert stop_running(state_dir) is True


def test_explicit_taken_port_is_explained() -> None:
    with busy_listener() as busy:
        port = busy.getsockname()[1]
        with pytest.raises(PortInUse) as err:
            Emulator(port=port, start_timeout=20).start()
    assert f"127.0.0.1:{port}" in err.value.message
    assert "already in use" in err.value.message
    assert "moto" not in str(err.value)


def test_port_answered_by_another_emulator_is_not_mistaken_for_ours() -> None:
    with Emulator() as first:
        second = Emulator(port=first.port, start_timeout=20)
        with pytest.raises(PortInUse):
            second.start()
        assert second.pid is None
        assert is_ready(first.url)


def test_private_emulator_moves_off_a_port_taken_before_start() -> None:
    emu = Emulator()
    chosen = emu.port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", chosen))
        squatter.listen()
        with emu:
            assert emu.port != chosen
            assert emu.url == f"http://127.0.0.1:{emu.port}"
            assert is_ready(emu.url)


def test_stop_removes_the_server_and_then_the_record(state_dir: Path) -> None:
    url = ensure_running(state_dir)
    pid = recorded_pid(state_dir)
    assert stop_running(state_dir) is True
    assert not process._pid_alive(pid)
    assert not (state_dir / "emulator.json").exists()
    assert not is_ready(url, timeout=0.5)
    assert stop_running(state_dir) is False


def test_stop_ends_a_server_that_does_not_answer(state_dir: Path) -> None:
    ensure_running(state_dir)
    pid = recorded_pid(state_dir)
    os.kill(pid, signal.SIGSTOP)
    assert stop_running(state_dir, timeout=1.0) is True
    assert not process._pid_alive(pid)
    assert servers_for(state_dir) == []
    assert not (state_dir / "emulator.json").exists()


def test_stale_record_of_a_dead_pid_is_cleaned(state_dir: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    state_dir.mkdir(parents=True)
    (state_dir / "emulator.json").write_text(json.dumps({"pid": gone.pid, "port": 1, "instance": "x"}))
    assert status(state_dir) is None
    assert not is_running(state_dir)
    assert stop_running(state_dir) is False
    assert not (state_dir / "emulator.json").exists()

    (state_dir / "emulator.json").write_text(json.dumps({"pid": gone.pid, "port": 1, "instance": "x"}))
    url = ensure_running(state_dir)
    assert recorded_pid(state_dir) != gone.pid
    assert is_ready(url)
    assert stop_running(state_dir) is True


def test_record_of_a_reused_pid_is_never_signalled(state_dir: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        state_dir.mkdir(parents=True)
        record = {"pid": stranger.pid, "port": process.free_port(), "instance": "not-this-one"}
        (state_dir / "emulator.json").write_text(json.dumps(record))
        assert status(state_dir) is None
        assert stop_running(state_dir) is False
        assert stranger.poll() is None, "an unrelated process with the recorded pid was signalled"
        assert not (state_dir / "emulator.json").exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_status_exit_codes_for_make_clean(state_dir: Path) -> None:
    def cli_status() -> int:
        command = [sys.executable, "-m", "mlpipe.emulator.process", "status", "--state-dir", str(state_dir)]
        command += ["--probe-timeout", "1"]
        return subprocess.run(command, cwd=ROOT, capture_output=True, timeout=60, check=False).returncode

    assert cli_status() == process.STATUS_NOT_RUNNING == 1
    ensure_running(state_dir)
    assert cli_status() == process.STATUS_RUNNING == 0
    pid = recorded_pid(state_dir)
    os.kill(pid, signal.SIGSTOP)
    try:
        assert cli_status() == process.STATUS_UNRESPONSIVE == 2
    finally:
        os.kill(pid, signal.SIGCONT)
    assert stop_running(state_dir) is True
    assert cli_status() == 1
