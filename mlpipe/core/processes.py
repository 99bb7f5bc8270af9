"""The child processes the tool is waiting for, so Ctrl-C and SIGTERM can stop them cleanly.

Children run in their own session, so a Ctrl-C in the terminal reaches only mlpipe. On the first
signal mlpipe forwards SIGINT to every registered child and waits for them: Terraform then
finishes the call in flight, writes its state and releases its lock, and no child is left
running. A second signal forces the stop (SIGKILL), with a warning that state may be incomplete.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ChildProcesses:
    """A thread-safe set of running children, signalled as a group."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen[Any]] = set()
        self.interrupted = threading.Event()
        self.forced = threading.Event()

    @contextmanager
    def track(self, proc: subprocess.Popen[Any]) -> Iterator[subprocess.Popen[Any]]:
        with self._lock:
            self._children.add(proc)
        if self.interrupted.is_set():  # a signal arrived while this child was starting
            _signal(proc, signal.SIGKILL if self.forced.is_set() else signal.SIGINT)
        try:
            yield proc
        finally:
            with self._lock:
                self._children.discard(proc)

    def running(self) -> list[subprocess.Popen[Any]]:
        with self._lock:
            return [p for p in self._children if p.poll() is None]

    def interrupt(self) -> None:
        """First signal: ask every child to stop the way it stops on Ctrl-C."""
        self.interrupted.set()
        for proc in self.running():
            _signal(proc, signal.SIGINT)

    def kill(self) -> None:
        """Second signal: stop now."""
        self.interrupted.set()
        self.forced.set()
        for proc in self.running():
            _signal(proc, signal.SIGKILL)

    def reset(self) -> None:
        self.interrupted.clear()
        self.forced.clear()


def _signal(proc: subprocess.Popen[Any], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child's whole group: Terraform and its provider plugins
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


CHILDREN = ChildProcesses()


def pid_alive(pid: int) -> bool:
    """A process with this pid exists (it may belong to someone else: then it is alive too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
