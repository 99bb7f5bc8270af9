"""Every AWS call one pipeline run makes, and every call it must never be able to make, written down as data.

Why data: the access proof evaluates this list against the synthesized policies before anything is applied, so
"the pipeline works" and "the pipeline is isolated" are checked the same way and reviewed in one place. The
entries use placeholders, never literal names: ``{training_sagemaker_role}`` and the others are filled in by
``mlpipe.gate.access.vocabulary`` from the manifests and the configuration, so the list cannot drift from what is
deployed. A placeholder that cannot be filled makes its call UNDECIDABLE (a finding), never an allow.

Extending: a new call of the deployer Lambda (smoke test, blue/green update, auto scaling, data capture) is one
``CallSpec`` appended to ``DEPLOYER_CALLS``; the analysis, reports, graph and cross-pipeline checks follow.

Placeholders (vocabulary.py says where each comes from): accounts ``{shared_account}``
``{training_account}`` ``{production_account}`` ``{foreign_account}``, ``{region}`` ``{partition}``; roles
``{pipeline_role}`` ``{trigger_role}`` ``{training_xacct_role}`` ``{state_machine_role}``
``{training_sagemaker_role}`` ``{production_xacct_role}`` ``{deployer_role}`` ``{production_sagemaker_role}``;
roles nobody names ``{outsider_shared}`` ``{outsider_training}`` ``{outsider_production}`` ``{outsider_foreign}``;
resources ``{bucket}`` (ARN) ``{artifact_prefix}`` ``{train_object}`` ``{validation_object}`` ``{key}``
``{other_key}`` ``{deployer_key}`` ``{repository}`` ``{codepipeline}`` ``{state_machine}`` ``{state_machine_name}``
``{deployer_function}`` ``{dlq}`` ``{notification_topic}`` ``{approval_rule}`` ``{run_rule}``
``{state_machine_log_group}`` ``{deployer_log_group}`` ``{training_logs_key}`` ``{production_logs_key}``
``{access_log_bucket}`` ``{access_log_prefix}`` ``{smoke_test_object}`` ``{data_capture}`` ``{errors_alarm}``
``{latency_alarm}`` ``{xgboost_repository}`` ``{xgboost_registry}``; run names ``{training_job}`` ``{execution}``
``{model}`` ``{endpoint_config}`` ``{endpoint}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

STEPS = ("source", "train", "approve", "deploy", "platform")


@dataclass(frozen=True)
class CallSpec:
    """One call: who (a role placeholder or a service principal), what, on which resource, with which context.

    ``label`` names the edge in the access graph (needed calls) or the rule a forbidden call checks. ``outside`` says
    why a call is authorized by something the generated policies do not contain; such a call is listed, never
    evaluated.
    """

    step: str
    principal: str
    action: str
    resource: str
    label: str
    context: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    principal_account: str | None = None
    outside: str | None = None

    @property
    def by_role(self) -> bool:
        """Acted by one of the pipeline's IAM roles (a placeholder), not by a service principal."""
        return self.principal.startswith("{") and self.principal.endswith("_role}")


def _ctx(**values: str) -> Mapping[str, str]:
    return MappingProxyType({key.replace("__", ":"): v for key, v in values.items()})


def sse(key: str = "{key}", algorithm: str = "aws:kms") -> Mapping[str, str]:
    """The headers of an encrypted upload (SDKs and services send the key ARN they were configured with)."""
    headers = {"s3:x-amz-server-side-encryption": algorithm}
    if key:
        headers["s3:x-amz-server-side-encryption-aws-kms-key-id"] = key
    return MappingProxyType(headers)


def via(service: str, **extra: str) -> Mapping[str, str]:
    """A KMS call a service makes on the caller's behalf (S3 decrypting an object, SQS encrypting a message)."""
    return MappingProxyType({"kms:ViaService": f"{service}.{{region}}.amazonaws.com", **extra})


def source_account(account: str) -> Mapping[str, str]:
    """A service principal assuming a role for one account (confused-deputy protection)."""
    return MappingProxyType({"aws:SourceAccount": account})


def logs_context(log_group: str) -> Mapping[str, str]:
    """CloudWatch Logs encrypting a log group's events with its key."""
    return MappingProxyType({"kms:EncryptionContext:aws:logs:arn": log_group})


