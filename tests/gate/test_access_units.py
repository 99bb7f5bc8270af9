"""The access proof's parts on hand-made manifests: reference resolution, advice, the call list's vocabulary, the graph.

No synthesis here (see test_access_proof.py for the real one): each test builds the few resources it needs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mlpipe.core.config import ProjectConfig, load_config
from mlpipe.core.paths import PROJECT_ROOT
from mlpipe.gate.access import calls
from mlpipe.gate.access.advice import fix_denied, template_for
from mlpipe.gate.access.analysis import Expectation, FindingKind, analyze
from mlpipe.gate.access.evaluator import Call, Document, Outcome, PolicySet, evaluate
from mlpipe.gate.access.graph import GraphvizMissing, mermaid, render_svg
from mlpipe.gate.access.inventory import Inventory, Unresolvable
from mlpipe.gate.access.report import sarif_run, to_markdown
from mlpipe.gate.access.vocabulary import pipeline_values, placeholders, platform_values

TRAINING_ROLE = "arn:aws:iam::222222222222:role/mlpipe-churn-training-sagemaker"
BUCKET = "arn:aws:s3:::mlpipe-churn-artifacts-111111111111-eu-west-1"
KEY = "arn:aws:kms:eu-west-1:111111111111:key/churn-shared_artifacts"
LOGS_KEY = "arn:aws:kms:eu-west-1:222222222222:key/foundation-training_logs"


@pytest.fixture(scope="module")
def config() -> ProjectConfig:
    return load_config(PROJECT_ROOT / "config" / "local.toml")


def statement(sid: str, **elements: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", **elements}


def manifests(read_resource: str = "${aws_s3_bucket.shared_artifacts.arn}/data/*") -> dict[str, dict[str, Any]]:
    """A foundation with the training logs key and a `churn` stack with a role, a bucket, a key and their policies."""
    role_policy = {
        "Version": "2012-10-17",
        "Statement": [
            statement("ReadTrainingData", Action="s3:GetObject", Resource=read_resource),
            statement("UseLogsKey", Action="kms:Decrypt", Resource="${data.terraform_remote_state.foundation.outputs."
                      "training_logs_key_arn}"),
        ],
    }  # fmt: skip
    return {
        "foundation": {
            "policies": {},
            "resources": {"aws_kms_key.training_logs": {"provider": "aws.training"}},
        },
        "churn": {
            "literals": {"branch": "main"},
            "policies": {
                "training:mlpipe-churn-training-sagemaker/trust": {
                    "Statement": [
                        statement("Svc", Principal={"Service": "sagemaker.amazonaws.com"}, Action="sts:AssumeRole")
                    ],
                },
                "training:mlpipe-churn-training-sagemaker/sagemaker_training_permissions": role_policy,
                "shared:mlpipe-churn-artifacts-111111111111-eu-west-1/bucket-policy": {
                    "Statement": [
                        statement(
                            "AllowTrainingReadData",
                            Principal={"AWS": ["${aws_iam_role.training_sagemaker.arn}"]},
                            Action="s3:GetObject",
                            Resource="${aws_s3_bucket.shared_artifacts.arn}/data/*",
                        ),
                    ],
                },
                "shared:alias/mlpipe-churn-artifacts/key-policy": {
                    "Statement": [
                        statement(
                            "AllowKeyUseByNamedRoles",
                            Principal={"AWS": ["${aws_iam_role.training_sagemaker.arn}"]},
                            Action="kms:Decrypt",
                            Resource="*",
                        ),
                    ],
                },
            },
            "resources": {
                "aws_iam_role.training_sagemaker": {
                    "provider": "aws.training",
                    "name": "mlpipe-churn-training-sagemaker",
                    "assume_role_policy": "@document:training:mlpipe-churn-training-sagemaker/trust",
                },
                "aws_iam_role_policy.training_sagemaker": {
                    "provider": "aws.training",
                    "name": "sagemaker_training_permissions",
                    "role": "${aws_iam_role.training_sagemaker.id}",
                    "policy": "@document:training:mlpipe-churn-training-sagemaker/sagemaker_training_permissions",
                },
                "aws_s3_bucket.shared_artifacts": {
                    "provider": "aws.shared",
                    "bucket": "mlpipe-churn-artifacts-111111111111-eu-west-1",
                },
                "aws_s3_bucket_policy.shared_artifacts": {
                    "provider": "aws.shared",
                    "bucket": "${aws_s3_bucket.shared_artifacts.id}",
                    "policy": "@document:shared:mlpipe-churn-artifacts-111111111111-eu-west-1/bucket-policy",
                },
                "aws_kms_key.shared_artifacts": {
                    "provider": "aws.shared",
                    "policy": "@document:shared:alias/mlpipe-churn-artifacts/key-policy",
                },
                "aws_kms_alias.shared_artifacts": {
                    "provider": "aws.shared",
                    "name": "alias/mlpipe-churn-artifacts",
                    "target_key_id": "${aws_kms_key.shared_artifacts.key_id}",
                },
            },
        },
    }


# --- inventory: references -------------------------------------------------------------------------------------------


def test_references_resolve_to_the_arns_of_the_manifests(config: ProjectConfig) -> None:
    inventory = Inventory(config, manifests())
    assert inventory.resolve("churn", "${aws_s3_bucket.shared_artifacts.arn}/data/*") == f"{BUCKET}/data/*"
    assert inventory.resolve("churn", "${aws_iam_role.training_sagemaker.arn}") == TRAINING_ROLE
    assert inventory.resolve("churn", "${aws_kms_key.shared_artifacts.arn}") == KEY
    assert inventory.resolve("churn", "${data.terraform_remote_state.foundation.outputs.training_logs_key_arn}") == (
        LOGS_KEY
    )
    assert inventory.resolve("churn", "refs/heads/${local.branch}") == "refs/heads/main"
    assert inventory.labels[KEY] == "alias/mlpipe-churn-artifacts"
    assert inventory.bucket_account("mlpipe-churn-artifacts-111111111111-eu-west-1") == "111111111111"


@pytest.mark.parametrize(
    "reference",
    [
        "${aws_s3_bucket.missing.arn}",
        "${aws_s3_bucket.shared_artifacts.website_endpoint}",
        "${data.terraform_remote_state.foundation.outputs.unknown}",
        "${local.not_a_literal}",
        "${jsonencode(var.x)}",
    ],
)
def test_unresolvable_references_raise_and_stay_in_documents(config: ProjectConfig, reference: str) -> None:
    inventory = Inventory(config, manifests())
    with pytest.raises(Unresolvable):
        inventory.resolve("churn", reference)
    assert inventory.resolve_lenient("churn", f"{reference}/x")[0] == f"{reference}/x"


def test_a_document_with_an_unresolvable_reference_never_allows(config: ProjectConfig) -> None:
    inventory = Inventory(config, manifests(read_resource="${aws_s3_bucket.renamed.arn}/data/*"))
    document = inventory.documents["training:mlpipe-churn-training-sagemaker/sagemaker_training_permissions"]
    assert document.unresolved and document.target == TRAINING_ROLE
    call = Call(TRAINING_ROLE, "s3:GetObject", f"{BUCKET}/data/train.csv", resource_account="111111111111")
    assert evaluate(inventory.policy_set(), call).outcome is Outcome.UNDECIDABLE


def test_identity_trust_and_default_key_policies_are_attached(config: ProjectConfig) -> None:
    data = manifests()
    del data["churn"]["resources"]["aws_kms_key.shared_artifacts"]["policy"]
    policies = Inventory(config, data).policy_set()
    assert [d.name for d in policies.identity_policies(TRAINING_ROLE)] == [
        "training:mlpipe-churn-training-sagemaker/sagemaker_training_permissions"
    ]
    assert policies.resource[TRAINING_ROLE].name == "training:mlpipe-churn-training-sagemaker/trust"
    assert "default key policy" in policies.resource[KEY].name  # no policy attribute: AWS's default


def test_a_policy_attachment_the_proof_cannot_read_is_recorded(config: ProjectConfig) -> None:
    data = manifests()
    data["churn"]["resources"]["aws_lambda_permission.any"] = {"provider": "aws.shared", "function_name": "x"}
    problems = Inventory(config, data).problems
    assert [(stack, address) for stack, address, _ in problems] == [("churn", "aws_lambda_permission.any")]


def test_values_the_manifests_cannot_give_are_unresolvable(config: ProjectConfig) -> None:
    inventory = Inventory(config, manifests())
    values = pipeline_values(inventory, config.pipeline("churn"))
    assert values["training_sagemaker_role"] == TRAINING_ROLE
    assert values["bucket"] == BUCKET and values["key"] == KEY
    assert platform_values(inventory)["training_logs_key"] == LOGS_KEY  # the foundation's output
    assert isinstance(values["training_logs_key"], Unresolvable)  # the key of a log group these manifests lack
    assert isinstance(values["state_machine"], Unresolvable)
    assert all(isinstance(values[p], Unresolvable) for p in ("deployer_role", "dlq", "notification_topic"))


def test_every_placeholder_of_the_call_list_is_defined(config: ProjectConfig) -> None:
    known = set(placeholders()) | set(platform_values(Inventory(config, {})))
    specs = [*calls.NEEDED, *calls.FORBIDDEN, *calls.CROSS_PIPELINE, *calls.PLATFORM_FORBIDDEN]
    used = {
        name
        for spec in specs
        for text in (spec.principal, spec.resource, spec.principal_account or "", *spec.context.values())
        for name in re.findall(r"\{([a-z_]+)\}", text)
    }
    assert used <= known, used - known
    assert {spec.step for spec in specs} <= set(calls.STEPS)


# --- analysis on partial manifests: undecidable, never allowed --------------------------------------------------------


def test_calls_that_cannot_be_built_are_undecidable_findings(config: ProjectConfig) -> None:
    report = analyze(config, manifests())
    start = [c for c in report.calls if c.action == "states:StartExecution" and c.expectation is Expectation.NEEDED]
    assert start and all(c.call is None and c.outcome == "UNDECIDABLE" for c in start)
    assert "{state_machine}" not in start[0].resource or "cannot derive" in start[0].decision.reason  # type: ignore[union-attr]
    undecidable = [f for f in report.issues if f.kind is FindingKind.UNDECIDABLE]
    assert undecidable and not report.ok
    # What these thin manifests do allow is caught: a trust policy without aws:SourceAccount (confused deputy), and
    # AWS's default key policy, which lets the account's administrators decrypt with the logs key.
    allowed = [f.checked for f in report.issues if f.kind is FindingKind.FORBIDDEN_ALLOWED and f.checked]
    assert sorted((c.principal.rsplit("/", 1)[-1], c.action) for c in allowed) == [
        ("administrator-not-named-by-mlpipe", "kms:Decrypt"),
        ("sagemaker.amazonaws.com", "sts:AssumeRole"),
    ]
    run = sarif_run(report)
    assert len(run["results"]) == len(report.issues)
    assert all(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("/cdk.tf") for r in run["results"]
    )
    assert "## Findings" in to_markdown(report)


# --- advice -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "policy", "template"),
    [
        ("training:mlpipe-churn-training-sagemaker/sagemaker_training_permissions", {},
         "sagemaker_training_permissions"),
        ("production:mlpipe-churn-deployer/trust", {"Statement": [{"Principal": {"Service": "x"}}]}, "service_trust"),
        ("training:mlpipe-churn-training-xacct/trust", {"Statement": [{"Principal": {"AWS": "x"}}]},
         "cross_account_trust"),
        ("shared:alias/mlpipe-churn-artifacts/key-policy", {}, "key_policy"),
        ("training:alias/mlpipe-logs/key-policy", {}, "logs_key_policy"),
        ("shared:mlpipe-churn-artifacts-111111111111-eu-west-1/bucket-policy", {}, "bucket_policy"),
        ("shared:mlpipe-access-logs-111111111111-eu-west-1/bucket-policy", {}, "log_bucket_policy"),
        ("shared:mlpipe-churn-notifications/topic-policy", {}, "notification_topic_policy"),
    ],
)  # fmt: skip
def test_documents_map_to_their_templates(config: ProjectConfig, name: str, policy: dict, template: str) -> None:
    assert template_for(name, policy, config) == f"policies/{template}.json.j2"


def test_the_fix_names_the_statement_the_action_belongs_to(config: ProjectConfig) -> None:
    identity = Document(
        "production:r/production_sagemaker_permissions",
        {
            "Statement": [
                statement("EncryptDataCapture", Action="kms:GenerateDataKey", Resource=KEY),
                statement("DecryptModelArtifacts", Action="kms:DescribeKey", Resource=KEY),
            ]
        },
    )
    role = "arn:aws:iam::333333333333:role/r"  # another account than the key's: both policies must allow
    call = Call(role, "kms:Decrypt", KEY)
    policies = PolicySet({role: [identity]}, {KEY: Document("k", {"Statement": [statement(
        "Users", Principal={"AWS": role}, Action="kms:*", Resource="*")]})})  # fmt: skip
    decision = evaluate(policies, call)
    fix, named = fix_denied(call, decision, policies, {}, config)
    assert decision.outcome is Outcome.IMPLICIT_DENY
    assert (
        fix == "in document production:r/production_sagemaker_permissions: add kms:Decrypt to Sid DecryptModelArtifacts"
    )
    assert named == ["production:r/production_sagemaker_permissions"]


# --- graph ------------------------------------------------------------------------------------------------------------


def test_a_missing_dot_program_says_which_package_to_install(
    config: ProjectConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlpipe.gate.access.graph as graph

    monkeypatch.setattr(graph.shutil, "which", lambda _name: None)
    with pytest.raises(GraphvizMissing) as error:
        render_svg(analyze(config, manifests()), tmp_path / "g.svg")
    assert "Debian graphviz package" in str(error.value) and not (tmp_path / "g.svg").exists()


def test_only_allowed_needed_calls_are_drawn(config: ProjectConfig) -> None:
    text = mermaid(analyze(config, manifests()))
    assert text.startswith("flowchart LR\n")
    # the only ALLOWED needed call here is SageMaker assuming the training role
    assert "mlpipe-churn-training-sagemaker" in text and "sagemaker.amazonaws.com" in text
    assert text.count("-->") + text.count("==>") + text.count("-.->") == 1
