"""Print wall times of synth, scan, init, plan and apply for 1 and N pipelines on the local emulator.

Each pipeline is its own configuration (distinct name prefix, distinct accounts) in its own
workspace, all against one emulator: this measures how the tool's cost grows with the number of
pipelines a platform team manages. Figures, not assertions: run `make bench` and read them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlpipe.emulator.process import Emulator  # noqa: E402
from mlpipe.workflow.flow import Workflow  # noqa: E402
from mlpipe.workflow.workspace import Workspace  # noqa: E402

STEPS = ("synth", "scan", "init", "plan", "show", "apply", "seed")


def pipeline_config(directory: Path, index: int) -> Path:
    base = (ROOT / "config" / "local.toml").read_text()
    text = base.replace('name_prefix = "mlpipe"', f'name_prefix = "bench{index:02d}"')
    for old, account in (("111111111111", 1), ("222222222222", 2), ("333333333333", 3)):
        text = text.replace(old, f"{index:02d}{account}".ljust(12, "0"))
    path = directory / f"bench{index:02d}.toml"
    path.write_text(text)
    return path


def run(count: int, url: str, scratch: Path, first: int) -> dict[str, list[float]]:
    """Deploy `count` pipelines numbered from `first` (numbers never repeat on one emulator)."""
    timings: dict[str, list[float]] = {step: [] for step in STEPS}
    for index in range(first, first + count):
        project = scratch / f"p{index}"
        project.mkdir()
        flow = Workflow(pipeline_config(project, index), Workspace(project), echo=lambda _l: None, emulator_url=url)
        flow.plan()
        flow.apply()
        for step in STEPS:
            timings[step].append(flow.timings.get(step, 0.0))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        first = 1
        for count in args.counts:
            started = time.monotonic()
            timings = run(count, emu.url, Path(tmp), first)
            first += count
            total = time.monotonic() - started
            print(f"\n{count} pipeline(s): {total:.1f} s wall in all")
            print(f"  {'step':<6} {'total s':>9} {'mean s':>8} {'max s':>7}")
            for step in STEPS:
                values = timings[step]
                print(f"  {step:<6} {sum(values):9.1f} {statistics.mean(values):8.1f} {max(values):7.1f}")


if __name__ == "__main__":
    main()