GRANT_FOR_AWS_RESOURCE = MappingProxyType({"kms:GrantIsForAWSResource": "true", **via("sagemaker")})
PASS_TO_SAGEMAKER = MappingProxyType({"iam:PassedToService": "sagemaker.amazonaws.com"})
SOURCE_ARTIFACT = "{bucket}/{artifact_prefix}/request/Xy12AbC"
MODEL_ARTIFACT = "{bucket}/{artifact_prefix}/trained_model/Zq34DeF"
MODEL = "{bucket}/models/{training_job}/output/model.tar.gz"
CAPTURE = "{data_capture}/AllTraffic/2025/01/01/00/capture-0001.jsonl"
SAGEMAKER_ARN = "arn:{partition}:sagemaker:{region}"
ENDPOINT = SAGEMAKER_ARN + ":{production_account}:endpoint/{endpoint}"
XGBOOST_IMAGE = "arn:{partition}:ecr:{region}:{xgboost_registry}:repository/{xgboost_repository}"
ECR_OUTSIDE = (
    "the XGBoost image lives in the AWS-owned SageMaker registry of the region; its repository policy is AWS's and "
    "SageMaker pulls built-in algorithm images itself, so no generated policy grants or denies this pull "
    "(AWS's sample execution-role policy lists ecr:BatchGetImage/GetDownloadUrlForLayer: verify with a real run)"
)


def _role(
    step: str,
    role: str,
    actions: tuple[str, ...],
    resource: str,
    label: str,
    context: Mapping[str, str] = MappingProxyType({}),
    outside: str | None = None,
) -> list[CallSpec]:
    """The same principal and resource, several actions."""
    return [CallSpec(step, role, action, resource, label, context, outside=outside) for action in actions]


def _assume(step: str, service: str, role: str, account: str, label: str = "assume") -> CallSpec:
    return CallSpec(step, service, "sts:AssumeRole", role, label, source_account(account), principal_account=account)


def _logs_key(step: str, key: str, log_group: str, account: str) -> list[CallSpec]:
    return [
        CallSpec(step, "logs.{region}.amazonaws.com", action, key, "logs key", logs_context(log_group), account)
        for action in ("kms:GenerateDataKey", "kms:Decrypt")
    ]


# The pipeline's roles and the roles nobody names, as placeholders.
PIPELINE = "{pipeline_role}"
TRIGGER = "{trigger_role}"
TRAINING_XACCT = "{training_xacct_role}"
STATE_MACHINE = "{state_machine_role}"
TRAINING_SM = "{training_sagemaker_role}"
PRODUCTION_XACCT = "{production_xacct_role}"
DEPLOYER = "{deployer_role}"
PRODUCTION_SM = "{production_sagemaker_role}"
OUT_SHARED = "{outsider_shared}"
OUT_TRAINING = "{outsider_training}"
OUT_PRODUCTION = "{outsider_production}"
OUT_FOREIGN = "{outsider_foreign}"


# --- needed: what a real run does, step by step ----------------------------------------------------------------------

SOURCE_CALLS: tuple[CallSpec, ...] = (
    _assume("source", "events.amazonaws.com", TRIGGER, "{shared_account}"),
    CallSpec("source", TRIGGER, "codepipeline:StartPipelineExecution", "{codepipeline}", "start pipeline"),
    _assume("source", "codepipeline.amazonaws.com", PIPELINE, "{shared_account}"),
    *_role(
        "source",
        PIPELINE,
        (
            "codecommit:GetBranch",
            "codecommit:GetCommit",
            "codecommit:UploadArchive",
            "codecommit:GetUploadArchiveStatus",
        ),
        "{repository}",
        "read source",
    ),
    CallSpec("source", PIPELINE, "kms:Decrypt", "{key}", "decrypt", via("codecommit")),
    CallSpec("source", PIPELINE, "s3:PutObject", SOURCE_ARTIFACT, "write artifacts", sse()),
    CallSpec("source", PIPELINE, "kms:GenerateDataKey", "{key}", "encrypt", via("s3")),
)

