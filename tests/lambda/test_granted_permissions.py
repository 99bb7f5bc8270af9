"""The permission set the deployer uses equals the one its role is granted.

`permissions.py` lists every IAM action the deployer's code calls (proven by test_permissions.py)
and every permission AWS checks on its role during those calls. Here the rendered deployer and
production SageMaker policies are evaluated with the gate's IAM evaluator: each of those actions
must be ALLOWED on its concrete resource, and the policy must allow nothing the deployer does not
need (plus what the Lambda runtime itself needs: logs, traces, the dead-letter queue, its key).
"""

from __future__ import annotations

import re
from typing import Any

import permissions
import pytest

from mlpipe.core.templates import render_policy
from mlpipe.gate.access.evaluator import Call, Document, PolicySet, evaluate

ACCOUNT, REGION, PARTITION = "333333333333", "eu-west-1", "aws"
PREFIX, ENDPOINT = "mlpipe-churn", "mlpipe-churn-endpoint"
BUCKET = "mlpipe-churn-artifacts-111111111111-eu-west-1"
KEY = "arn:aws:kms:eu-west-1:111111111111:key/0f0e0d0c-0b0a-4000-8000-000000000001"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-deployer"
SAGEMAKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-production-sagemaker"
ALARMS = [f"{PREFIX}-endpoint-5xx-errors", f"{PREFIX}-endpoint-model-latency"]
ARTIFACT_PREFIX = "mlpipe-churn-pipelin"
SMOKE_KEY = "data/validation/validation.csv"
CAPTURE_PREFIX = f"datacapture/{ENDPOINT}"
RUNTIME = {  # what the Lambda service does with the function's role, not the deployer's code
    "logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords",
}  # fmt: skip
VALUES = {
    "${Partition}": PARTITION,
    "${Region}": REGION,
    "${Account}": ACCOUNT,
    "${NamePrefix}": PREFIX,
    "${EndpointName}": ENDPOINT,
    "${ArtifactBucket}": BUCKET,
    "${ArtifactPrefix}": ARTIFACT_PREFIX,
    "${SmokeTestBucket}": BUCKET,
    "${SmokeTestKey}": SMOKE_KEY,
    "${CaptureBucket}": BUCKET,
    "${CapturePrefix}": CAPTURE_PREFIX,
    "${KmsKeyArn}": KEY,
    "${SageMakerRoleArn}": SAGEMAKER_ROLE,
}


def _deployer_policy() -> dict[str, Any]:
    return render_policy(
        "deployer_permissions.json.j2",
        partition=PARTITION,
        region=REGION,
        account_id=ACCOUNT,
        name_prefix=PREFIX,
        endpoint_name=ENDPOINT,
        sagemaker_role_arn=SAGEMAKER_ROLE,
        bucket_arn=f"arn:aws:s3:::{BUCKET}",
        key_arn=KEY,
        artifact_prefix=ARTIFACT_PREFIX,
        smoke_test_key=SMOKE_KEY,
        log_group_arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{PREFIX}-deployer",
        dead_letter_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{PREFIX}-deployer-dlq",
        local_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f0e0d0c-0b0a-4000-8000-000000000002",
        rollback_alarm_arns=[f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}" for name in ALARMS],
    )


def _concrete(pattern: str, alarm: str) -> str:
    """One concrete resource a pattern of permissions.py stands for."""
    value = pattern.replace("${RollbackAlarmName}", alarm)
    for placeholder, real in VALUES.items():
        value = value.replace(placeholder, real)
    assert "${" not in value, value
    return value if value == "*" else value.replace("*", "x1")  # a real name where the pattern allows any


def _identity_only(action: str, resource: str, context: dict[str, str] | None = None) -> Any:
    """Decide on the deployer's identity policy alone (resource policies are the access proof's job).

    The shared account's bucket and key get a stand-in resource policy that allows the call, so only
    the deployer's own side decides here; the real bucket and key policies are proven by the gate.
    """
    other_side = {
        target: Document("stand-in", {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "*"}]})
        for target in (KEY, f"arn:aws:s3:::{BUCKET}")
    }
    policies = PolicySet(identity={ROLE: [Document("deployer_permissions", _deployer_policy())]}, resource=other_side)
    account = "111111111111" if resource.startswith("arn:aws:s3:::") else None
    return evaluate(policies, Call(ROLE, action, resource, context or {}, resource_account=account))


GRANTS = {**permissions.ACTION_RESOURCES, **permissions.DEPENDENT_PERMISSIONS}


@pytest.mark.parametrize("action", sorted(GRANTS))
def test_every_action_the_deployer_needs_is_granted(action: str) -> None:
    grant = GRANTS[action]
    context = {key: value for block in grant.condition.values() for key, value in block.items()}
    if action.startswith("application-autoscaling:") and action != "application-autoscaling:DescribeScalableTargets":
        context["application-autoscaling:service-namespace"] = "sagemaker"
        resources = [f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/0123abcd"]
    else:
        resources = [_concrete(p, alarm) for p in grant.resources for alarm in ALARMS]
    for resource in resources:
        decision = _identity_only(action, resource, context)
        assert decision.allowed, f"{action} on {resource}: {decision}"


def test_the_policy_allows_nothing_the_deployer_does_not_need() -> None:
    granted = {
        action
        for statement in _deployer_policy()["Statement"]
        if statement["Effect"] == "Allow"
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    }
    needed = set(GRANTS) | RUNTIME
    assert granted - needed == set(), "granted but never used"
    assert {a for a in needed if not re.search(r"[*?]", a)} - granted == set(), "used but never granted"


def test_invoke_is_scoped_to_the_pipelines_own_endpoint() -> None:
    own = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
    other = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/mlpipe-fraud-endpoint"
    assert _identity_only("sagemaker:InvokeEndpoint", own).allowed
    assert not _identity_only("sagemaker:InvokeEndpoint", other).allowed
    assert not _identity_only("sagemaker:UpdateEndpoint", other).allowed


def test_the_model_role_may_write_data_capture_and_nothing_else_new() -> None:
    document = render_policy(
        "production_sagemaker_permissions.json.j2",
        partition=PARTITION,
        region=REGION,
        account_id=ACCOUNT,
        name_prefix=PREFIX,
        bucket_arn=f"arn:aws:s3:::{BUCKET}",
        key_arn=KEY,
        data_capture_prefix=CAPTURE_PREFIX,
    )
    policies = PolicySet(identity={SAGEMAKER_ROLE: [Document("production_sagemaker_permissions", document)]})
    for action, grant in permissions.MODEL_ROLE_DATA_CAPTURE.items():
        for pattern in grant.resources:
            resource = _concrete(pattern, ALARMS[0])
            account = "111111111111" if resource.startswith("arn:aws:s3:::") else None
            stand_in = Document("stand-in", {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*"}]})
            both = PolicySet(identity=policies.identity, resource={KEY: stand_in, f"arn:aws:s3:::{BUCKET}": stand_in})
            decision = evaluate(both, Call(SAGEMAKER_ROLE, action, resource, {}, resource_account=account))
            assert decision.allowed, f"{action} on {resource}: {decision}"
    elsewhere = Call(
        SAGEMAKER_ROLE, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/models/m.tar.gz", {}, resource_account=ACCOUNT
    )
    assert not evaluate(policies, elsewhere).allowed
