"""The access proof on real syntheses: the unchanged project passes, and every broken template is named.

Three syntheses (~15 s each) of config/local.toml: the unchanged project, and two copies of policies/ with several
independent mutations each (their findings name different calls, so one synthesis serves them all).

KNOWN_DEFECTS are real AccessDenied errors of the unchanged policies that a deploy would hit (see their comments):
the unchanged project may report them and nothing else; remove an entry once policies/ is fixed.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlpipe.core.config import ProjectConfig, load_config
from mlpipe.core.paths import PROJECT_ROOT
from mlpipe.gate.access.analysis import AccessReport, CheckedCall, Expectation, FindingKind, analyze
from mlpipe.gate.access.calls import NEEDED
from mlpipe.gate.access.gate import load_manifests, run_access_gate
from mlpipe.gate.access.graph import mermaid
from mlpipe.gate.access.report import sarif_run

pytestmark = pytest.mark.heavy  # scheduling only: see tests/conftest.py

LOCAL = PROJECT_ROOT / "config" / "local.toml"
OTHER_KEY = "arn:aws:kms:eu-west-1:111111111111:key/not-a-pipeline-key"
BUCKET = "arn:aws:s3:::mlpipe-{p}-artifacts-111111111111-eu-west-1"
ALLOWED_OUTCOME, DENIED = "ALLOWED", ("EXPLICIT_DENY", "IMPLICIT_DENY")


@dataclass(frozen=True)
class Synth:
    config: ProjectConfig
    stacks_dir: Path
    manifests: dict[str, dict[str, Any]]


def start_synth(outdir: Path, policies: Path | None = None) -> subprocess.Popen[str]:
    """Start the CDKTF app exactly as `mlpipe synth` does on config/local.toml, optionally on another policies/."""
    env = {
        **os.environ,
        "MLPIPE_CONFIG": str(LOCAL),
        "CDKTF_OUTDIR": str(outdir),
        "SYNTH_HCL_OUTPUT": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    env.pop("MLPIPE_POLICIES_DIR", None)
    if policies is not None:
        env["MLPIPE_POLICIES_DIR"] = str(policies)
    return subprocess.Popen(
        [sys.executable, "main.py"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def finish_synth(proc: subprocess.Popen[str], outdir: Path) -> Synth:
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-4000:]
    config = load_config(LOCAL)
    return Synth(config, outdir / "stacks", load_manifests(outdir / "stacks", config.stacks))


def mutate(tmp: Path, edits: list[tuple[str, Callable[[str], str]]]) -> Path:
    """A copy of policies/ with each edit applied to its template (an edit that changes nothing fails)."""
    target = tmp / "policies"
    shutil.copytree(PROJECT_ROOT / "policies", target)
    for template, edit in edits:
        path = target / template
        before = path.read_text()
        after = edit(before)
        assert after != before, f"mutation of {template} no longer applies: update this test"
        path.write_text(after)
    return target


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert text.count(old) == 1, f"expected exactly one {old!r}"
        return text.replace(old, new)

    return edit


def drop_statement(sid: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        pattern = re.compile(r'\n\s*\{\n\s*"Sid": "' + sid + r'".*?\n\s*\},', re.DOTALL)
        assert len(pattern.findall(text)) == 1, f"expected one statement {sid}"
        return pattern.sub("", text)

    return edit


def _role(principal: str) -> str:
    """A principal without its pipeline's name (``role/training-sagemaker``)."""
    return re.sub(r"mlpipe-[a-z0-9]+-", "", principal.split(":")[-1])


@dataclass(frozen=True)
class Expected:
    """A finding a mutation must produce: its kind, the call it names, and what its fix line says."""

    step: str
    kind: FindingKind
    principal: str  # the end of the principal (role name or service)
    action: str
    resource: str  # a part of the resource ARN
    fix: tuple[str, ...]
    pipeline: str = "churn"
    line: tuple[str, ...] = ()

    def explains(self, finding: Any) -> bool:
        """The same mutation shows up for the other pipeline too, and a widened Resource allows several calls."""
        c: CheckedCall | None = finding.checked
        same_action = self.kind is FindingKind.FORBIDDEN_ALLOWED or (c is not None and c.action == self.action)
        return (
            c is not None and finding.kind is self.kind and same_action and _role(c.principal) == _role(self.principal)
        )

    def explains_call(self, c: CheckedCall) -> bool:
        return c.action == self.action and c.resource == self.resource and _role(c.principal) == _role(self.principal)

    def matches(self, finding: Any) -> bool:
        c: CheckedCall | None = finding.checked
        return (
            c is not None
            and finding.kind is self.kind
            and (c.pipeline, c.step, c.action) == (self.pipeline, self.step, self.action)
            and c.principal.endswith(self.principal)
            and self.resource in c.resource
        )


