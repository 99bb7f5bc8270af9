"""What the synthesized stacks say about security and layout, asserted statement by statement.

Each stack's manifest (`mlpipe-stack.json`, written by synth next to its HCL) holds the exact policy
documents of the stack, Terraform references kept as `${...}`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mlpipe.synth.runner import SynthResult

PIPELINES = ("churn", "fraud")


def _statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    matches = [s for s in document["Statement"] if s["Sid"] == sid]
    assert len(matches) == 1, f"expected one statement {sid}"
    return matches[0]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policies(synth: SynthResult, stack: str) -> dict[str, dict[str, Any]]:
    return synth.manifest(stack)["policies"]


def _policy(synth: SynthResult, stack: str, suffix: str) -> dict[str, Any]:
    (document,) = [d for n, d in _policies(synth, stack).items() if n.endswith(suffix)]
    return document


def test_one_foundation_and_one_stack_per_pipeline(local_synth: SynthResult) -> None:
    assert local_synth.stacks == ("foundation", *PIPELINES)
    for stack in local_synth.stacks:
        assert (local_synth.stack_dir(stack) / "cdk.tf").is_file()
    foundation = local_synth.hcl("foundation")
    assert re.findall(r'^resource "(aws_s3_bucket|aws_kms_key)" "(\w+)"', foundation, re.M) == [
        ("aws_s3_bucket", "shared_access_logs"),
        ("aws_kms_key", "training_logs"),
        ("aws_kms_key", "production_logs"),
    ]
    for pipeline in PIPELINES:
        hcl = local_synth.hcl(pipeline)
        assert f'bucket        = "mlpipe-{pipeline}-artifacts-111111111111-eu-west-1"' in hcl
        assert "data.terraform_remote_state.foundation.outputs.training_logs_key_arn" in hcl


def test_addresses_are_readable_and_unique(local_synth: SynthResult) -> None:
    for stack in local_synth.stacks:
        hcl = local_synth.hcl(stack)
        addresses = re.findall(r'^(?:resource|data) "(\w+)" "(\w+)"', hcl, re.M)
        assert len(addresses) == len(set(addresses)), stack
        for _type, name in addresses:
            assert not re.search(r"_[0-9A-F]{8}$", name), f"{stack}: {name} carries a hash"
            assert name.split("_")[0] in ("shared", "training", "production", "foundation"), name
    churn = local_synth.hcl("churn")
    for address in (
        'resource "aws_iam_role" "training_sagemaker"',
        'resource "aws_kms_key" "shared_artifacts"',
        'resource "aws_s3_bucket" "shared_artifacts"',
        'resource "aws_lambda_function" "production_deployer"',
        'data "aws_iam_policy_document" "production_deployer_permissions"',
    ):
        assert address in churn


def test_policies_read_line_by_line(local_synth: SynthResult) -> None:
    hcl = local_synth.hcl("churn")
    prose = ("checkov:skip", "Comment ", "Cause ")  # skip reasons and the state machine's texts are sentences
    assert max(len(line) for line in hcl.splitlines() if not any(p in line for p in prose)) < 200
    assert "jsonencode({\n" in hcl
    key = hcl[hcl.index('resource "aws_kms_key" "shared_artifacts"') :].split("\n}\n")[0]
    assert re.search(r'^\s+Sid\s+= "AllowKeyUseByNamedRoles"$', key, re.M)
    trust = hcl[hcl.index('data "aws_iam_policy_document" "training_sagemaker_trust"') :].split("\n}\n")[0]
    assert re.search(r'^    sid\s+= "AllowSageMakerAssumeFromOwnAccount"$', trust, re.M)
    assert not re.search(r"depends_on\s*=\s*\[\s*\n", hcl), "depends_on keeps an odd line break"
    assert not re.search(r'provider\s*=\s*"aws\.', hcl), "quoted provider references remain"
    assert not re.search(r'"\$\{[\w.]+\}"', hcl), "interpolation-only strings remain"


def test_every_policy_statement_has_a_sid_and_no_star_action(local_synth: SynthResult) -> None:
    for stack in local_synth.stacks:
        policies = _policies(local_synth, stack)
        assert policies
        for name, document in policies.items():
            for statement in document["Statement"]:
                assert statement["Sid"], name
                assert "*" not in _as_list(statement["Action"]), f"{name}/{statement['Sid']} allows Action *"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_cross_account_roles_trust_only_the_pipeline_role(local_synth: SynthResult, pipeline: str) -> None:
    for account in ("training", "production"):
        document = _policy(local_synth, pipeline, f"{account}:mlpipe-{pipeline}-{account}-xacct/trust")
        (statement,) = document["Statement"]
        assert statement["Principal"] == {"AWS": "${aws_iam_role.shared_pipeline.arn}"}
        assert statement["Action"] == "sts:AssumeRole"


def test_service_roles_are_bound_to_their_own_account(local_synth: SynthResult) -> None:
    trusts = {n: d for n, d in _policies(local_synth, "churn").items() if n.endswith("/trust") and "xacct" not in n}
    assert len(trusts) == 6  # pipeline, trigger, state machine, training SageMaker, deployer, production SageMaker
    accounts = {"shared": "111111111111", "training": "222222222222", "production": "333333333333"}
    for name, document in trusts.items():
        (statement,) = document["Statement"]
        assert set(statement["Principal"]) == {"Service"}
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == accounts[name.split(":")[0]]


def test_no_policy_trusts_a_root_except_key_administration(local_synth: SynthResult) -> None:
    for stack in local_synth.stacks:
        for name, document in _policies(local_synth, stack).items():
            for statement in document["Statement"]:
                if ":root" in json.dumps(statement.get("Principal", {})):
                    assert name.endswith("key-policy") and statement["Sid"] == "KeyAdministrationByOwningAccount"
                    assert not any(a in ("kms:*", "kms:Decrypt", "kms:Encrypt") for a in _as_list(statement["Action"]))


def test_pipeline_key_use_is_granted_to_its_named_roles_only(local_synth: SynthResult) -> None:
    key = _policy(local_synth, "churn", "shared:alias/mlpipe-churn-artifacts/key-policy")
    roles = _statement(key, "AllowKeyUseByNamedRoles")["Principal"]["AWS"]
    assert roles == [
        "${aws_iam_role.shared_pipeline.arn}",
        "${aws_iam_role.training_cross_account.arn}",
        "${aws_iam_role.training_sagemaker.arn}",
        "${aws_iam_role.production_cross_account.arn}",
        "${aws_iam_role.production_sagemaker.arn}",
        "${aws_iam_role.production_deployer.arn}",
    ]
    grants = _statement(key, "AllowGrantsForAwsResourcesByNamedRoles")
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    events = _statement(key, "AllowEventBridgeToPublishToTheEncryptedTopic")
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert events["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        "arn:aws:events:eu-west-1:111111111111:rule/mlpipe-churn-notify",
        "arn:aws:events:eu-west-1:111111111111:rule/mlpipe-churn-notify-approvals",
    ]


def test_logs_keys_serve_only_cloudwatch_logs_of_the_platform(local_synth: SynthResult) -> None:
    key = _policy(local_synth, "foundation", "production:alias/mlpipe-logs/key-policy")
    logs = _statement(key, "AllowCloudWatchLogsForPlatformLogGroups")
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"]["StringLike"]["kms:EncryptionContext:aws:logs:arn"] == [
        "arn:aws:logs:eu-west-1:333333333333:log-group:/aws/lambda/mlpipe-*"
    ]
    assert [s["Sid"] for s in key["Statement"]] == [
        "KeyAdministrationByOwningAccount",
        "AllowCloudWatchLogsForPlatformLogGroups",
    ]


def test_bucket_policy_denies_plaintext_wrong_key_and_insecure_transport(local_synth: SynthResult) -> None:
    bucket = _policy(local_synth, "churn", "/bucket-policy")
    unencrypted = _statement(bucket, "DenyUnencryptedUploads")
    assert unencrypted["Effect"] == "Deny" and unencrypted["Action"] == "s3:PutObject"
    assert unencrypted["Principal"] == "*"
    assert unencrypted["Condition"] == {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}
    other_key = _statement(bucket, "DenyUploadsWithOtherKeys")
    assert other_key["Condition"]["StringNotEquals"] == {
        "s3:x-amz-server-side-encryption-aws-kms-key-id": "${aws_kms_key.shared_artifacts.arn}"
    }
    tls = _statement(bucket, "DenyInsecureTransport")
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and tls["Action"] == "s3:*"


def test_each_role_gets_only_its_prefix(local_synth: SynthResult) -> None:
    bucket = _policy(local_synth, "churn", "/bucket-policy")
    assert _statement(bucket, "AllowTrainingReadData")["Resource"].endswith("/data/*")
    assert _statement(bucket, "AllowTrainingWriteModels")["Resource"].endswith("/models/*")
    production = _statement(bucket, "AllowProductionReadModels")
    assert production["Action"] == "s3:GetObject" and production["Resource"].endswith("/models/*")
    capture = _statement(bucket, "AllowProductionWriteDataCapture")
    assert capture["Resource"].endswith("/datacapture/mlpipe-churn-endpoint/*")
    smoke = _statement(bucket, "AllowDeployerReadSmokeTestData")
    assert smoke["Resource"].endswith("/data/validation/validation.csv")
    assert _statement(bucket, "AllowDeployerReadPipelineArtifacts")["Resource"].endswith("/mlpipe-churn-pipelin/*")


def test_pipelines_are_isolated_by_construction(local_synth: SynthResult) -> None:
    """No document of one pipeline names another pipeline's bucket, key, roles or endpoint."""
    for pipeline in PIPELINES:
        other = next(p for p in PIPELINES if p != pipeline)
        text = json.dumps(_policies(local_synth, pipeline)) + local_synth.hcl(pipeline)
        assert f"mlpipe-{other}" not in text
        assert "arn:aws:s3:::*" not in text and "arn:aws:s3:::mlpipe-*" not in text


