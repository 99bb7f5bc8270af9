"""The synthesized HCL is valid Terraform with zero warnings, against the offline provider mirror."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mlpipe.engine.terraform import Terraform, default_mirror, find_engine, write_cli_config
from mlpipe.synth.runner import SynthResult

pytestmark = pytest.mark.heavy  # scheduling only: see tests/conftest.py


@pytest.mark.parametrize("which", ["local_synth", "example_synth"])
@pytest.mark.parametrize("stack", ["foundation", "churn"])
def test_init_and_validate_without_warnings(
    which: str, stack: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    synth: SynthResult = request.getfixturevalue(which)
    cli_config = write_cli_config(tmp_path / "terraform.rc", default_mirror())
    # a copy: init writes a lock file, and the synth output is shared by the whole run (other
    # tests compare it file by file)
    workdir = shutil.copytree(synth.stack_dir(stack), tmp_path / stack)
    tf = Terraform(
        workdir,
        find_engine(os.environ),
        cli_config,
        env_extra={"TF_DATA_DIR": str(tmp_path / "data")},
    )
    # -backend=false: the example's S3 backend lives in a real account; validation needs no state.
    init = tf.run(["init", "-input=false", "-no-color", "-backend=false"])
    assert init.returncode == 0, init.stderr
    validate = tf.run(["validate", "-no-color"])
    assert validate.returncode == 0, validate.stderr
    assert "Success! The configuration is valid." in validate.stdout
    assert "Warning" not in validate.stdout + validate.stderr
