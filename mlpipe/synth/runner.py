"""Synthesize the HCL: validated config in, one formatted ``cdk.tf`` per stack out, all or nothing.

Synthesis runs the app command of ``cdktf.json`` (``python main.py``) in a child process: the
HCL renderer is chosen by SYNTH_HCL_OUTPUT when ``cdktf`` is first imported, jsii keeps a Node
runtime per process, and the wrapper never imports the generator. The child writes into a
staging directory; each stack is laid out (``mlpipe.synth.layout``) and formatted, and only a
complete result replaces the output directory, so a failure at any step leaves the previous
output untouched. The child gets a private temporary directory, removed afterwards even when
the synth is interrupted, so jsii's unpacked runtimes never pile up in /tmp.

A large configuration is split over several children, one per core: building the construct
tree is single-threaded (one Python and one Node process taking turns), so 50 pipelines in one
child take 2.5 times one pipeline; in two children they take well under twice. Each child builds
whole stacks only, so every stack's bytes are the same whichever child built it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipe.core.config import ProjectConfig, load_config
from mlpipe.core.errors import Interrupted, SynthError
from mlpipe.core.paths import PROJECT_ROOT, STACK_MANIFEST, SYNTH_STACKS_ENV
from mlpipe.core.processes import CHILDREN, pid_alive
from mlpipe.synth.layout import finalize_hcl, space_blocks, tidy_policy_documents

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
    workers: int | None = None,
) -> SynthResult:
    """Synthesize ``config_path`` into ``outdir`` (replaced only on success).

    ``workers`` is the number of synth children (default: ``synth_workers``).
    """
    config: ProjectConfig = load_config(config_path)  # fail fast, before any file is touched
    shards = shard_stacks(config.stacks, workers or synth_workers(len(config.stacks), env=env))
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
        "TMPDIR": str(scratch),
    }
    try:
        out = staging / "out"
        if len(shards) == 1:
            _run_children([{**child_env, "CDKTF_OUTDIR": str(out)}])
        else:
            envs = [
                {**child_env, "CDKTF_OUTDIR": str(staging / f"part-{i}"), SYNTH_STACKS_ENV: ",".join(shard)}
                for i, shard in enumerate(shards)
            ]
            _run_children(envs)
            for i, shard in enumerate(shards):
                for stack in shard:
                    (out / "stacks").mkdir(parents=True, exist_ok=True)
                    (staging / f"part-{i}" / "stacks" / stack).rename(out / "stacks" / stack)
        for stack in config.stacks:
            _finalize_stack(out / "stacks" / stack)
        shutil.rmtree(out / "build", ignore_errors=True)
        # cdktf's app manifest: nothing reads it, and a split synth would have one per child.
        (out / "manifest.json").unlink(missing_ok=True)
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


# A child pays off once it gets this many stacks: each pays ~3 s of start-up (Node, the bindings'
# assembly) and holds ~0.65 GiB. Measured on 2 cores (bench.py with MLPIPE_SYNTH_WORKERS=1/2, two
# runs each): the same up to 4 stacks (3.0-4.1 s either way), two children faster from 6 stacks
# (4.0-4.3 vs 4.7-5.2 s), 12 stacks (5.1-5.6 vs 7.0-7.5 s) and 24 stacks (7.5-8.0 vs 11.0-11.5 s).
STACKS_PER_CHILD = 3
SYNTH_WORKERS_ENV = "MLPIPE_SYNTH_WORKERS"


def synth_workers(stack_count: int, cores: int | None = None, env: Mapping[str, str] | None = None) -> int:
    """How many synth children to run: one per core, once the stacks outweigh a child's start-up.

    ``MLPIPE_SYNTH_WORKERS`` overrides it (each child holds about 1 GB while it builds).
    """
    override = (env if env is not None else os.environ).get(SYNTH_WORKERS_ENV, "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise SynthError(
                f"{SYNTH_WORKERS_ENV}={override!r} is not a positive whole number",
                f"set {SYNTH_WORKERS_ENV} to 1, 2, ... or unset it for one child per core",
            )
        return min(int(override), stack_count)
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, stack_count // STACKS_PER_CHILD))


def shard_stacks(stacks: tuple[str, ...], workers: int) -> list[tuple[str, ...]]:
    """Deal the stacks to ``workers`` children in turn (pipelines cost about the same each)."""
    workers = max(1, min(workers, len(stacks)))
    return [stacks[i::workers] for i in range(workers)]


def _run_children(envs: list[dict[str, str]]) -> None:
    """Run one ``python main.py`` per environment, at once; the first failure stops the others.

    On Ctrl-C/SIGTERM every child is stopped and waited for, so nothing is left running.
    """
    procs: list[subprocess.Popen[str]] = []
    results: dict[int, tuple[str, str]] = {}
    failed = threading.Event()

    def wait(index: int, proc: subprocess.Popen[str]) -> None:
        results[index] = proc.communicate()
        if proc.returncode != 0:
            failed.set()
            for other in procs:
                if other is not proc:
                    _stop(other)

    with contextlib.ExitStack() as tracked:
        try:
            for env in envs:
                proc = subprocess.Popen(
                    [sys.executable, "main.py"],
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,  # our signal handling decides when the child stops
                )
                procs.append(proc)
                tracked.enter_context(CHILDREN.track(proc))
            waiters = [threading.Thread(target=wait, args=(i, p), daemon=True) for i, p in enumerate(procs)]
            for waiter in waiters:
                waiter.start()
            for waiter in waiters:
                while waiter.is_alive():
                    waiter.join(timeout=0.2)  # short joins: the main thread stays responsive to signals
        except BaseException:
            for proc in procs:
                _stop(proc)
            raise
    if CHILDREN.interrupted.is_set():
        raise Interrupted("synth interrupted: the previous output is untouched", "run the command again")
    for index, proc in enumerate(procs):
        if proc.returncode != 0 and index in results and not _stopped_by_us(proc, failed):
            stdout, stderr = results[index]
            raise SynthError(
                f"synth failed (exit {proc.returncode}):\n{_tail(stderr or stdout)}",
                "read the error above; a ConfigError or TemplateError names the file to fix",
            )
    if failed.is_set():  # only children stopped by us remain: should not happen, but never pass it
        raise SynthError("synth failed: a synth child was stopped", "run the command again")


def _stopped_by_us(proc: subprocess.Popen[str], failed: threading.Event) -> bool:
    """A child that ended by our SIGTERM after another child failed is not the one to report."""
    return failed.is_set() and proc.returncode == -signal.SIGTERM


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
