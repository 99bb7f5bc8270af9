"""Synthesize the HCL: validated config in, one formatted ``cdk.tf`` per stack out, all or nothing.

Synthesis runs the app command of ``cdktf.json`` (``python main.py``) in a child process: the
HCL renderer is chosen by SYNTH_HCL_OUTPUT when ``cdktf`` is first imported, jsii keeps a Node
runtime per process, and the wrapper never imports the generator. The child writes into a
staging directory; each stack is laid out (``mlpipe.synth.layout``) and formatted, and only a
complete result replaces the output directory, so a failure at any step leaves the previous
output untouched. The child gets a private temporary directory, removed afterwards even when
the synth is interrupted, so jsii's unpacked runtimes never pile up in /tmp.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipe.core.config import ProjectConfig, load_config
from mlpipe.core.errors import Interrupted, SynthError
from mlpipe.core.paths import PROJECT_ROOT
from mlpipe.core.processes import CHILDREN, pid_alive
from mlpipe.synth.layout import finalize_hcl, space_blocks, tidy_policy_documents

STACK_MANIFEST = "mlpipe-stack.json"  # written by main.py next to each stack's cdk.tf
SYNTH_RECORD = "mlpipe-synth.json"  # written here: which configuration the output came from
STAGING_PREFIX = ".mlpipe-synth-"
SYNTH_ENV = {
    "SYNTH_HCL_OUTPUT": "true",
    "CHECKPOINT_DISABLE": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
}

Formatter = Callable[[Path], None]


@dataclass(frozen=True)
class SynthResult:
    """One synthesized configuration: a directory per stack, foundation first."""

    outdir: Path
    config_sha256: str
    stacks: tuple[str, ...]
    seconds: float

    def stack_dir(self, stack: str) -> Path:
        return self.outdir / "stacks" / stack

    def manifest(self, stack: str) -> dict[str, Any]:
        return json.loads((self.stack_dir(stack) / STACK_MANIFEST).read_text())

    def hcl(self, stack: str) -> str:
        return (self.stack_dir(stack) / "cdk.tf").read_text()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_synth_record(outdir: Path) -> dict[str, Any] | None:
    """What the last synth into ``outdir`` says about itself, or None if there is no complete output."""
    try:
        record = json.loads((outdir / SYNTH_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def output_fingerprint(outdir: Path, stacks: list[str] | tuple[str, ...]) -> str:
    """The synthesized stacks' bytes, so a cached output is only reused while nobody changed it."""
    digest = hashlib.sha256()
    for stack in stacks:
        directory = outdir / "stacks" / stack
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            name = path.relative_to(outdir).as_posix().encode()
            data = path.read_bytes()
            digest.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def synthesize(
    config_path: Path,
    outdir: Path,
    formatter: Formatter,
    env: Mapping[str, str] | None = None,
    inputs_sha256: str = "",
) -> SynthResult:
    """Synthesize ``config_path`` into ``outdir`` (replaced only on success)."""
    config: ProjectConfig = load_config(config_path)  # fail fast, before any file is touched
    started = time.monotonic()
    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(outdir.parent)
    staging = outdir.parent / f"{STAGING_PREFIX}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    scratch = staging / "tmp"
    scratch.mkdir(parents=True)
    child_env = {
        **(env or os.environ),
        **SYNTH_ENV,
        "MLPIPE_CONFIG": str(Path(config_path).resolve()),
        "CDKTF_OUTDIR": str(staging / "out"),
        "TMPDIR": str(scratch),
    }
    try:
        _run_child(child_env)
        out = staging / "out"
        for stack in config.stacks:
            _finalize_stack(out / "stacks" / stack)
        shutil.rmtree(out / "build", ignore_errors=True)
        formatter(out / "stacks")
        for stack in config.stacks:
            hcl = out / "stacks" / stack / "cdk.tf"
            hcl.write_text(tidy_policy_documents(hcl.read_text()), encoding="utf-8")
        formatter(out / "stacks")  # realign after the tidy-up
        for stack in config.stacks:
            hcl = out / "stacks" / stack / "cdk.tf"
            hcl.write_text(space_blocks(hcl.read_text()), encoding="utf-8")
        sha = file_sha256(Path(config_path))
        record = {
            "config": str(Path(config_path).resolve()),
            "config_sha256": sha,
            "stacks": list(config.stacks),
            "inputs_sha256": inputs_sha256,
            "output_sha256": output_fingerprint(out, config.stacks),
        }
        (out / SYNTH_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        backup = outdir.parent / f"{STAGING_PREFIX}{os.getpid()}-old"
        if outdir.exists():
            outdir.rename(backup)
        out.rename(outdir)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SynthResult(outdir, sha, config.stacks, time.monotonic() - started)


def _run_child(env: Mapping[str, str]) -> None:
    """Run ``python main.py``; on Ctrl-C/SIGTERM stop it and wait, so nothing is left running."""
    proc = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=PROJECT_ROOT,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # our signal handling decides when the child stops
    )
    with CHILDREN.track(proc):
        try:
            stdout, stderr = proc.communicate()
        except BaseException:
            _stop(proc)
            raise
    if CHILDREN.interrupted.is_set():
        raise Interrupted("synth interrupted: the previous output is untouched", "run the command again")
    if proc.returncode != 0:
        raise SynthError(
            f"synth failed (exit {proc.returncode}):\n{_tail(stderr or stdout)}",
            "read the error above; a ConfigError or TemplateError names the file to fix",
        )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _finalize_stack(directory: Path) -> None:
    hcl = directory / "cdk.tf"
    manifest_path = directory / STACK_MANIFEST
    if not hcl.is_file() or not manifest_path.is_file():
        raise SynthError(f"synth produced no cdk.tf and {STACK_MANIFEST} in {directory}")
    manifest = json.loads(manifest_path.read_text())
    hcl.write_text(finalize_hcl(hcl.read_text(), manifest["literals"], manifest["skips"]), encoding="utf-8")
    # cdktf's own per-stack manifest points at the staging paths; nothing reads it.
    (directory / "cdk.tf.json").unlink(missing_ok=True)


def remove_stale_staging(parent: Path) -> None:
    """Remove staging directories left by a synth that was killed (its process no longer exists)."""
    for path in parent.glob(f"{STAGING_PREFIX}*"):
        pid = path.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