# Defects the proof found in the unchanged project and that are not fixed yet (none: the last one,
# cloudwatch:DescribeAlarms on "*" for Application Auto Scaling's caller validation, is fixed by
# Sid ListAlarmsForAutoScalingValidation in policies/deployer_permissions.json.j2).
KNOWN_DEFECTS: list[Expected] = []

BATCH_A = [
    (
        "production_sagemaker_permissions.json.j2",
        replace('"Action": ["kms:Decrypt", "kms:DescribeKey"],', '"Action": ["kms:DescribeKey"],'),
    ),
    ("bucket_policy.json.j2", drop_statement("AllowTrainingReadData")),
    (
        "deployer_permissions.json.j2",
        replace("{{ sagemaker_role_arn | tojson }}", '{{ (sagemaker_role_arn ~ "-x") | tojson }}'),
    ),
    (
        "training_cross_account_permissions.json.j2",
        replace('"Action": "states:StartExecution",', '"Action": "states:ListExecutions",'),
    ),
    ("logs_key_policy.json.j2", replace("{{ log_group_arns | tojson }}", '["arn:aws:logs:*:*:log-group:/nowhere/*"]')),
    (
        "pipeline_permissions.json.j2",
        replace(
            '"Resource": {{ (bucket_arn ~ "/" ~ artifact_prefix ~ "/*") | tojson }}', '"Resource": "arn:aws:s3:::*"'
        ),
    ),
]
EXPECTED_A = [
    Expected(
        "deploy",
        FindingKind.NEEDED_DENIED,
        "role/mlpipe-churn-production-sagemaker",
        "kms:Decrypt",
        "key/churn-shared_artifacts",
        ("policies/production_sagemaker_permissions.json.j2", "add kms:Decrypt to Sid DecryptModelArtifacts"),
    ),
    Expected(
        "train",
        FindingKind.NEEDED_DENIED,
        "role/mlpipe-churn-training-sagemaker",
        "s3:GetObject",
        "/data/train/train.csv",
        ("policies/bucket_policy.json.j2", "allow s3:GetObject"),
        line=("missing an allowing statement in shared:mlpipe-churn-artifacts-111111111111-eu-west-1/bucket-policy",),
    ),
    Expected(
        "train",
        FindingKind.NEEDED_DENIED,
        "role/mlpipe-churn-training-sagemaker",
        "s3:GetObject",
        "/data/validation/validation.csv",
        ("policies/bucket_policy.json.j2",),
    ),
    Expected(
        "deploy",
        FindingKind.NEEDED_DENIED,
        "role/mlpipe-churn-deployer",
        "iam:PassRole",
        "role/mlpipe-churn-production-sagemaker",
        ("policies/deployer_permissions.json.j2", "Sid PassOwnSageMakerExecutionRole"),
    ),
    Expected(
        "train",
        FindingKind.NEEDED_DENIED,
        "role/mlpipe-churn-training-xacct",
        "states:StartExecution",
        "stateMachine:mlpipe-churn-training",
        (
            "policies/training_cross_account_permissions.json.j2",
            "add states:StartExecution to Sid StartTrainingStateMachine",
        ),
    ),
    Expected(
        "train",
        FindingKind.NEEDED_DENIED,
        "logs.eu-west-1.amazonaws.com",
        "kms:GenerateDataKey",
        "key/foundation-training_logs",
        ("policies/logs_key_policy.json.j2", "Condition of Sid AllowCloudWatchLogsForPlatformLogGroups"),
    ),
    Expected(
        "deploy",
        FindingKind.NEEDED_DENIED,
        "logs.eu-west-1.amazonaws.com",
        "kms:Decrypt",
        "key/foundation-production_logs",
        ("policies/logs_key_policy.json.j2",),
    ),
    Expected(
        "train",
        FindingKind.FORBIDDEN_ALLOWED,
        "role/mlpipe-churn-pipeline",
        "s3:GetObject",
        "mlpipe-fraud-artifacts-111111111111-eu-west-1/data/train/",
        ("narrow Sid ReadWritePipelineArtifacts", "policies/pipeline_permissions.json.j2"),
        line=("allowed by shared:mlpipe-churn-pipeline/pipeline_permissions / ReadWritePipelineArtifacts",),
    ),
]
BATCH_B = [
    (
        "cross_account_trust.json.j2",
        replace(
            '"Principal": {"AWS": {{ pipeline_role_arn | tojson }}},',
            '"Principal": {"AWS": "arn:aws:iam::111111111111:role/someone-else"},',
        ),
    ),
    (
        "key_policy.json.j2",
        replace(
            '"Principal": {"AWS": {{ key_user_arns | tojson }}},',
            '"Principal": {"AWS": {{ (key_user_arns[1:] if key_user_arns | length > 1 else key_user_arns)'
            " | tojson }}},",
        ),
    ),
    ("notification_topic_policy.json.j2", replace("{{ rule_arns | tojson }}", "{{ rule_arns[:1] | tojson }}")),
]
EXPECTED_B = [
    Expected(
        "train",
        FindingKind.NEEDED_DENIED,
        "role/mlpipe-churn-pipeline",
        "sts:AssumeRole",
        "role/mlpipe-churn-training-xacct",
        (
            "policies/cross_account_trust.json.j2",
            "add arn:aws:iam::111111111111:role/mlpipe-churn-pipeline to the Principal of Sid AllowPipelineRoleOnly",
        ),
        line=("missing an allowing statement in training:mlpipe-churn-training-xacct/trust",),
    ),
    Expected(
        "deploy",
        FindingKind.NEEDED_DENIED,
        "role/mlpipe-fraud-pipeline",
        "sts:AssumeRole",
        "role/mlpipe-fraud-production-xacct",
        ("policies/cross_account_trust.json.j2",),
        pipeline="fraud",
    ),
    Expected(
        "source",
        FindingKind.NEEDED_DENIED,
        "role/mlpipe-churn-pipeline",
        "kms:Decrypt",
        "key/churn-shared_artifacts",
        ("policies/key_policy.json.j2", "to the Principal of Sid AllowKeyUseByNamedRoles"),
    ),
    Expected(
        "source",
        FindingKind.NEEDED_DENIED,
        "role/mlpipe-churn-pipeline",
        "kms:GenerateDataKey",
        "key/churn-shared_artifacts",
        ("policies/key_policy.json.j2", "to the Principal of Sid AllowKeyUseByNamedRoles"),
    ),
    Expected(
        "approve",
        FindingKind.NEEDED_DENIED,
        "events.amazonaws.com",
        "sns:Publish",
        "sns:eu-west-1:111111111111:mlpipe-churn-notifications",
        ("policies/notification_topic_policy.json.j2", "the Condition of Sid AllowEventBridgeRulesOfThisPipeline"),
        line=("missing an allowing statement in shared:mlpipe-churn-notifications/topic-policy",),
    ),
]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("baseline") / "out"
    return finish_synth(start_synth(outdir), outdir)