TRAIN_CALLS: tuple[CallSpec, ...] = (
    CallSpec("train", PIPELINE, "sts:AssumeRole", TRAINING_XACCT, "assume"),
    CallSpec("train", TRAINING_XACCT, "s3:GetObject", SOURCE_ARTIFACT, "read artifacts"),
    CallSpec("train", TRAINING_XACCT, "kms:Decrypt", "{key}", "decrypt", via("s3")),
    CallSpec("train", TRAINING_XACCT, "states:StartExecution", "{state_machine}", "start"),
    CallSpec(
        "train",
        TRAINING_XACCT,
        "states:DescribeExecution",
        "arn:{partition}:states:{region}:{training_account}:execution:{state_machine_name}:{execution}",
        "start",
    ),
    _assume("train", "states.amazonaws.com", STATE_MACHINE, "{training_account}"),
    *_role(
        "train",
        STATE_MACHINE,
        ("sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob"),
        SAGEMAKER_ARN + ":{training_account}:training-job/{training_job}",
        "run training job",
    ),
    *_role(
        "train",
        STATE_MACHINE,
        ("events:PutTargets", "events:PutRule", "events:DescribeRule"),
        "arn:{partition}:events:{region}:{training_account}:rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule",
        "run training job",
    ),
    CallSpec("train", STATE_MACHINE, "iam:PassRole", TRAINING_SM, "pass role", PASS_TO_SAGEMAKER),
    *_role("train", STATE_MACHINE, ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), "*", "traces"),
    _assume("train", "sagemaker.amazonaws.com", TRAINING_SM, "{training_account}"),
    CallSpec("train", TRAINING_SM, "s3:ListBucket", "{bucket}", "list data", _ctx(s3__prefix="data/train/")),
    CallSpec(
        "train",
        TRAINING_SM,
        "s3:ListBucket",
        "{bucket}",
        "list data",
        _ctx(s3__prefix="data/validation/"),
    ),
    CallSpec("train", TRAINING_SM, "s3:GetObject", "{bucket}/{train_object}", "read data"),
    CallSpec("train", TRAINING_SM, "s3:GetObject", "{bucket}/{validation_object}", "read data"),
    CallSpec("train", TRAINING_SM, "kms:Decrypt", "{key}", "decrypt", via("s3")),
    CallSpec("train", TRAINING_SM, "kms:CreateGrant", "{key}", "volume grant", GRANT_FOR_AWS_RESOURCE),
    *_role(
        "train",
        TRAINING_SM,
        ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
        XGBOOST_IMAGE,
        "pull image",
        outside=ECR_OUTSIDE,
    ),
    CallSpec("train", TRAINING_SM, "s3:PutObject", MODEL, "write models", sse()),
    CallSpec("train", TRAINING_SM, "kms:GenerateDataKey", "{key}", "encrypt", via("s3")),
    *_role(
        "train",
        TRAINING_SM,
        ("logs:CreateLogStream", "logs:PutLogEvents"),
        "arn:{partition}:logs:{region}:{training_account}:log-group:/aws/sagemaker/TrainingJobs"
        ":log-stream:{training_job}/algo-1-1700000000",
        "write logs",
    ),
    CallSpec(
        "train",
        TRAINING_SM,
        "cloudwatch:PutMetricData",
        "*",
        "metrics",
        _ctx(cloudwatch__namespace="/aws/sagemaker/TrainingJobs"),
    ),
    CallSpec("train", TRAINING_XACCT, "s3:PutObject", MODEL_ARTIFACT, "write artifacts", sse()),
    CallSpec("train", TRAINING_XACCT, "kms:GenerateDataKey", "{key}", "encrypt", via("s3")),
    *_logs_key("train", "{training_logs_key}", "{state_machine_log_group}", "{training_account}"),
)


def _notify(step: str, rule: str) -> list[CallSpec]:
    """EventBridge publishing a pipeline event to the notifications topic, which is encrypted with the pipeline key."""
    context = _ctx(aws__SourceArn=rule, aws__SourceAccount="{shared_account}")
    return [
        CallSpec(
            step, "events.amazonaws.com", "sns:Publish", "{notification_topic}", "notify", context, "{shared_account}"
        ),
        *(
            CallSpec(
                step, "events.amazonaws.com", action, "{key}", "encrypt", {**context, **via("sns")}, "{shared_account}"
            )
            for action in ("kms:GenerateDataKey", "kms:Decrypt")
        ),
    ]


# The Approve stage waits for a person; its start is an EventBridge event the approvals rule sends to the topic.
APPROVE_CALLS: tuple[CallSpec, ...] = tuple(_notify("approve", "{approval_rule}"))

