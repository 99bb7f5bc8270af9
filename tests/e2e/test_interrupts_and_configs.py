"""Interrupting an apply with a real signal, and alternating two configurations in one checkout.

Only foundation stacks are applied here (small and quick); the behaviour under test is the
workflow's, which is the same for every stack.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from mlpipe.core.config import load_config
from mlpipe.emulator.process import Emulator
from mlpipe.workflow.clients import Target
from tests.conftest import LOCAL_CONFIG
from tests.e2e.conftest import Cli, TrafficRecorder, cli_env

pytestmark = pytest.mark.e2e


def _config(prefix: str, first_digit: int) -> str:
    text = LOCAL_CONFIG.read_text().replace('name_prefix = "mlpipe"', f'name_prefix = "{prefix}"')
    for account in ("1", "2", "3"):
        text = text.replace(account * 12, f"{first_digit}{account}" + "0" * 10)
    return text


def _terraform_processes(project: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(project)) and ("terraform" in cmdline or "provider" in cmdline):
            found.append(cmdline)
    return found


def _foundation_keys(emulator: Emulator, config_path: Path) -> list[str]:
    config = load_config(config_path)
    kms = Target("emulator", emulator.url).client(config, "training", "kms")
    keys = []
    for key in kms.list_keys()["Keys"]:
        meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        if meta["KeyState"] == "Enabled" and meta.get("Description", "").startswith(f"{config.name_prefix}:"):
            keys.append(key["KeyId"])
    return keys


def test_an_interrupted_apply_stops_cleanly_and_the_next_run_converges(
    tmp_path: Path, emulator: Emulator, recorder: TrafficRecorder
) -> None:
    config = tmp_path / "a.toml"
    config.write_text(_config("mlpint", 6))
    cli = Cli(tmp_path, config, cli_env(emulator, recorder))
    assert cli.run("plan", "--pipeline", "foundation").returncode == 0
    proc = cli.popen("apply")
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "Creating..." in line:
            break
    time.sleep(1)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends to mlpipe
    rest, _ = proc.communicate(timeout=300)
    output = "".join(seen) + rest
    assert proc.returncode == 130, output[-3000:]
    assert time.monotonic() - started < 120
    assert "apply interrupted" in output and "run `mlpipe plan`" in output
    assert _terraform_processes(tmp_path) == [], "Terraform outlived the interrupt"
    # the state was written and its lock released: the next plan and apply finish the job
    again = cli.run("plan", "--pipeline", "foundation")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    finished = cli.run("apply")
    assert finished.returncode == 0, finished.stdout[-3000:]
    converged = cli.run("plan", "--pipeline", "foundation", "--detailed-exitcode")
    assert converged.returncode == 0, converged.stdout[-3000:]
    assert len(_foundation_keys(emulator, config)) == 1, "an interrupted run left a duplicate key"


def test_two_configurations_alternate_in_one_checkout(
    tmp_path: Path, emulator: Emulator, recorder: TrafficRecorder
) -> None:
    env = cli_env(emulator, recorder)
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text(_config("mlpalt", 7))
    second.write_text(_config("mlpbalt", 8))
    a, b = Cli(tmp_path, first, env), Cli(tmp_path, second, env)
    assert a.run("plan", "--pipeline", "foundation").returncode == 0
    # another configuration synthesizes, scans and plans in the same checkout in between ...
    assert b.run("plan", "--pipeline", "foundation").returncode == 0
    # ... and a synth of the first one too: its saved plan still applies (same bytes, same lock file)
    assert a.run("synth").returncode == 0
    applied = a.run("apply")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    applied = b.run("apply")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    for cli in (a, b):
        result = cli.run("plan", "--pipeline", "foundation", "--detailed-exitcode")
        assert result.returncode == 0, result.stdout[-3000:]
        assert "Backend configuration changed" not in result.stdout + result.stderr
    outputs = a.run("output", "--json", "--pipeline", "foundation")
    assert re.search(r'"access_log_bucket": "mlpalt-access-logs-710000000000-eu-west-1"', outputs.stdout)
