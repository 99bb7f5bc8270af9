"""Splitting a large configuration over several synth children: who builds what, and failure.

That the bytes are the same whichever child built a stack is proven by the byte-identical
re-synth in tests/snapshots (one child against two).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlpipe.core.errors import SynthError
from mlpipe.core.paths import SYNTH_STACKS_ENV
from mlpipe.synth.runner import SYNTH_ENV, _run_children, shard_stacks, synth_workers
from tests.conftest import LOCAL_CONFIG


def test_small_configurations_use_one_child() -> None:
    assert synth_workers(3, cores=2, env={}) == 1  # config/local.toml: foundation + 2 pipelines
    assert synth_workers(2, cores=8, env={}) == 1
    assert synth_workers(5, cores=2, env={}) == 1  # two children pay off from about six stacks


def test_large_configurations_use_one_child_per_core_and_no_more() -> None:
    assert synth_workers(6, cores=2, env={}) == 2
    assert synth_workers(51, cores=2, env={}) == 2
    assert synth_workers(51, cores=8, env={}) == 8
    assert synth_workers(12, cores=8, env={}) == 4  # at least three stacks per child
    assert synth_workers(51, cores=1, env={}) == 1


def test_the_worker_count_can_be_set_but_never_beyond_the_stacks() -> None:
    assert synth_workers(51, cores=2, env={"MLPIPE_SYNTH_WORKERS": "1"}) == 1
    assert synth_workers(3, cores=2, env={"MLPIPE_SYNTH_WORKERS": "8"}) == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_worker_count_is_named(value: str) -> None:
    with pytest.raises(SynthError, match="MLPIPE_SYNTH_WORKERS") as error:
        synth_workers(10, cores=2, env={"MLPIPE_SYNTH_WORKERS": value})
    assert repr(value) in str(error.value)


def test_every_stack_is_built_by_exactly_one_child() -> None:
    stacks = ("foundation", *(f"p{i:02d}" for i in range(1, 51)))
    shards = shard_stacks(stacks, 2)
    assert len(shards) == 2
    assert sorted(s for shard in shards for s in shard) == sorted(stacks)
    assert shards[0][0] == "foundation"
    assert abs(len(shards[0]) - len(shards[1])) <= 1
    assert shard_stacks(("foundation", "churn"), 4) == [("foundation",), ("churn",)]


def _children_running_main(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"main.py" in cmdline:
            found.append(int(entry.name))
    return found


def test_a_failing_child_fails_the_synth_with_its_own_error_and_leaves_no_child(tmp_path: Path) -> None:
    base = {**os.environ, **SYNTH_ENV, "MLPIPE_CONFIG": str(LOCAL_CONFIG), "TMPDIR": str(tmp_path)}
    good = {**base, "CDKTF_OUTDIR": str(tmp_path / "good"), SYNTH_STACKS_ENV: "foundation"}
    bad = {**base, "CDKTF_OUTDIR": str(tmp_path / "bad"), SYNTH_STACKS_ENV: "churn,nosuchpipeline"}
    with pytest.raises(SynthError, match="nosuchpipeline"):
        _run_children([good, bad])
    assert _children_running_main(os.getpid()) == []