# What the deployer Lambda's own code calls (lambda_src/deployer.py, lambda_src/permissions.py): extend here.
DEPLOYER_CALLS: tuple[CallSpec, ...] = (
    CallSpec("deploy", DEPLOYER, "s3:GetObject", MODEL_ARTIFACT, "read artifacts"),
    CallSpec("deploy", DEPLOYER, "kms:Decrypt", "{key}", "decrypt", via("s3")),
    *_role(
        "deploy",
        DEPLOYER,
        ("sagemaker:DescribeModel", "sagemaker:CreateModel"),
        SAGEMAKER_ARN + ":{production_account}:model/{model}",
        "deploy model",
    ),
    CallSpec("deploy", DEPLOYER, "iam:PassRole", PRODUCTION_SM, "pass role", PASS_TO_SAGEMAKER),
    *_role(
        "deploy",
        DEPLOYER,
        ("sagemaker:DescribeEndpointConfig", "sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpointConfig"),
        SAGEMAKER_ARN + ":{production_account}:endpoint-config/{endpoint_config}",
        "deploy model",
    ),
    CallSpec("deploy", DEPLOYER, "kms:CreateGrant", "{key}", "volume grant", GRANT_FOR_AWS_RESOURCE),
    CallSpec("deploy", DEPLOYER, "kms:DescribeKey", "{key}", "volume grant", via("sagemaker")),
    CallSpec("deploy", DEPLOYER, "sagemaker:DescribeEndpoint", ENDPOINT, "deploy model"),
    *(
        CallSpec("deploy", DEPLOYER, action, SAGEMAKER_ARN + f":{{production_account}}:{kind}", "deploy model")
        for action in ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint")
        for kind in ("endpoint/{endpoint}", "endpoint-config/{endpoint_config}")
    ),
    *_role(
        "deploy",
        DEPLOYER,
        ("codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"),
        "*",
        "report result",
    ),
    # Smoke test: the head of the validation CSV, then a few predictions.
    CallSpec("deploy", DEPLOYER, "s3:GetObject", "{smoke_test_object}", "read data"),
    CallSpec("deploy", DEPLOYER, "sagemaker:InvokeEndpoint", ENDPOINT, "smoke test"),
    # Blue/green update with rollback alarms: which alarm fired.
    *(
        CallSpec("deploy", DEPLOYER, action, alarm, "rollback alarms")
        for action in ("cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory")
        for alarm in ("{errors_alarm}", "{latency_alarm}")
    ),
    # Application Auto Scaling of the variant. RegisterScalableTarget first checks, with the caller's rights, that it
    # may manage the endpoint and its CloudWatch alarms (the Application Auto Scaling guide, "Permissions validation
    # for API calls on target resources": DescribeAlarms with MaxRecords=1 and no alarm name, which CloudWatch
    # authorizes against the account's alarms in the region, arn:...:alarm:*).
    CallSpec("deploy", DEPLOYER, "application-autoscaling:DescribeScalableTargets", "*", "scale"),
    *_role(
        "deploy",
        DEPLOYER,
        (
            "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:DeregisterScalableTarget",
        ),
        "arn:{partition}:application-autoscaling:{region}:{production_account}:scalable-target/0123456789abcdef0123",
        "scale",
        context=MappingProxyType(
            {
                "application-autoscaling:service-namespace": "sagemaker",
                "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
            }
        ),
    ),
    CallSpec(
        "deploy",
        DEPLOYER,
        "iam:CreateServiceLinkedRole",
        "arn:{partition}:iam::{production_account}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com"
        "/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
        "scale",
        _ctx(iam__AWSServiceName="sagemaker.application-autoscaling.amazonaws.com"),
    ),
    CallSpec("deploy", DEPLOYER, "sagemaker:UpdateEndpointWeightsAndCapacities", ENDPOINT, "scale"),
    CallSpec(
        "deploy",
        DEPLOYER,
        "cloudwatch:DescribeAlarms",
        "arn:{partition}:cloudwatch:{region}:{production_account}:alarm:*",
        "scale",
    ),
    *_role(
        "deploy",
        DEPLOYER,
        ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"),
        "arn:{partition}:cloudwatch:{region}:{production_account}:alarm:TargetTracking-endpoint/{endpoint}"
        "/variant/AllTraffic-AlarmHigh-0123abcd-4567-89ef-0123-456789abcdef",
        "scale",
    ),
)

