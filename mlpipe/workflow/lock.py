"""One command at a time per checkout: synth, scan, plan, apply, destroy and adopt exclude each other.

The lock is an ``flock`` on ``.mlpipe/workspace.lock``: the kernel releases it when its holder
dies, however it dies, so a crashed run never blocks the next one. The file also says who holds
the lock (PID, command, start time), so a second command refuses at once and names the holder;
a record left by a process that no longer exists is taken over with a warning.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from mlpipe.core.errors import WorkspaceBusy
from mlpipe.core.processes import pid_alive


class WorkspaceLock:
    """``with WorkspaceLock(path, "plan"):`` — raises WorkspaceBusy if another command holds it."""

    def __init__(self, path: Path, command: str, warn: Callable[[str], None] = print) -> None:
        self.path = path
        self.command = command
        self.warn = warn
        self._handle: TextIO | None = None

    def __enter__(self) -> WorkspaceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(handle)
            handle.close()
            raise WorkspaceBusy(
                f"another mlpipe command holds this workspace: {describe(holder)}",
                "wait for it to finish (or stop it), then run this command again",
            ) from None
        previous = _read(handle)
        if previous and isinstance(previous.get("pid"), int) and not pid_alive(previous["pid"]):
            self.warn(
                f"warning: taking over the workspace lock left by a process that no longer runs: {describe(previous)}"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": self.command, "started": time.time()}) + "\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.seek(0)
            handle.truncate()  # an empty file: nobody holds it
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def _read(handle: TextIO) -> dict[str, Any] | None:
    handle.seek(0)
    try:
        data = json.loads(handle.read() or "null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "(holder unknown)"
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, int | float) else "?"
    return f"PID {holder.get('pid')} running `mlpipe {holder.get('command')}` since {when}"
