"""One snapshot of the synthesized HCL per stack and configuration, and byte-identical re-synth.

The re-synth splits the stacks over two synth children (as a large configuration does), so the
same test proves that the bytes do not depend on which child built a stack.

Review snapshot diffs line by line: every changed line of generated Terraform must be intended.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from mlpipe.synth.runner import SynthResult, synthesize
from tests.conftest import LOCAL_CONFIG, formatter

STACKS = ("foundation", "churn", "fraud")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stack", STACKS)
def test_local_stack_hcl(local_synth: SynthResult, stack: str, snapshot: SnapshotAssertion) -> None:
    assert local_synth.hcl(stack) == snapshot


@pytest.mark.parametrize("stack", STACKS)
def test_example_stack_hcl(example_synth: SynthResult, stack: str, snapshot: SnapshotAssertion) -> None:
    assert example_synth.hcl(stack) == snapshot


def test_same_config_synthesizes_byte_identical_output_in_one_child_or_two(
    local_synth: SynthResult, tmp_path: Path
) -> None:
    again = synthesize(LOCAL_CONFIG, tmp_path / "cdktf.out", formatter(), workers=2)
    first, second = _files(local_synth.outdir), _files(again.outdir)
    assert sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    # the synth record names the output's own configuration path only, which is the same here
    assert differing == []