DEPLOY_CALLS: tuple[CallSpec, ...] = (
    CallSpec("deploy", PIPELINE, "sts:AssumeRole", PRODUCTION_XACCT, "assume"),
    CallSpec("deploy", PRODUCTION_XACCT, "lambda:InvokeFunction", "{deployer_function}", "invoke"),
    _assume("deploy", "lambda.amazonaws.com", DEPLOYER, "{production_account}"),
    CallSpec("deploy", DEPLOYER, "kms:Decrypt", "{deployer_key}", "decrypt", via("lambda")),
    *DEPLOYER_CALLS,
    *_role(
        "deploy",
        DEPLOYER,
        ("logs:CreateLogStream", "logs:PutLogEvents"),
        "{deployer_log_group}:log-stream:2025/01/01/[$LATEST]0123456789abcdef",
        "write logs",
    ),
    *_role("deploy", DEPLOYER, ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), "*", "traces"),
    CallSpec("deploy", DEPLOYER, "sqs:SendMessage", "{dlq}", "dead letters"),
    *_role("deploy", DEPLOYER, ("kms:GenerateDataKey", "kms:Decrypt"), "{deployer_key}", "encrypt", context=via("sqs")),
    _assume("deploy", "sagemaker.amazonaws.com", PRODUCTION_SM, "{production_account}"),
    CallSpec("deploy", PRODUCTION_SM, "s3:GetObject", MODEL, "read models"),
    CallSpec("deploy", PRODUCTION_SM, "kms:Decrypt", "{key}", "decrypt", via("s3")),
    *_role(
        "deploy",
        PRODUCTION_SM,
        ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
        XGBOOST_IMAGE,
        "pull image",
        outside=ECR_OUTSIDE,
    ),
    *_role(
        "deploy",
        PRODUCTION_SM,
        ("logs:CreateLogStream", "logs:PutLogEvents"),
        "arn:{partition}:logs:{region}:{production_account}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
        ":log-stream:AllTraffic/i-0123456789abcdef0",
        "write logs",
    ),
    CallSpec("deploy", PRODUCTION_SM, "s3:PutObject", CAPTURE, "capture data", sse()),
    CallSpec("deploy", PRODUCTION_SM, "kms:GenerateDataKey", "{key}", "encrypt", via("s3")),
    CallSpec(
        "deploy",
        PRODUCTION_SM,
        "cloudwatch:PutMetricData",
        "*",
        "metrics",
        _ctx(cloudwatch__namespace="/aws/sagemaker/Endpoints"),
    ),
    *_logs_key("deploy", "{production_logs_key}", "{deployer_log_group}", "{production_account}"),
)

PLATFORM_CALLS: tuple[CallSpec, ...] = (
    *_notify("platform", "{run_rule}"),  # a run succeeded or failed
    CallSpec(
        "platform",
        "logging.s3.amazonaws.com",
        "s3:PutObject",
        "{access_log_bucket}/{access_log_prefix}2025-01-01-00",
        "access logs",
        _ctx(aws__SourceArn="{bucket}", aws__SourceAccount="{shared_account}"),
        "{shared_account}",
    ),
)

NEEDED: tuple[CallSpec, ...] = SOURCE_CALLS + TRAIN_CALLS + APPROVE_CALLS + DEPLOY_CALLS + PLATFORM_CALLS

# --- forbidden: what must be denied -----------------------------------------------------------------------------------

_DEPUTY = "services assume roles for their own account only"
_TRAINING_ROLES = (TRAINING_XACCT, STATE_MACHINE, TRAINING_SM)