def test_pass_role_is_scoped_and_conditioned(local_synth: SynthResult) -> None:
    seen = 0
    for name, document in _policies(local_synth, "churn").items():
        for statement in document["Statement"]:
            if "iam:PassRole" in _as_list(statement["Action"]):
                seen += 1
                assert statement["Resource"].startswith("${aws_iam_role."), name
                assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
    assert seen == 2  # state machine -> training SageMaker role, deployer -> production SageMaker role


def test_deployer_may_invoke_only_its_own_endpoint(local_synth: SynthResult) -> None:
    deployer = _policy(local_synth, "churn", "mlpipe-churn-deployer/deployer_permissions")
    smoke = _statement(deployer, "FollowAndSmokeTestThePipelineEndpoint")
    assert "sagemaker:InvokeEndpoint" in smoke["Action"]
    assert smoke["Resource"] == "arn:aws:sagemaker:eu-west-1:333333333333:endpoint/mlpipe-churn-endpoint"
    alarms = _statement(deployer, "ReadRollbackAlarms")["Resource"]
    assert alarms == [
        "${aws_cloudwatch_metric_alarm.production_endpoint_errors.arn}",
        "${aws_cloudwatch_metric_alarm.production_endpoint_latency.arn}",
    ]


def test_hcl_uses_one_aliased_provider_per_account(local_synth: SynthResult) -> None:
    for stack in local_synth.stacks:
        hcl = local_synth.hcl(stack)
        assert re.findall(r'alias\s*=\s*"(\w+)"', hcl) == ["shared", "training", "production"]
        assert len(re.findall(r"^\s*role_arn\s*=\s*\"arn:aws:iam::(\d{12}):role/", hcl, re.M)) == 3
        assert "managed_policy_arns" not in hcl and "FullAccess" not in hcl
        assert re.search(r'"Stack"\s*=\s*"' + stack + '"', hcl)


