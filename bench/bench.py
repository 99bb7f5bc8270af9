"""Print how the tool's costs grow with the number of pipelines, and what the wrapper costs over Terraform.

Figures, not assertions (`make bench`; the README quotes them):

1. synth of 1, 10 and 50 pipelines in one process;
2. plan and apply of one pipeline's stack while 1 or 10 pipelines exist on the emulator;
3. planning 10 pipeline stacks with --jobs 1 and with the default, with the peak memory of all
   processes (each Terraform provider process holds several hundred MB);
4. `mlpipe plan --pipeline X` against a bare `terraform plan` of the same staged stack, with the same
   data dir and variables, when nothing changed and after a configuration change.

Everything runs against one local emulator in a scratch directory; nothing touches real AWS.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlpipe.core.errors import AlreadyExists  # noqa: E402
from mlpipe.emulator.process import Emulator  # noqa: E402
from mlpipe.engine.terraform import find_engine, format_directory, plan_args  # noqa: E402
from mlpipe.synth.runner import synth_workers, synthesize  # noqa: E402
from mlpipe.workflow.flow import DEFAULT_JOBS, Workflow  # noqa: E402
from mlpipe.workflow.workspace import Workspace  # noqa: E402

BASE = (ROOT / "config" / "local.toml").read_text()
HEAD, _, _ = BASE.partition("[[pipelines]]")


def config_text(pipelines: int, extra: str = "") -> str:
    """The local config with `pipelines` pipelines named p01, p02, ..."""
    return HEAD + "".join(f'[[pipelines]]\nname = "p{i:02d}"\n{extra}\n' for i in range(1, pipelines + 1))


def _rss_of_tree(root_pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(stat[1]), []).append(int(entry.name))
            rss[int(entry.name)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


@contextmanager
def peak_memory() -> Iterator[Callable[[], int]]:
    """Sample the memory of this process tree every 0.2 s; yield a function returning the peak."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_of_tree(os.getpid()))
            stop.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        stop.set()
        thread.join()


def timed(work: Callable[[], object]) -> float:
    started = time.monotonic()
    work()
    return time.monotonic() - started


def bench_synth(scratch: Path, counts: list[int]) -> None:
    engine = find_engine(os.environ)
    print("\n1. synth (one `mlpipe synth`, all stacks; children as the default picks them)")
    base = None
    for count in counts:
        config = scratch / f"synth{count}.toml"
        config.write_text(config_text(count))
        outdir = scratch / f"synth{count}"
        with peak_memory() as peak:
            seconds = timed(lambda c=config, o=outdir: synthesize(c, o, lambda d: format_directory(engine, d)))
        base = base or seconds
        children = synth_workers(count + 1)
        print(
            f"   {count:3d} pipelines: {seconds:6.1f} s  ({seconds / base:.2f}x one pipeline;"
            f" {children} child(ren), peak {peak() / 2**30:.2f} GiB)"
        )


def workflow(project: Path, config: Path, url: str, **kwargs: object) -> Workflow:
    return Workflow(config, Workspace(project), echo=lambda _line: None, emulator_url=url, **kwargs)  # type: ignore[arg-type]


def deploy(project: Path, config: Path, url: str) -> None:
    """Plan and apply until every stack is applied (the foundation first).

    Under the bench's load the provider occasionally re-sends a create whose answer was lost, and
    the re-send fails with "already exists" (docs/emulator-notes.md). The bench then recovers the
    way a user would, with `mlpipe adopt` and another apply, and says so: it is not a timing.
    """
    for _round in range(3):
        flow = workflow(project, config, url)
        result = flow.plan()
        try:
            if any(p.changes_present for p in result.stacks.values()):
                flow.apply()
        except AlreadyExists as exc:
            print(f"   (deploy: {str(exc).splitlines()[0]}; recovering with mlpipe adopt)")
            flow = workflow(project, config, url)
            if any(p.changes_present for p in flow.adopt().stacks.values()):
                flow.apply()
            continue
        if not result.blocked:
            return
    raise RuntimeError(f"{config} did not converge in three rounds")


def bench_neighbours(scratch: Path, url: str) -> None:
    print("\n2. one pipeline's stack (p01) while 1 or 10 pipelines exist")
    for count in (1, 10):
        project = scratch / f"platform{count}"
        project.mkdir()
        config = project / "platform.toml"
        config.write_text(config_text(count).replace('name_prefix = "mlpipe"', f'name_prefix = "bench{count}"'))
        deploy(project, config, url)
        plan = statistics.median(
            timed(lambda p=project, c=config: workflow(p, c, url, pipelines=["p01"]).plan()) for _ in range(3)
        )
        # a one-tag change to p01 only, planned and applied
        config.write_text(config.read_text().replace('name = "p01"\n', 'name = "p01"\nbranch = "bench"\n', 1))
        flow = workflow(project, config, url, pipelines=["p01"])
        flow.plan()
        apply = timed(flow.apply)
        print(f"   {count:3d} pipelines: plan p01 {plan:6.1f} s (median of 3), apply a change to p01 {apply:6.1f} s")


