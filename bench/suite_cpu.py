"""Where a test run's CPU goes: by kind of process and by test file.

Why: on a small machine the suite is CPU-bound, so its wall time cannot drop below its CPU
seconds divided by the cores, however the tests are spread over workers. This runs pytest (the
arguments after ``--``; default: what ``make test-fast`` runs), samples every process the run
starts every 0.1 s, and charges each one's CPU to its kind (the AWS provider, Terraform, jsii's
Node.js, checkov, the emulator, pytest workers) and to the test that started it (the
``PYTEST_CURRENT_TEST`` a child inherits from its worker). Linux only (reads ``/proc``).

    .venv/bin/python bench/suite_cpu.py                       # the fast suite
    .venv/bin/python bench/suite_cpu.py -- -n 2 --dist loadfile tests/e2e

A process that lives less than one sampling interval is counted from its last sample only, so
the per-kind figures are a lower bound; the total comes from the kernel (pytest's children) and
the difference is printed as "not sampled".
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST_SUITE = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder", "-m", "not e2e", "-q"]
INTERVAL_S = 0.1
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Seen:
    kind: str
    test_file: str
    cpu_s: float


def kind_of(argv: list[str]) -> str:
    """A short name for what a process is, from its command line."""
    line = " ".join(argv)
    program = Path(argv[0]).name if argv else ""
    if program.startswith("terraform-provider-"):
        return "AWS provider"
    if program == "terraform":
        return "Terraform"
    if program == "node":
        return "Node.js (jsii, synth)"
    if "checkov" in line:
        return "checkov (gate)"
    if "mlpipe.emulator" in line:
        return "emulator (moto)"
    if "main.py" in line or "import main" in line:
        return "synth child (Python)"
    if "-m mlpipe" in line:
        return "mlpipe CLI"
    if "execnet" in line or "exec(eval(sys.stdin.readline()))" in line:
        return "pytest worker"
    if "pytest" in line:
        return "pytest"
    return program or "?"


def _read(pid: str) -> tuple[str, float, list[str], str] | None:
    """(start time, CPU seconds, argv, test file) of one process, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        test = ""
        for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if item.startswith(b"PYTEST_CURRENT_TEST="):
                test = item.split(b"=", 1)[1].decode(errors="replace").split("::", 1)[0]
        return fields[19], cpu, argv, test
    except (OSError, IndexError, ValueError):
        return None


def run(pytest_args: list[str]) -> tuple[float, float, dict[tuple[str, str], Seen]]:
    """Run pytest, sampling every new process; wall seconds, kernel-counted CPU, samples."""
    before = {p for p in os.listdir("/proc") if p.isdigit()}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT)
    seen: dict[tuple[str, str], Seen] = {}
    while proc.poll() is None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid in before:
                continue
            read = _read(pid)
            if read is None:
                continue
            start, cpu, argv, test = read
            if (pid, start) in seen:
                seen[(pid, start)].cpu_s = cpu
            elif argv:  # a kernel thread or a process already gone has no command line
                seen[(pid, start)] = Seen(kind_of(argv), test, cpu)
        time.sleep(INTERVAL_S)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if proc.returncode != 0:
        print(f"pytest exited {proc.returncode}: the figures below are of a failed run", file=sys.stderr)
    return wall, total, seen


def report(wall: float, total: float, seen: dict[tuple[str, str], Seen], top: int) -> None:
    cores = os.cpu_count() or 1
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    by_file: dict[str, float] = defaultdict(float)
    for item in seen.values():
        by_kind[item.kind][0] += item.cpu_s
        by_kind[item.kind][1] += 1
        by_file[item.test_file or "(outside a test: workers, session fixtures)"] += item.cpu_s
    sampled = sum(item.cpu_s for item in seen.values())
    print(f"\nwall {wall:.1f} s, CPU {total:.1f} s ({100 * total / wall:.0f} % of one core; {cores} cores)")
    print(f"floor on this machine: CPU / cores = {total / cores:.1f} s, whatever the spread over workers")
    print("\nCPU by kind of process            CPU s  processes")
    for kind, (cpu, count) in sorted(by_kind.items(), key=lambda kv: -kv[1][0]):
        print(f"  {kind:30s} {cpu:7.1f}  {int(count):9d}")
    print(f"  {'not sampled (short-lived)':30s} {max(total - sampled, 0.0):7.1f}")
    print(f"\nCPU of the processes each test file started (top {top})")
    for name, cpu in sorted(by_file.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {cpu:7.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=15, help="test files to list (default: 15)")
    parser.add_argument("pytest_args", nargs="*", help="after --: pytest's arguments (default: the fast suite)")
    args = parser.parse_args()
    if not Path("/proc/self/stat").exists():
        sys.exit("bench/suite_cpu.py reads /proc: run it on Linux")
    wall, total, seen = run(args.pytest_args or FAST_SUITE)
    report(wall, total, seen, args.top)


if __name__ == "__main__":
    main()
