"""The gate: our own output passes with zero findings, and a failing scan stops Terraform."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlpipe.core.errors import ScanFailed
from mlpipe.gate.scan import checkov_command, enforce, scan
from mlpipe.synth.runner import SynthResult
from mlpipe.workflow import flow as workflow_module
from mlpipe.workflow.flow import Workflow
from mlpipe.workflow.workspace import Workspace
from tests.conftest import LOCAL_CONFIG

FULL_ACCESS_ATTACHMENT = """
resource "aws_iam_role_policy_attachment" "sneaky_full_access" {
  role       = aws_iam_role.training_roles_sagemaker_64AB0DCF.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
  provider   = aws.training
}
"""


def test_checkov_runs_offline_on_hcl_with_our_checks(tmp_path: Path) -> None:
    command = checkov_command(tmp_path / "stack", tmp_path / "reports")
    assert command[command.index("--framework") + 1] == "terraform"
    assert "--skip-download" in command
    assert command[command.index("--external-checks-dir") + 1].endswith("/checks")
    assert [command[i + 1] for i, a in enumerate(command) if a == "--output"] == ["json", "sarif", "junitxml"]


@pytest.mark.parametrize("which", ["local_synth", "example_synth"])
def test_generated_configuration_passes_the_gate(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    synth: SynthResult = request.getfixturevalue(which)
    report = scan(synth.stack_dir, tmp_path / "reports", synth.policies)
    assert report.failed == [], report.render()
    assert report.parsing_errors == [] and report.lint_findings == []
    assert report.passed > 150
    custom = json.loads(report.reports["json"].read_text())["results"]["passed_checks"]
    assert {c["check_id"] for c in custom if c["check_id"].startswith("CKV_MLP_")} == {
        f"CKV_MLP_00{i}" for i in range(1, 7)
    }
    declared = {(check["check"], address) for address, entries in synth.skips.items() for check in entries}
    assert {(s.check_id, s.resource) for s in report.skipped} == declared
    assert all(len(s.reason) > 20 for s in report.skipped)
    for kind in ("json", "sarif", "junit", "summary"):
        assert report.reports[kind].is_file()
    enforce(report)  # must not raise


def _tampered_copy(synth: SynthResult, root: Path) -> SynthResult:
    stack = root / "cdktf.out" / "stacks" / "pipeline"
    shutil.copytree(synth.stack_dir, stack)
    (stack / "cdk.tf").write_text((stack / "cdk.tf").read_text() + FULL_ACCESS_ATTACHMENT)
    return SynthResult(root / "cdktf.out", stack, stack / "cdk.tf", 0.0)


def test_failed_check_stops_the_plan_before_terraform(
    local_synth: SynthResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tampered = _tampered_copy(local_synth, tmp_path)
    monkeypatch.setattr(workflow_module, "synthesize", lambda *_a, **_k: tampered)

    def no_terraform(*_a: object, **_k: object) -> None:
        raise AssertionError("Terraform must not run after a failed scan")

    monkeypatch.setattr(workflow_module, "find_engine", no_terraform)
    monkeypatch.setattr(workflow_module.emulator, "ensure_running", no_terraform)
    flow = Workflow(LOCAL_CONFIG, Workspace(tmp_path), echo=lambda _line: None)
    with pytest.raises(ScanFailed) as info:
        flow.plan()
    message = str(info.value)
    assert "CKV_MLP_005" in message and "aws_iam_role_policy_attachment.sneaky_full_access" in message
    assert not (tampered.stack_dir / ".terraform").exists()
    assert not (tmp_path / ".mlpipe" / "plans").exists()


def test_override_is_loud_and_logged(
    local_synth: SynthResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = _tampered_copy(local_synth, tmp_path)
    report = scan(tampered.stack_dir, tmp_path / "reports", local_synth.policies)
    assert not report.ok
    log = tmp_path / "audit.log"
    enforce(report, accept_failed_scan=True, log=log)
    assert "SCAN FAILED AND WAS OVERRIDDEN" in capsys.readouterr().err
    assert "SCAN FAILED AND WAS OVERRIDDEN" in log.read_text()
