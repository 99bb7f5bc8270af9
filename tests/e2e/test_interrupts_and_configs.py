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


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, recorder: TrafficRecorder) -> Cli:
    """A foundation whose first apply was interrupted with Ctrl-C, then finished by a new plan and apply."""
    project = tmp_path_factory.mktemp("interrupted")
    config = project / "a.toml"
    config.write_text(_config("mlpint", 6))
    return Cli(project, config, cli_env(emulator, recorder))


def test_an_interrupted_apply_stops_cleanly_and_the_next_run_converges(interrupted: Cli, emulator: Emulator) -> None:
    cli = interrupted
    assert cli.run("plan", "--pipeline", "foundation").returncode == 0
    proc = cli.popen("apply")
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "Creating..." in line:
            break
    # At once, while the first creates are in flight: Terraform's stop cancels them, so a bucket or
    # a KMS key may exist that no state knows (docs/emulator-notes.md). The next plan must name it.
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends to mlpipe
    rest, _ = proc.communicate(timeout=300)
    output = "".join(seen) + rest
    assert proc.returncode == 130, output[-3000:]
    assert time.monotonic() - started < 120
    assert "apply interrupted" in output and "run `mlpipe plan`" in output
    assert _terraform_processes(cli.project) == [], "Terraform outlived the interrupt"
    # the state was written and its lock released: the next plan and apply finish the job. A create
    # whose request was in flight is cancelled by Terraform's stop (the provider's context), so the
    # object may exist with no state: the plan then names it before applying anything, and `adopt`
    # imports it through the gate. Which of the two happens depends on the moment of the Ctrl-C.
    again = cli.run("plan", "--pipeline", "foundation")
    if again.returncode == 14:
        leftovers = re.findall(r"(aws_\w+\.\w+) = ", again.stderr.split("error:", 1)[-1])
        assert leftovers and set(leftovers) <= {
            "aws_s3_bucket.shared_access_logs",
            "aws_kms_key.training_logs",
            "aws_kms_key.production_logs",
        }, again.stderr[-2000:]
        assert "`mlpipe adopt --pipeline foundation`" in again.stderr
        adopted = cli.run("adopt", "--pipeline", "foundation")
        assert adopted.returncode == 0, adopted.stdout[-3000:] + adopted.stderr[-2000:]
    else:
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    finished = cli.run("apply")
    assert finished.returncode == 0, finished.stdout[-3000:]
    converged = cli.run("plan", "--pipeline", "foundation", "--detailed-exitcode")
    assert converged.returncode == 0, converged.stdout[-3000:]
    assert len(_foundation_keys(emulator, cli.config)) == 1, "an interrupted run left a duplicate key"


def test_two_configurations_alternate_in_one_checkout(interrupted: Cli) -> None:
    """Plan A, plan (and destroy) B, synth A again: A's saved plan still applies (same bytes, lock file, backend)."""
    a = interrupted
    second = a.project / "second.toml"
    second.write_text(_config("mlpbalt", 8))
    b = Cli(a.project, second, a.env)
    a.config.write_text(a.config.read_text().replace('Owner = "mlops"', 'Owner = "platform"'))
    planned = a.run("plan", "--pipeline", "foundation", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout[-3000:]  # a tag change to apply
    other = b.run("plan", "--pipeline", "foundation")
    assert other.returncode == 0, other.stdout[-3000:] + other.stderr[-3000:]
    assert a.run("synth").returncode == 0
    applied = a.run("apply")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    assert "Backend configuration changed" not in applied.stdout + applied.stderr
    assert a.run("plan", "--pipeline", "foundation", "--detailed-exitcode").returncode == 0
    gone = b.run("destroy", "--yes", "--pipeline", "foundation")
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-3000:]
    outputs = a.run("output", "--json", "--pipeline", "foundation")
    assert re.search(r'"access_log_bucket": "mlpint-access-logs-610000000000-eu-west-1"', outputs.stdout)