@pytest.fixture(scope="module")
def report(baseline: Synth) -> AccessReport:
    return analyze(baseline.config, baseline.manifests)


@pytest.fixture(scope="module")
def mutated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Synth, AccessReport]]:
    """Both mutated copies, synthesized side by side (two cores)."""
    runs = {}
    for name, edits in (("a", BATCH_A), ("b", BATCH_B)):
        tmp = tmp_path_factory.mktemp(f"mutation_{name}")
        runs[name] = (tmp / "out", start_synth(tmp / "out", mutate(tmp, edits)))
    out = {}
    for name, (outdir, proc) in runs.items():
        synth = finish_synth(proc, outdir)
        out[name] = (synth, analyze(synth.config, synth.manifests))
    return out


@pytest.fixture(scope="module")
def mutated_a(mutated: dict[str, tuple[Synth, AccessReport]]) -> tuple[Synth, AccessReport]:
    return mutated["a"]


@pytest.fixture(scope="module")
def mutated_b(mutated: dict[str, tuple[Synth, AccessReport]]) -> tuple[Synth, AccessReport]:
    return mutated["b"]


def find(
    report: AccessReport,
    pipeline: str,
    expectation: Expectation,
    principal: str,
    action: str,
    resource: str,
    step: str | None = None,
) -> CheckedCall:
    """The one checked call matching (principal and resource by their end / a part)."""
    hits = [
        c
        for c in report.calls
        if (c.pipeline, c.expectation, c.action) == (pipeline, expectation, action)
        and step in (None, c.step)
        and c.principal.endswith(principal)
        and resource in c.resource
    ]
    assert len(hits) == 1, [h.describe() for h in hits]
    return hits[0]


