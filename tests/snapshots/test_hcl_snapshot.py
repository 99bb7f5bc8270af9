"""One snapshot of the synthesized HCL per stack and configuration, and byte-identical re-synth.

Review snapshot diffs line by line: every changed line of generated Terraform must be intended.
"""

from __future__ import annotations

from pathlib import Path

from syrupy.assertion import SnapshotAssertion

from mlpipe.synth.runner import SynthResult, synthesize
from tests.conftest import LOCAL_CONFIG


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_local_stack_hcl(local_synth: SynthResult, snapshot: SnapshotAssertion) -> None:
    assert local_synth.hcl_path.read_text() == snapshot


def test_example_stack_hcl(example_synth: SynthResult, snapshot: SnapshotAssertion) -> None:
    assert example_synth.hcl_path.read_text() == snapshot


def test_same_config_synthesizes_byte_identical_output(local_synth: SynthResult, tmp_path: Path) -> None:
    again = synthesize(LOCAL_CONFIG, tmp_path / "cdktf.out")
    first, second = _files(local_synth.outdir), _files(again.outdir)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []
