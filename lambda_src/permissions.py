"""The IAM permissions the deployer Lambda's role needs, as the deployer itself sees them.

Why a file of its own: the role's policy is rendered from a template elsewhere, while the calls are
made here. tests/lambda records every AWS API call the deployer makes on all its paths and asserts
that the set equals ``REQUIRED_ACTIONS``, so a new call cannot slip in unnoticed, and the policy
template can be compared against this list.

- ``REQUIRED_ACTIONS``: the IAM actions of the API calls the deployer makes (``service:Action``).
- ``ACTION_RESOURCES``: for each of them, the resource ARN patterns to grant (and a condition, if any).
- ``DEPENDENT_PERMISSIONS``: permissions AWS checks on the deployer's role *during* those calls
  although the deployer never calls them (PassRole, KMS grants, the service-linked role, what
  Application Auto Scaling verifies on the caller). They belong in the same policy.
- ``MODEL_ROLE_DATA_CAPTURE``: what the production SageMaker *model execution role* (not the
  deployer) needs so the endpoint can write captured data.

Not listed: what the Lambda service itself needs for the function to run (CloudWatch Logs, X-Ray,
the dead-letter queue, the key of the environment variables); that is not the deployer's code.

Placeholders in the patterns: ``${Partition}``, ``${Region}``, ``${Account}`` (the production
account), ``${NamePrefix}`` (NAME_PREFIX), ``${EndpointName}`` (ENDPOINT_NAME in lower case:
SageMaker ARNs carry lower-cased names), ``${ArtifactBucket}``/``${ArtifactPrefix}`` (the pipeline's
artifact store), ``${SmokeTestBucket}``/``${SmokeTestKey}`` (SMOKE_TEST_S3_URI),
``${CaptureBucket}``/``${CapturePrefix}`` (DATA_CAPTURE_S3_URI), ``${KmsKeyArn}`` (KMS_KEY_ARN),
``${RollbackAlarmName}`` (each name in ROLLBACK_ALARM_NAMES), ``${SageMakerRoleArn}``
(SAGEMAKER_EXECUTION_ROLE_ARN).

Stdlib only: shipped in the Lambda package next to deployer.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_SAGEMAKER = "arn:${Partition}:sagemaker:${Region}:${Account}"
_MODELS = f"{_SAGEMAKER}:model/${{NamePrefix}}-*"
_CONFIGS = f"{_SAGEMAKER}:endpoint-config/${{NamePrefix}}-*"
_ENDPOINT = f"{_SAGEMAKER}:endpoint/${{EndpointName}}"
_ALARM = "arn:${Partition}:cloudwatch:${Region}:${Account}:alarm:${RollbackAlarmName}"
_SCALING_ALARMS = "arn:${Partition}:cloudwatch:${Region}:${Account}:alarm:" + (
    "TargetTracking-endpoint/${EndpointName}/variant/AllTraffic-*"
)
_SERVICE_LINKED_ROLE = (
    "arn:${Partition}:iam::${Account}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


@dataclass(frozen=True)
class Grant:
    """Where an action must be allowed, and why the deployer needs it."""

    resources: tuple[str, ...]
    why: str
    condition: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))


ACTION_RESOURCES: Mapping[str, Grant] = MappingProxyType(
    {
        "s3:GetObject": Grant(
            (
                "arn:${Partition}:s3:::${ArtifactBucket}/${ArtifactPrefix}/*",
                "arn:${Partition}:s3:::${SmokeTestBucket}/${SmokeTestKey}",
            ),
            "read the training output artifact; read the head of the validation CSV (ranged GET)",
        ),
        "sagemaker:DescribeModel": Grant((_MODELS,), "reuse a model created by an earlier invocation"),
        "sagemaker:CreateModel": Grant((_MODELS,), "the model of the training job"),
        "sagemaker:DescribeEndpointConfig": Grant(
            (_CONFIGS,), "reuse a config; compare instance types of the current and the next config"
        ),
        "sagemaker:CreateEndpointConfig": Grant((_CONFIGS,), "variant, volume key and data capture"),
        "sagemaker:DeleteEndpointConfig": Grant((_CONFIGS,), "remove the replaced config after a successful update"),
        "sagemaker:DescribeEndpoint": Grant((_ENDPOINT,), "follow the deployment; detect rollbacks"),
        "sagemaker:CreateEndpoint": Grant((_ENDPOINT, _CONFIGS), "first deployment"),
        "sagemaker:UpdateEndpoint": Grant(
            (_ENDPOINT, _CONFIGS), "blue/green update with alarm rollback; return to the previous config"
        ),
        "sagemaker:InvokeEndpoint": Grant((_ENDPOINT,), "smoke test (sagemaker-runtime InvokeEndpoint)"),
        "application-autoscaling:DescribeScalableTargets": Grant(
            ("*",), "is the variant registered (before an update, and when autoscaling is switched off)"
        ),
        "application-autoscaling:RegisterScalableTarget": Grant(
            ("*",),
            "register the variant with min/max; scalable-target ARNs carry a random id, so this cannot be "
            "scoped by endpoint name; the SageMaker permissions Application Auto Scaling checks on the caller "
            "(DEPENDENT_PERMISSIONS) limit it to the prefixed endpoints",
        ),
        "application-autoscaling:PutScalingPolicy": Grant(("*",), "target tracking on invocations per instance"),
        "application-autoscaling:DeregisterScalableTarget": Grant(
            ("*",), "before an update that changes the instance type; when AUTOSCALING_ENABLED=false"
        ),
        "cloudwatch:DescribeAlarms": Grant((_ALARM,), "which rollback alarm is in ALARM after a rollback"),
        "cloudwatch:DescribeAlarmHistory": Grant((_ALARM,), "which rollback alarm went into ALARM during the update"),
        "codepipeline:PutJobSuccessResult": Grant(("*",), "report progress and success (jobs have no ARN)"),
        "codepipeline:PutJobFailureResult": Grant(("*",), "report failure (jobs have no ARN)"),
    }
)

REQUIRED_ACTIONS: frozenset[str] = frozenset(ACTION_RESOURCES)

DEPENDENT_PERMISSIONS: Mapping[str, Grant] = MappingProxyType(
    {
        "iam:PassRole": Grant(
            ("${SageMakerRoleArn}",),
            "CreateModel passes the model execution role",
            MappingProxyType({"StringEquals": MappingProxyType({"iam:PassedToService": "sagemaker.amazonaws.com"})}),
        ),
        "kms:Decrypt": Grant(("${KmsKeyArn}",), "S3 decrypts the SSE-KMS artifact and validation data for GetObject"),
        "kms:DescribeKey": Grant(("${KmsKeyArn}",), "SageMaker checks the volume and data capture key"),
        "kms:CreateGrant": Grant(
            ("${KmsKeyArn}",),
            "SageMaker creates grants for the endpoint's volume encryption",
            MappingProxyType({"Bool": MappingProxyType({"kms:GrantIsForAWSResource": "true"})}),
        ),
        "iam:CreateServiceLinkedRole": Grant(
            (_SERVICE_LINKED_ROLE,),
            "the first RegisterScalableTarget for SageMaker in the account creates the service-linked role",
            MappingProxyType(
                {
                    "StringLike": MappingProxyType(
                        {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
                    )
                }
            ),
        ),
        "sagemaker:UpdateEndpointWeightsAndCapacities": Grant(
            (_ENDPOINT,), "Application Auto Scaling requires the caller of RegisterScalableTarget to hold it"
        ),
        "cloudwatch:PutMetricAlarm": Grant(
            (_SCALING_ALARMS,), "PutScalingPolicy (target tracking) creates its alarms with the caller's rights"
        ),
        "cloudwatch:DeleteAlarms": Grant((_SCALING_ALARMS,), "PutScalingPolicy replaces target tracking alarms"),
    }
)

MODEL_ROLE_DATA_CAPTURE: Mapping[str, Grant] = MappingProxyType(
    {
        "s3:PutObject": Grant(
            ("arn:${Partition}:s3:::${CaptureBucket}/${CapturePrefix}/*",),
            "the endpoint writes captured requests and responses under DATA_CAPTURE_S3_URI",
        ),
        "kms:GenerateDataKey": Grant(("${KmsKeyArn}",), "captured objects are SSE-KMS encrypted with KMS_KEY_ARN"),
    }
)