# --- the unchanged project -------------------------------------------------------------------------------------------


def test_unchanged_project_denies_every_forbidden_call_and_allows_every_needed_one_but_the_known_defects(
    report: AccessReport,
) -> None:
    for c in report.calls:
        if c.expectation is Expectation.FORBIDDEN:
            assert c.outcome in DENIED, c.describe()
        elif c.expectation is Expectation.NEEDED and not any(e.explains_call(c) for e in KNOWN_DEFECTS):
            assert c.outcome == ALLOWED_OUTCOME, c.describe()
    # Nothing but a known defect is reported, each naming its template and statement.
    for finding in report.issues:
        known = [e for e in KNOWN_DEFECTS if e.explains(finding)]
        assert known, f"not a known defect:\n{finding}"
        assert all(part in finding.fix for part in known[0].fix), finding.fix


def test_counts_per_pipeline(report: AccessReport) -> None:
    needed = [s for s in NEEDED if not s.outside]
    outside = [s for s in NEEDED if s.outside]
    assert (len(needed), len(outside)) == (100, 4)
    # Forbidden per pipeline: 62 of its own + 103 aimed at the other pipeline; platform: the foundation's keys.
    assert report.summary() == {
        "churn": {"needed": 100, "forbidden": 165, "outside": 4},
        "fraud": {"needed": 100, "forbidden": 165, "outside": 4},
        "platform": {"needed": 0, "forbidden": 9, "outside": 0},
    }
    assert report.count(Expectation.FORBIDDEN) == sum(1 for c in report.calls if c.expectation is Expectation.FORBIDDEN)


@pytest.mark.parametrize(
    ("pipeline", "principal", "action", "resource", "deciding"),
    [
        (
            "churn",
            "role/mlpipe-churn-training-sagemaker",
            "s3:GetObject",
            "/data/train/train.csv",
            [
                "training:mlpipe-churn-training-sagemaker/sagemaker_training_permissions / ReadTrainingData",
                "shared:mlpipe-churn-artifacts-111111111111-eu-west-1/bucket-policy / AllowTrainingReadData",
            ],
        ),
        (
            "churn",
            "role/mlpipe-churn-production-sagemaker",
            "kms:Decrypt",
            "key/churn-shared_artifacts",
            [
                "production:mlpipe-churn-production-sagemaker/production_sagemaker_permissions / DecryptModelArtifacts",
                "shared:alias/mlpipe-churn-artifacts/key-policy / AllowKeyUseByNamedRoles",
            ],
        ),
        # The manifest attaches the (identical) production trust to the training role; the proof names the right one.
        (
            "churn",
            "role/mlpipe-churn-pipeline",
            "sts:AssumeRole",
            "role/mlpipe-churn-training-xacct",
            [
                "shared:mlpipe-churn-pipeline/pipeline_permissions / AssumeCrossAccountActionRoles",
                "training:mlpipe-churn-training-xacct/trust / AllowPipelineRoleOnly",
            ],
        ),
        (
            "fraud",
            "role/mlpipe-fraud-deployer",
            "iam:PassRole",
            "role/mlpipe-fraud-production-sagemaker",
            [
                "production:mlpipe-fraud-deployer/deployer_permissions / PassOwnSageMakerExecutionRole",
            ],
        ),
        (
            "fraud",
            "logs.eu-west-1.amazonaws.com",
            "kms:GenerateDataKey",
            "key/foundation-production_logs",
            [
                "production:alias/mlpipe-logs/key-policy / AllowCloudWatchLogsForPlatformLogGroups",
            ],
        ),
        (
            "churn",
            "events.amazonaws.com",
            "sns:Publish",
            "mlpipe-churn-notifications",
            ["shared:mlpipe-churn-notifications/topic-policy / AllowEventBridgeRulesOfThisPipeline"],
        ),
        (
            "fraud",
            "sagemaker.amazonaws.com",
            "sts:AssumeRole",
            "role/mlpipe-fraud-training-sagemaker",
            [
                "training:mlpipe-fraud-training-sagemaker/trust / AllowSageMakerAssumeFromOwnAccount",
            ],
        ),
    ],
)
def test_needed_calls_are_allowed_by_the_expected_statements(
    report: AccessReport, pipeline: str, principal: str, action: str, resource: str, deciding: list[str]
) -> None:
    step = "approve" if action == "sns:Publish" else None
    c = find(report, pipeline, Expectation.NEEDED, principal, action, resource, step)
    assert (c.outcome, c.deciding) == (ALLOWED_OUTCOME, deciding)