FORBIDDEN: tuple[CallSpec, ...] = (
    # The training account never touches production endpoints or the deployer.
    *(
        CallSpec("deploy", role, action, ENDPOINT, "training account cannot change production endpoints")
        for role in _TRAINING_ROLES
        for action in ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint")
    ),
    CallSpec(
        "deploy",
        TRAINING_XACCT,
        "lambda:InvokeFunction",
        "{deployer_function}",
        "training account cannot invoke the deployer",
    ),
    # The deployer passes the production SageMaker role, to SageMaker, and nothing else.
    *(
        CallSpec("deploy", DEPLOYER, "iam:PassRole", role, "deployer passes only its SageMaker role", PASS_TO_SAGEMAKER)
        for role in (TRAINING_SM, PRODUCTION_XACCT, DEPLOYER, OUT_PRODUCTION)
    ),
    CallSpec(
        "deploy",
        DEPLOYER,
        "iam:PassRole",
        PRODUCTION_SM,
        "deployer passes only its SageMaker role",
        _ctx(iam__PassedToService="lambda.amazonaws.com"),
    ),
    # Pipeline keys: only the roles the key policy names; administrators of other accounts included.
    *(
        CallSpec("train", role, "kms:Decrypt", "{key}", "only named roles use the pipeline key", via("s3"))
        for role in (OUT_SHARED, OUT_TRAINING, OUT_PRODUCTION, OUT_FOREIGN, STATE_MACHINE, TRIGGER)
    ),
    *(
        CallSpec("deploy", role, "kms:Decrypt", "{deployer_key}", "only the deployer uses the deployer key", via("sqs"))
        for role in (TRAINING_XACCT, PRODUCTION_XACCT, PRODUCTION_SM, PIPELINE, OUT_PRODUCTION)
    ),
    CallSpec(
        "deploy",
        OUT_PRODUCTION,
        "kms:GenerateDataKey",
        "{deployer_key}",
        "only the deployer uses the deployer key",
        via("sqs"),
    ),
    # The pipeline role assumes its two cross-account roles, nothing else.
    *(
        CallSpec("source", PIPELINE, "sts:AssumeRole", role, "pipeline role assumes only its action roles")
        for role in (
            OUT_FOREIGN,
            OUT_TRAINING,
            OUT_PRODUCTION,
            STATE_MACHINE,
            TRAINING_SM,
            DEPLOYER,
            PRODUCTION_SM,
            TRIGGER,
        )
    ),
    CallSpec(
        "deploy", TRAINING_XACCT, "sts:AssumeRole", PRODUCTION_XACCT, "cross-account roles cannot assume each other"
    ),
    CallSpec(
        "train", PRODUCTION_XACCT, "sts:AssumeRole", TRAINING_XACCT, "cross-account roles cannot assume each other"
    ),
    *(
        CallSpec("train", role, "sts:AssumeRole", target, "roles are assumed only by their service or the pipeline")
        for role, target in (
            (OUT_TRAINING, TRAINING_SM),
            (OUT_TRAINING, TRAINING_XACCT),
            (OUT_PRODUCTION, PRODUCTION_XACCT),
            (OUT_PRODUCTION, DEPLOYER),
        )
    ),
    _assume("train", "sagemaker.amazonaws.com", TRAINING_SM, "{foreign_account}", _DEPUTY),
    _assume("deploy", "lambda.amazonaws.com", DEPLOYER, "{foreign_account}", _DEPUTY),
    _assume("deploy", "sagemaker.amazonaws.com", PRODUCTION_SM, "{training_account}", _DEPUTY),
    # Only this pipeline's EventBridge rules publish to its topic and use its key for that.
    *(
        CallSpec(
            "approve",
            "events.amazonaws.com",
            action,
            resource,
            "only the pipeline's rules notify",
            MappingProxyType(
                {**context, "aws:SourceArn": "arn:{partition}:events:{region}:{shared_account}:rule/other"}
            ),
            "{shared_account}",
        )
        for action, resource, context in (
            ("sns:Publish", "{notification_topic}", {}),
            ("kms:GenerateDataKey", "{key}", via("sns")),
        )
    ),
    # What a security reviewer checks first on the bucket.
    CallSpec("train", TRAINING_SM, "s3:PutObject", MODEL, "uploads must be SSE-KMS"),
    CallSpec("train", TRAINING_SM, "s3:PutObject", MODEL, "uploads must be SSE-KMS", sse("", "AES256")),
    CallSpec(
        "source", PIPELINE, "s3:PutObject", SOURCE_ARTIFACT, "uploads must use the pipeline key", sse("{other_key}")
    ),
    CallSpec("train", TRAINING_SM, "s3:PutObject", MODEL, "uploads must use the pipeline key", sse("{other_key}")),
    *(
        CallSpec(step, role, "s3:GetObject", obj, "TLS only", _ctx(aws__SecureTransport="false"))
        for step, role, obj in (
            ("train", TRAINING_SM, "{bucket}/{train_object}"),
            ("deploy", DEPLOYER, MODEL_ARTIFACT),
            ("deploy", PRODUCTION_SM, MODEL),
        )
    ),
    CallSpec("deploy", PRODUCTION_SM, "s3:PutObject", MODEL, "production reads models only", sse()),
    CallSpec("deploy", PRODUCTION_SM, "s3:GetObject", "{bucket}/{train_object}", "production reads models only"),
    CallSpec(
        "deploy", PRODUCTION_SM, "s3:ListBucket", "{bucket}", "production reads models only", _ctx(s3__prefix="data/")
    ),
    CallSpec("train", TRAINING_SM, "s3:GetObject", MODEL_ARTIFACT, "training SageMaker reads data, writes models"),
    CallSpec(
        "train",
        TRAINING_SM,
        "s3:PutObject",
        "{bucket}/{train_object}",
        "training SageMaker reads data, writes models",
        sse(),
    ),
    CallSpec(
        "train",
        TRAINING_SM,
        "s3:ListBucket",
        "{bucket}",
        "training SageMaker reads data, writes models",
        _ctx(s3__prefix="{artifact_prefix}/"),
    ),
    CallSpec(
        "train",
        TRAINING_SM,
        "kms:Decrypt",
        "{deployer_key}",
        "training SageMaker reads data, writes models",
        via("sqs"),
    ),
    *(
        CallSpec("train", role, "s3:GetObject", "{bucket}/{train_object}", "other accounts' administrators")
        for role in (OUT_TRAINING, OUT_PRODUCTION, OUT_FOREIGN)
    ),
    CallSpec(
        "train",
        STATE_MACHINE,
        "sagemaker:CreateTrainingJob",
        SAGEMAKER_ARN + ":{training_account}:training-job/other-{training_job}",
        "only prefixed SageMaker names",
    ),
    CallSpec(
        "deploy",
        DEPLOYER,
        "sagemaker:CreateEndpoint",
        SAGEMAKER_ARN + ":{production_account}:endpoint/other-{endpoint}",
        "only prefixed SageMaker names",
    ),
)

