"""Ctrl-C and SIGTERM during synth and scan, with real signals sent to a real `mlpipe` process.

Each interrupted command must exit 130 within seconds, leave no child process running, no staging
directory in the project, no jsii runtime unpacked in the temporary directory, and no gate record
that a later plan could take for a pass.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlpipe.workflow.workspace import Workspace
from tests.conftest import LOCAL_CONFIG, ROOT

pytestmark = pytest.mark.heavy  # scheduling only: see tests/conftest.py


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _processes_in(directory: Path) -> list[str]:
    """Command lines of live processes whose working directory or arguments mention ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(directory) in cmdline or cwd.startswith(str(directory)):
            found.append(cmdline)
    return found


def _start(project: Path, tmpdir: Path, *args: str, workers: int = 0) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    if workers:
        env["MLPIPE_SYNTH_WORKERS"] = str(workers)
    argv = [sys.executable, "-m", "mlpipe", "--config", str(LOCAL_CONFIG), "--project-dir", str(project), *args]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(proc: subprocess.Popen[str], marker: str, timeout: float = 120) -> list[str]:
    """Read the output until ``marker``; returns the lines read."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        lines.append(line)
        if marker in line or time.monotonic() > deadline:
            break
    return lines


@pytest.mark.parametrize(
    ("sig", "workers"),
    [(signal.SIGINT, 0), (signal.SIGTERM, 0), (signal.SIGINT, 2)],
    ids=["sigint", "sigterm", "sigint-two-synth-children"],
)
def test_an_interrupted_synth_leaves_nothing_behind(sig: signal.Signals, workers: int, tmp_path: Path) -> None:
    project, tmpdir = tmp_path / "project", tmp_path / "tmp"
    project.mkdir()
    tmpdir.mkdir()
    proc = _start(project, tmpdir, "--force", "synth", workers=workers)
    _wait_for(proc, "==> synth ...")
    deadline = time.monotonic() + 60
    while not any("main.py" in " ".join(_processes_in(ROOT)) for _ in [0]) and time.monotonic() < deadline:
        time.sleep(0.2)  # the CDK for Terraform child has started
    time.sleep(2)  # ... and is busy in jsii
    children = _descendants(proc.pid)
    assert children, "the synth child should be running"
    synth_children = [pid for pid in children if b"main.py" in _cmdline(pid)]
    assert len(synth_children) == (workers or 1), synth_children
    started = time.monotonic()
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert time.monotonic() - started < 20
    assert "interrupted" in output
    assert not any(Path(f"/proc/{pid}").exists() for pid in children), "a child outlived the interrupt"
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".mlpipe-synth")) == []
    assert not (project / "cdktf.out").exists()  # the output is all or nothing
    assert list(tmpdir.iterdir()) == [], f"left in TMPDIR: {list(tmpdir.iterdir())}"


def test_an_interrupted_scan_records_nothing_and_stops_checkov(tmp_path: Path) -> None:
    project, tmpdir = tmp_path / "project", tmp_path / "tmp"
    project.mkdir()
    tmpdir.mkdir()
    proc = _start(project, tmpdir, "--force", "scan")
    _wait_for(proc, "==> scan ...", timeout=300)
    time.sleep(1.5)  # checkov is loading
    children = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "scan interrupted: nothing was recorded" in output
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    assert not Workspace(project).for_config(LOCAL_CONFIG).gate_record.exists()


def test_a_second_interrupt_forces_the_stop() -> None:
    """The first signal asks children to stop cleanly; one that ignores it is killed by the second."""
    from mlpipe import cli
    from mlpipe.core.errors import Interrupted
    from mlpipe.core.processes import CHILDREN

    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"],
        start_new_session=True,
    )
    CHILDREN.reset()
    try:
        with CHILDREN.track(stubborn):
            time.sleep(0.5)
            cli._on_signal(signal.SIGINT, None)  # first: forwarded, we keep waiting
            time.sleep(0.5)
            assert stubborn.poll() is None, "a child that ignores SIGINT keeps running after the first"
            with pytest.raises(Interrupted, match="forced"):
                cli._on_signal(signal.SIGINT, None)
            assert stubborn.wait(timeout=10) == -signal.SIGKILL
    finally:
        CHILDREN.reset()
        if stubborn.poll() is None:
            stubborn.kill()