@pytest.mark.parametrize(
    ("principal", "action", "resource", "context", "outcome", "deciding"),
    [
        (
            "role/mlpipe-churn-training-sagemaker",
            "s3:PutObject",
            "/models/",
            {"s3:x-amz-server-side-encryption": None},
            "EXPLICIT_DENY",
            "DenyUnencryptedUploads",
        ),
        (
            "role/mlpipe-churn-pipeline",
            "s3:PutObject",
            "/request/",
            {"s3:x-amz-server-side-encryption-aws-kms-key-id": OTHER_KEY},
            "EXPLICIT_DENY",
            "DenyUploadsWithOtherKeys",
        ),
        (
            "role/mlpipe-churn-deployer",
            "s3:GetObject",
            "/trained_model/",
            {"aws:SecureTransport": "false"},
            "EXPLICIT_DENY",
            "DenyInsecureTransport",
        ),
        ("role/mlpipe-churn-production-sagemaker", "s3:PutObject", "/models/", {}, "IMPLICIT_DENY", None),
        ("role/mlpipe-churn-training-xacct", "kms:Decrypt", "key/churn-production_deployer", {}, "IMPLICIT_DENY", None),
        (
            "role/administrator-not-named-by-mlpipe",
            "kms:Decrypt",
            "key/churn-shared_artifacts",
            {},
            "IMPLICIT_DENY",
            None,
        ),
        (
            "role/mlpipe-churn-training-sagemaker",
            "sagemaker:CreateEndpoint",
            "endpoint/mlpipe-churn-endpoint",
            {},
            "IMPLICIT_DENY",
            None,
        ),
    ],
)
def test_forbidden_calls_are_denied(
    report: AccessReport,
    principal: str,
    action: str,
    resource: str,
    context: dict[str, str | None],
    outcome: str,
    deciding: str | None,
) -> None:
    hits = [
        c
        for c in report.calls
        if c.pipeline == "churn"
        and c.expectation is Expectation.FORBIDDEN
        and not c.origin
        and (c.principal.endswith(principal), c.action) == (True, action)
        and resource in c.resource
        and c.call is not None
        and all(c.call.context.get(k) == v for k, v in context.items())
    ]
    assert hits, "the forbidden call is missing from the list"
    for c in hits:
        assert c.outcome == outcome, c.describe()
        if deciding:
            assert any(d.endswith(f"/ {deciding}") for d in c.deciding), c.deciding


def test_every_pipeline_pair_is_isolated(report: AccessReport) -> None:
    pairs = {c.origin for c in report.calls if c.origin}
    assert pairs == {"churn -> fraud", "fraud -> churn"}
    mirrored = [c for c in report.calls if c.origin == "churn -> fraud"]
    assert all("mlpipe-churn-" in c.principal for c in mirrored)
    assert all(c.outcome in DENIED for c in mirrored)
    fraud_data = [c for c in mirrored if c.resource.startswith(BUCKET.format(p="fraud") + "/data/")]
    assert {c.principal.rsplit("/", 1)[1] for c in fraud_data} >= {
        "mlpipe-churn-pipeline",
        "mlpipe-churn-training-sagemaker",
        "mlpipe-churn-production-sagemaker",
        "mlpipe-churn-deployer",
        "mlpipe-churn-training-xacct",
    }


def test_ecr_pulls_are_listed_as_outside_the_policies_never_allowed(report: AccessReport) -> None:
    outside = [c for c in report.calls if c.expectation is Expectation.OUTSIDE]
    assert len(outside) == 8
    assert {c.action for c in outside} == {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}
    assert all(c.decision is None and c.outcome == "OUTSIDE" and "AWS-owned" in (c.spec.outside or "") for c in outside)
    assert all(c.resource.endswith(":repository/sagemaker-xgboost") for c in outside)