# Aimed by each pipeline's roles at every *other* pipeline's resources (besides the needed calls, mirrored the same
# way): no role of one pipeline reads, writes or decrypts another pipeline's data, models, artifacts or keys.
CROSS_PIPELINE: tuple[CallSpec, ...] = tuple(
    CallSpec(step, role, action, resource, f"pipelines are isolated ({what})", context)
    for role in (
        PIPELINE,
        TRIGGER,
        TRAINING_XACCT,
        STATE_MACHINE,
        TRAINING_SM,
        PRODUCTION_XACCT,
        DEPLOYER,
        PRODUCTION_SM,
    )
    for step, action, resource, what, context in (
        ("train", "s3:GetObject", "{bucket}/{train_object}", "read data", _ctx()),
        ("train", "s3:PutObject", MODEL, "write models", sse()),
        ("deploy", "s3:GetObject", MODEL, "read models", _ctx()),
        ("deploy", "s3:GetObject", MODEL_ARTIFACT, "read artifacts", _ctx()),
        ("train", "kms:Decrypt", "{key}", "decrypt", via("s3")),
        ("deploy", "kms:Decrypt", "{deployer_key}", "decrypt", via("sqs")),
    )
)

# Checked once for the platform (the foundation's logs keys serve every pipeline).
PLATFORM_FORBIDDEN: tuple[CallSpec, ...] = (
    CallSpec(
        "platform",
        "logs.{region}.amazonaws.com",
        "kms:Decrypt",
        "{training_logs_key}",
        "logs keys serve the platform's log groups only",
        logs_context("arn:{partition}:logs:{region}:{training_account}:log-group:/aws/lambda/not-the-platform"),
        "{training_account}",
    ),
    CallSpec(
        "platform",
        "logs.{region}.amazonaws.com",
        "kms:GenerateDataKey",
        "{production_logs_key}",
        "logs keys serve the platform's log groups only",
        logs_context("arn:{partition}:logs:{region}:{production_account}:log-group:/aws/vendedlogs/other"),
        "{production_account}",
    ),
    *(
        CallSpec("platform", role, "kms:Decrypt", key, "logs keys serve CloudWatch Logs only")
        for role in (OUT_TRAINING, OUT_PRODUCTION, OUT_FOREIGN)
        for key in ("{training_logs_key}", "{production_logs_key}")
    ),
    CallSpec(
        "platform",
        OUT_FOREIGN,
        "s3:GetObject",
        "{access_log_bucket}/access-logs/x",
        "access logs stay in the shared account",
    ),
)