def test_declared_skips_appear_inline_with_reasons(local_synth: SynthResult) -> None:
    for stack in local_synth.stacks:
        hcl = local_synth.hcl(stack)
        skips = local_synth.manifest(stack)["skips"]
        assert skips, "expected the declared per-resource skips"
        for address, entries in skips.items():
            rtype, name = address.split(".")
            block = hcl[hcl.index(f'resource "{rtype}" "{name}"') :]
            for entry in entries:
                assert len(entry["reason"]) > 20
                assert f"# checkov:skip={entry['check']}:{entry['reason']}" in block.split("\n}\n")[0]


def test_deployer_settings_and_serving_environment(local_synth: SynthResult) -> None:
    hcl = local_synth.hcl("fraud")
    block = hcl[hcl.index('resource "aws_lambda_function"') :].split("\n}\n")[0]
    assert re.search(r'runtime\s*=\s*"python3\.1[2-9]"', block) and re.search(r"timeout\s*=\s*120", block)
    assert re.search(r'mode\s*=\s*"Active"', block)
    assert "reserved_concurrent_executions" in block and "dead_letter_config" in block
    for variable, value in {
        "ENDPOINT_INSTANCE_COUNT": '"2"',
        "AUTOSCALING_MIN": '"2"',
        "AUTOSCALING_MAX": '"4"',
        "DEPLOYMENT_STRATEGY": '"CANARY"',
        "CANARY_PERCENT": '"10"',
        "DATA_CAPTURE_PERCENT": '"20"',
        "ROLLBACK_ALARM_NAMES": '"mlpipe-fraud-endpoint-5xx-errors,mlpipe-fraud-endpoint-model-latency"',
    }.items():
        assert re.search(rf"{variable}\s*=\s*{re.escape(value)}", block), variable
    assert re.search(
        r'SMOKE_TEST_S3_URI\s*=\s*"s3://\$\{aws_s3_bucket.shared_artifacts.bucket\}/data/validation/', block
    )