def test_every_role_of_the_manifests_takes_part_in_an_allowed_call(report: AccessReport) -> None:
    roles = {arn for _, arn in report.roles}
    assert len(roles) == 16
    acting = {
        c.principal for c in report.calls if c.expectation is Expectation.NEEDED and c.outcome == ALLOWED_OUTCOME
    } | {c.resource for c in report.calls if c.action in ("sts:AssumeRole", "iam:PassRole") and c.outcome == "ALLOWED"}
    assert roles <= acting


# --- what the manifests cannot tell is never allowed -----------------------------------------------------------------


def test_an_unresolvable_reference_in_a_policy_makes_the_call_undecidable(baseline: Synth) -> None:
    manifests = copy.deepcopy(baseline.manifests)
    bucket_policy = manifests["churn"]["policies"]["shared:mlpipe-churn-artifacts-111111111111-eu-west-1/bucket-policy"]
    read = next(s for s in bucket_policy["Statement"] if s["Sid"] == "AllowTrainingReadData")
    read["Principal"] = {"AWS": ["${aws_iam_role.not_synthesized.arn}"]}
    result = analyze(baseline.config, manifests)
    c = find(
        result,
        "churn",
        Expectation.NEEDED,
        "role/mlpipe-churn-training-sagemaker",
        "s3:GetObject",
        "/data/train/train.csv",
    )
    assert c.outcome == "UNDECIDABLE"
    assert "${aws_iam_role.not_synthesized.arn}" in c.decision.reason  # type: ignore[union-attr]
    assert any(f.kind is FindingKind.UNDECIDABLE and f.checked == c for f in result.issues)
    assert not any(x.outcome == "ALLOWED" and x.expectation is Expectation.FORBIDDEN for x in result.calls)


def test_a_missing_resource_makes_the_calls_that_need_it_undecidable(baseline: Synth) -> None:
    manifests = copy.deepcopy(baseline.manifests)
    del manifests["churn"]["resources"]["aws_sfn_state_machine.training_state_machine"]
    result = analyze(baseline.config, manifests)
    start = [f for f in result.issues if f.checked and f.checked.action == "states:StartExecution"]
    assert [f.checked.pipeline for f in start if f.checked.expectation is Expectation.NEEDED] == ["churn"]
    assert all(f.kind is FindingKind.UNDECIDABLE for f in start)
    assert "cannot derive the call" in start[0].line and "aws_sfn_state_machine" in start[0].line
    assert "make the synthesized manifests name" in start[0].fix


def test_without_the_foundation_manifest_the_logs_keys_are_undecidable(baseline: Synth) -> None:
    manifests = {k: v for k, v in baseline.manifests.items() if k != "foundation"}
    result = analyze(baseline.config, manifests)
    logs = [f for f in result.issues if f.checked and f.checked.principal == "logs.eu-west-1.amazonaws.com"]
    assert logs and all(f.kind is FindingKind.UNDECIDABLE for f in logs)
    assert all(c.outcome != "ALLOWED" for c in result.calls if c.principal == "logs.eu-west-1.amazonaws.com")


def test_a_permission_the_proof_cannot_read_is_a_finding(baseline: Synth) -> None:
    manifests = copy.deepcopy(baseline.manifests)
    manifests["churn"]["resources"]["aws_iam_role_policy_attachment.sneaky"] = {
        "provider": "aws.training",
        "role": "${aws_iam_role.training_sagemaker.name}",
        "policy_arn": "arn:aws:iam::aws:policy/AdministratorAccess",
    }
    result = analyze(baseline.config, manifests)
    unread = [f for f in result.issues if f.kind is FindingKind.UNMODELLED]
    assert [(f.stack, f.address) for f in unread] == [("churn", "aws_iam_role_policy_attachment.sneaky")]
    theirs = [c for c in result.calls if c.principal.endswith("role/mlpipe-churn-training-sagemaker")]
    needed = [c for c in theirs if c.expectation is Expectation.NEEDED]
    assert needed and all(c.outcome == "UNDECIDABLE" for c in needed)
    # What may be unknown can't be allowed; only an explicit Deny still decides (the bucket's encryption rules).
    assert all(c.outcome in ("UNDECIDABLE", "EXPLICIT_DENY") for c in theirs if c.expectation is Expectation.FORBIDDEN)


# --- mutated templates: the analysis names the broken call -----------------------------------------------------------


