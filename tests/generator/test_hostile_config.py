"""A configuration full of Terraform syntax synthesizes to HCL that Terraform reads back as exact data.

The values pass validation (AWS accepts them), so they must reach Terraform as literals: the
synthesized stack is initialised and `terraform console` — Terraform's own parser on the real
`cdk.tf` — must give back every value byte for byte; the resources must use them only through the
locals they were written to.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from mlpipe.core.config import load_config
from mlpipe.engine.terraform import default_mirror, find_engine, write_cli_config
from mlpipe.synth.runner import SynthResult
from tests.conftest import LOCAL_CONFIG, synth

BRANCH = "feat/${var.emulator_url}\"%{if}x%{endif}é'$$}"
HYPERPARAMETER = 'a"b\\n${var.x}%{ if true }y%{ endif }\\'
TAG = "ml ops: a+b=c/d@e"
EMAIL = "ops+ml@example.com"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    root = tmp_path_factory.mktemp("hostile")
    data = tomllib.loads(LOCAL_CONFIG.read_text())
    text = LOCAL_CONFIG.read_text().split("[[pipelines]]", 1)[0]
    text = text.replace('Owner = "mlops"', f"Owner = {json.dumps(TAG)}")
    text += "\n[[pipelines]]\n"
    text += f'name = "churn"\nbranch = {json.dumps(BRANCH)}\nnotification_emails = [{json.dumps(EMAIL)}]\n'
    text += f"[pipelines.training.hyperparameters]\neta = {json.dumps(HYPERPARAMETER)}\n"
    config = root / "hostile.toml"
    config.write_text(text)
    assert data["project"]["name_prefix"] == load_config(config).name_prefix  # it validates
    return synth(config, root / "cdktf.out")


def _console(stack_dir: Path, tmp_path: Path, expression: str) -> object:
    engine = find_engine(os.environ)
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(write_cli_config(tmp_path / "terraform.rc", default_mirror())),
        "TF_DATA_DIR": str(tmp_path / "data"),
        "CHECKPOINT_DISABLE": "1",
    }
    init = [*engine.argv_prefix, "init", "-input=false", "-no-color", f"-backend-config=path={tmp_path / 's'}"]
    proc = subprocess.run(init, cwd=stack_dir, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    variables = ["-var", "emulator_url=http://127.0.0.1:1", "-var", f"foundation_state_path={tmp_path / 'f'}"]
    proc = subprocess.run(
        [*engine.argv_prefix, "console", "-no-color", *variables],
        cwd=stack_dir,
        env=env,
        input=f"base64encode(jsonencode({expression}))\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(base64.b64decode(json.loads(proc.stdout)))


def test_terraform_reads_every_value_back_exactly(hostile: SynthResult, tmp_path: Path) -> None:
    values = _console(
        hostile.stack_dir("churn"),
        tmp_path,
        "{b = local.branch, h = local.training_hyperparameters, t = local.tags, e = local.notification_emails}",
    )
    assert values == {
        "b": BRANCH,
        "h": {"eta": HYPERPARAMETER, "max_depth": "5", "num_round": "50", "objective": "binary:logistic"},
        "t": {"Owner": TAG, "Project": "mlpipe"},
        "e": [EMAIL],
    }


def test_resources_use_the_values_only_through_their_locals(hostile: SynthResult) -> None:
    hcl = hostile.hcl("churn")
    locals_block = hcl[hcl.index("locals {") :].split("\n}\n", 1)[0]
    assert "${var.emulator_url}" not in hcl.replace(locals_block, "")  # the literal appears nowhere else
    assert re.search(r"BranchName\s*=\s*local\.branch", hcl)
    assert re.search(r"referenceName\s*=\s*\[local\.branch\]", hcl)
    assert '"refs/heads/${local.branch}"' in hcl
    assert re.search(r"default_hyperparameters\s*=\s*local\.training_hyperparameters", hcl)
    assert re.search(r"endpoint\s*=\s*element\(local\.notification_emails, 0\)", hcl)
    assert re.search(r'output "branch" \{\n\s+value = local\.branch', hcl)
