"""The gate: our own output passes with zero findings, and a failing or raced scan stops Terraform."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mlpipe.core.config import load_config
from mlpipe.core.errors import ScanFailed, StalePlan
from mlpipe.gate.access.gate import load_manifests, run_access_gate
from mlpipe.gate.scan import _run, checkov_command, enforce, scan
from mlpipe.synth.runner import SynthResult
from mlpipe.workflow.flow import Workflow
from mlpipe.workflow.workspace import Workspace
from tests.conftest import EXAMPLE_CONFIG, LOCAL_CONFIG

pytestmark = pytest.mark.heavy  # scheduling only: see tests/conftest.py

STACKS = ["foundation", "churn", "fraud"]
FULL_ACCESS_ATTACHMENT = """
resource "aws_iam_role_policy_attachment" "sneaky_full_access" {
  role       = aws_iam_role.training_sagemaker.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
  provider   = aws.training
}
"""


def _staged(synth: SynthResult, root: Path) -> Path:
    stacks = root / "stacks"
    for stack in STACKS:
        shutil.copytree(synth.stack_dir(stack), stacks / stack)
    return stacks


def test_checkov_runs_offline_on_hcl_with_our_checks(tmp_path: Path) -> None:
    command = checkov_command(tmp_path / "stacks", tmp_path / "reports")
    assert command[command.index("--directory") + 1] == str(tmp_path / "stacks")
    assert command[command.index("--framework") + 1] == "terraform"
    assert "--skip-download" in command
    assert command[command.index("--external-checks-dir") + 1].endswith("/gate/checks")
    assert [command[i + 1] for i, a in enumerate(command) if a == "--output"] == ["json", "sarif", "junitxml"]


@pytest.mark.parametrize(("which", "config"), [("local_synth", LOCAL_CONFIG), ("example_synth", EXAMPLE_CONFIG)])
def test_generated_configuration_passes_the_whole_gate(
    which: str, config: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    synth: SynthResult = request.getfixturevalue(which)
    stacks = _staged(synth, tmp_path)
    reports = tmp_path / "reports"
    project = load_config(config)

    def access() -> list[str]:
        return list(run_access_gate(project, load_manifests(stacks, STACKS), reports, stacks).findings)

    report = scan(stacks, STACKS, reports, project.region, access=access)
    assert report.ok, report.render()
    assert report.failed == [] and report.parsing_errors == [] and report.lint_findings == []
    assert report.access_findings == []
    assert report.passed_by_stack["foundation"] > 30 and report.passed_by_stack["churn"] > 300
    results = json.loads(report.reports["json"].read_text())["results"]["passed_checks"]
    custom = {c["check_id"] for c in results if c["check_id"].startswith("CKV_MLP_")}
    assert custom == {f"CKV_MLP_00{i}" for i in range(1, 10)}
    declared = {
        (entry["check"], address)
        for stack in STACKS
        for address, entries in synth.manifest(stack)["skips"].items()
        for entry in entries
    }
    assert {(s.check_id, s.resource) for s in report.skipped} == declared
    assert all(len(s.reason) > 20 for s in report.skipped)
    for kind in ("json", "sarif", "junit", "summary", "access", "graph"):
        assert report.reports[kind].is_file(), kind
    tools = [r["tool"]["driver"]["name"] for r in json.loads(report.reports["sarif"].read_text())["runs"]]
    assert "mlpipe-access" in tools  # the access proof's findings reach code scanning with checkov's
    assert set(report.fingerprints) == set(STACKS)


def test_a_stack_changed_while_it_is_scanned_is_refused(local_synth: SynthResult, tmp_path: Path) -> None:
    stacks = _staged(local_synth, tmp_path)

    def racing_runner(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        result = _run(argv, env)  # the scan runs on the scanned bytes ...
        hcl = stacks / "churn" / "cdk.tf"
        hcl.write_text(hcl.read_text() + FULL_ACCESS_ATTACHMENT)  # ... then someone swaps them
        return result

    with pytest.raises(ScanFailed, match=r"\['churn'\] changed on disk while they were being scanned"):
        scan(stacks, STACKS, tmp_path / "reports", "eu-west-1", runner=racing_runner)


class _Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


def _workflow_on(synth: SynthResult, project: Path, tamper: str = "", **kwargs: Any) -> Workflow:
    """A workflow whose synth step reuses the session's synth output (optionally tampered with)."""
    flow = Workflow(LOCAL_CONFIG, Workspace(project), echo=_Lines(), emulator_url="http://127.0.0.1:9", **kwargs)
    outdir = project / "cdktf.out"
    shutil.copytree(synth.outdir, outdir)
    if tamper:
        hcl = outdir / "stacks" / "churn" / "cdk.tf"
        hcl.write_text(hcl.read_text() + tamper)
    flow.synth = lambda: SynthResult(outdir, synth.config_sha256, synth.stacks, 0.0)  # type: ignore[method-assign]
    return flow


def test_a_failed_check_stops_the_plan_before_terraform(local_synth: SynthResult, tmp_path: Path) -> None:
    flow = _workflow_on(local_synth, tmp_path, FULL_ACCESS_ATTACHMENT)
    with pytest.raises(ScanFailed) as info:
        flow.plan()
    assert info.value.exit_code == 6
    assert "CKV_MLP_005" in str(info.value) and "sneaky_full_access" in str(info.value)
    assert not flow.files.gate_record.exists()  # nothing a later plan could take for a pass
    assert not (flow.files.root / "terraform").exists() and not (flow.files.root / "plans").exists()


def test_the_override_is_loud_recorded_and_audited(
    local_synth: SynthResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = _workflow_on(local_synth, tmp_path, FULL_ACCESS_ATTACHMENT, accept_failed_scan=True)
    report = flow.scan()
    assert not report.ok
    assert "SCAN FAILED AND WAS OVERRIDDEN" in capsys.readouterr().err
    record = json.loads(flow.files.gate_record.read_text())
    assert record["overridden"] is True and "CKV_MLP_005" in record["failed_ids"]
    (line,) = flow.workspace.audit_log.read_text().splitlines()
    audit = json.loads(line)
    assert audit["event"] == "scan-override" and audit["config"] == str(LOCAL_CONFIG.resolve())
    assert audit["user"] and "CKV_MLP_005" in audit["failed_checks"]
    assert audit["fingerprints"] == record["fingerprints"]


def test_plan_refuses_staged_bytes_the_gate_did_not_scan(local_synth: SynthResult, tmp_path: Path) -> None:
    flow = _workflow_on(local_synth, tmp_path)
    flow.scan()
    hcl = flow.files.stack_dir("churn") / "cdk.tf"
    hcl.write_text(hcl.read_text() + FULL_ACCESS_ATTACHMENT)
    with pytest.raises(StalePlan, match="is not what the gate scanned"):
        flow._verified_fingerprint("churn", flow._gate_record())


def test_enforce_without_findings_records_and_passes(local_synth: SynthResult, tmp_path: Path) -> None:
    stacks = _staged(local_synth, tmp_path)
    report = scan(stacks, STACKS, tmp_path / "reports", "eu-west-1")
    record = tmp_path / "gate.json"
    enforce(report, False, tmp_path / "audit.log", LOCAL_CONFIG, record)
    assert json.loads(record.read_text())["ok"] is True
    assert not (tmp_path / "audit.log").exists()