def test_pipeline_has_four_stages_and_encrypted_artifact_store(local_synth: SynthResult) -> None:
    hcl = local_synth.hcl("churn")
    block = hcl[hcl.index('resource "aws_codepipeline"') :].split("\n}\n")[0]
    assert re.findall(r'^\s{4}name\s*=\s*"(\w+)"', block, re.M) == ["Source", "Train", "Approve", "Deploy"]
    assert re.search(r'type\s*=\s*"KMS"', block)
    assert re.search(r'PollForSourceChanges\s*=\s*"false"', block)
    assert re.search(r"BranchName\s*=\s*local\.branch", block)
    assert "aws_cloudwatch_event_target" in hcl


def test_notifications_reach_only_this_pipelines_topic(local_synth: SynthResult) -> None:
    topic = _policy(local_synth, "churn", "mlpipe-churn-notifications/topic-policy")
    events = _statement(topic, "AllowEventBridgeRulesOfThisPipeline")
    assert events["Condition"]["StringEquals"] == {"aws:SourceAccount": "111111111111"}
    assert _statement(topic, "DenyInsecureTransport")["Effect"] == "Deny"
    hcl = local_synth.hcl("churn")
    assert re.search(r'"CodePipeline Pipeline Execution State Change"', hcl)
    assert re.search(r'state\s*=\s*\["FAILED", "SUCCEEDED"\]', hcl)


def test_xgboost_image_comes_from_the_region_aware_data_source(local_synth: SynthResult) -> None:
    hcl = local_synth.hcl("churn")
    assert 'data "aws_sagemaker_prebuilt_ecr_image"' in hcl
    assert "dkr.ecr" not in hcl