def _assert_findings(result: AccessReport, expected: list[Expected], known: bool = True) -> None:
    """Each expected finding is there, names its call, template and statement; no other finding is."""
    for e in expected:
        hits = [f for f in result.issues if e.matches(f)]
        assert hits, f"no finding for {e}:\n{result.render()}"
        for f in hits:
            for part in e.fix:
                assert part in f.fix, f"{part!r} not in fix: {f.fix}"
            for part in e.line:
                assert part in f.line, f"{part!r} not in line: {f.line}"
            assert str(f).startswith(f.line) and "\n  fix: " in str(f)
    explaining = expected + (KNOWN_DEFECTS if known else [])
    unexplained = [f for f in result.issues if not any(e.explains(f) for e in explaining)]
    assert unexplained == [], "findings no mutation explains:\n" + "\n".join(map(str, unexplained))


def test_mutations_of_source_train_deploy_and_isolation_are_named(mutated_a: tuple[Synth, AccessReport]) -> None:
    _, result = mutated_a
    _assert_findings(result, EXPECTED_A)
    # Untouched by these mutations, the Approve step's notification is allowed.
    approvals = [c for c in result.calls if c.pipeline == "fraud" and c.step == "approve" and c.action == "sns:Publish"]
    assert [(c.expectation, c.outcome) for c in approvals] == [
        (Expectation.NEEDED, "ALLOWED"),
        (Expectation.FORBIDDEN, "IMPLICIT_DENY"),
    ]


def test_mutations_of_trust_key_policy_and_approval_are_named(mutated_b: tuple[Synth, AccessReport]) -> None:
    _, result = mutated_b
    _assert_findings(result, EXPECTED_B)
    # The approvals rule lost its grant; the rule that reports finished runs kept it.
    runs = find(
        result, "churn", Expectation.NEEDED, "events.amazonaws.com", "sns:Publish", "churn-notifications", "platform"
    )
    assert runs.outcome == "ALLOWED"


def test_sarif_results_point_at_the_resource_to_fix(mutated_a: tuple[Synth, AccessReport]) -> None:
    synth, result = mutated_a
    run = sarif_run(result, synth.stacks_dir)
    assert run["tool"]["driver"]["name"] == "mlpipe-access"
    rules = run["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules) == 4
    assert [r["message"]["text"] for r in run["results"]] == [f.line for f in result.issues]
    assert {r["level"] for r in run["results"]} == {"error"}
    decrypt = next(r for r in run["results"] if "production-sagemaker kms:Decrypt" in r["message"]["text"])
    location = decrypt["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "churn/cdk.tf"
    lines = (synth.stacks_dir / "churn" / "cdk.tf").read_text().splitlines()
    assert lines[location["region"]["startLine"] - 1].startswith(
        'resource "aws_iam_role_policy" "production_sagemaker"'
    )
    assert rules[decrypt["ruleIndex"]]["id"] == decrypt["ruleId"]


# --- reports and graph -----------------------------------------------------------------------------------------------


def test_gate_writes_every_report_and_the_graph_names_every_role(baseline: Synth, tmp_path: Path) -> None:
    result = run_access_gate(baseline.config, baseline.manifests, tmp_path, baseline.stacks_dir)
    data = json.loads((tmp_path / "access-calls.json").read_text())
    assert data["summary"] == result.summary() and len(data["calls"]) == len(result.calls)
    assert data["ok"] is result.ok and [f["line"] for f in data["findings"]] == [f.line for f in result.issues]
    markdown = (tmp_path / "access-calls.md").read_text()
    assert "```mermaid\nflowchart LR" in markdown
    assert "| churn | deploy | needed | `production:mlpipe-churn-production-sagemaker` | `kms:Decrypt` |" in markdown
    sarif = json.loads((tmp_path / "access-calls.sarif").read_text())
    assert sarif["version"] == "2.1.0" and len(sarif["runs"][0]["results"]) == len(result.issues)
    svg = html.unescape((tmp_path / "access-graph.svg").read_text())
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    names = {arn.rsplit("/", 1)[1] for _, arn in result.roles}
    assert len(names) == 16
    graph = mermaid(result)
    for name in names:
        assert f">{name}<" in svg, name
        assert f'["{name}"]' in graph, name
    assert 'subgraph acct_training["training account 222222222222"]' in graph
    assert '-.->|"pass role"|' in graph and '==>|"assume"|' in graph