def bench_jobs(scratch: Path, url: str) -> None:
    print("\n3. planning 10 pipeline stacks (nothing to change)")
    project = scratch / "platform10"
    config = project / "platform.toml"
    results = {}
    for jobs in (1, DEFAULT_JOBS, 4):
        with peak_memory() as peak:
            seconds = timed(lambda jobs=jobs: workflow(project, config, url, jobs=jobs).plan())
        results[jobs] = seconds
        print(f"   --jobs {jobs}: {seconds:6.1f} s wall, peak memory {peak() / 2**30:5.2f} GiB")
    print(f"   ratio --jobs 1 / --jobs {DEFAULT_JOBS}: {results[1] / results[DEFAULT_JOBS]:.2f}")


def bare_terraform_plan(flow: Workflow, stack: str, default_gc: bool = False) -> float:
    """`terraform plan` of the same staged stack, same data dir, CLI config and variables.

    ``default_gc``: with Go's default GC target, as a user typing `terraform plan` runs it, instead
    of the GOGC mlpipe gives Terraform (mlpipe/engine/terraform.py, TERRAFORM_GOGC).
    """
    tf = flow.terraform(stack, quiet=True)
    args = plan_args(str(Path(tempfile.mkdtemp()) / "bare.tfplan"), flow.variables(stack))
    env = {k: v for k, v in tf.env.items() if not (default_gc and k == "GOGC")}
    started = time.monotonic()
    proc = subprocess.run([*tf.engine.argv_prefix, *args], cwd=tf.workdir, env=env, capture_output=True, check=False)
    seconds = time.monotonic() - started
    assert proc.returncode in (0, 2), proc.stderr[-2000:]
    return seconds


def mlpipe_plan(project: Path, config: Path, url: str, stack: str) -> float:
    env = {**os.environ, "MLPIPE_EMULATOR_URL": url}
    argv = [sys.executable, "-m", "mlpipe", "--config", str(config), "--project-dir", str(project), "plan"]
    started = time.monotonic()
    proc = subprocess.run([*argv, "--pipeline", stack], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return time.monotonic() - started


def bench_overhead(scratch: Path, url: str) -> None:
    print("\n4. mlpipe plan --pipeline p01 against a bare terraform plan of the same stack (median of 3, paired)")
    print("   (bare: with mlpipe's GOGC, so the ratio is the wrapper's cost; default GC: as a user types it)")
    project = scratch / "platform1"
    config = project / "platform.toml"
    flow = workflow(project, config, url)

    def paired() -> tuple[float, float, float]:
        return (
            mlpipe_plan(project, config, url, "p01"),
            bare_terraform_plan(flow, "p01"),
            bare_terraform_plan(flow, "p01", default_gc=True),
        )

    for case in ("unchanged", "changed config"):
        if case == "changed config":
            rounds = []
            for _ in range(3):  # each round changes the config again, so synth and scan really run
                text = config.read_text()
                config.write_text(re.sub(r'branch = "bench\d*"', f'branch = "bench{len(rounds) + 3}"', text))
                rounds.append(paired())
        else:
            mlpipe_plan(project, config, url, "p01")  # warm: synth and scan once
            rounds = [paired() for _ in range(3)]
        ours, bare, default_gc = (statistics.median(r[i] for r in rounds) for i in range(3))
        print(
            f"   {case:15s}: mlpipe plan {ours:6.1f} s, terraform plan {bare:6.1f} s, ratio {ours / bare:.2f}; "
            f"terraform plan with the default GC {default_gc:6.1f} s, ratio {ours / default_gc:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth-counts", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--only", choices=["synth", "neighbours", "jobs", "overhead"], nargs="*")
    args = parser.parse_args()
    chosen = set(args.only or ["synth", "neighbours", "jobs", "overhead"])
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-") as tmp, Emulator() as emu:
        scratch = Path(tmp)
        print(f"machine: {os.cpu_count()} cores; emulator at {emu.url}")
        if "synth" in chosen:
            bench_synth(scratch, args.synth_counts)
        if chosen & {"neighbours", "jobs", "overhead"}:
            bench_neighbours(scratch, emu.url)
        if "jobs" in chosen:
            bench_jobs(scratch, emu.url)
        if "overhead" in chosen:
            bench_overhead(scratch, emu.url)


if __name__ == "__main__":
    main()
