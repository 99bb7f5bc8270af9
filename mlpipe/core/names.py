"""Every AWS name the tool derives, defined once, with the service limit it must respect.

The configuration validates these (length, collisions between pipelines) before anything is
synthesized; the generator takes its names from here and never builds one by hand. A pipeline's
names all start with ``<prefix>-<pipeline>-``. Pipeline names carry no hyphen, so that prefix never
starts another pipeline's names: an IAM wildcard such as ``<prefix>-churn-*`` can match only
pipeline ``churn``'s own resources.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

# The stack that holds what every pipeline shares; pipeline stacks are named after the pipeline.
FOUNDATION_STACK = "foundation"
# The Train stage reads this file from the repository (modules/pipeline.py); the seed step writes it.
TRAINING_REQUEST_FILE = "training-request.json"
# SageMaker training jobs are named `<base>-<32 hex of the execution>-<retry>` (asl/), at most 63 chars.
TRAINING_JOB_SUFFIX_LENGTH = 35


@dataclass(frozen=True)
class Limit:
    """The longest name a service accepts, and what to call the name in an error message."""

    length: int
    what: str


@dataclass(frozen=True)
class FoundationNames:
    """Names of what all pipelines share (one set per platform)."""

    access_log_bucket: str
    logs_key_alias: str

    LIMITS: ClassVar[dict[str, Limit]] = {
        "access_log_bucket": Limit(63, "S3 bucket name"),
        "logs_key_alias": Limit(256, "KMS alias"),
    }

    @classmethod
    def derive(cls, prefix: str, shared_account: str, region: str) -> FoundationNames:
        return cls(
            access_log_bucket=f"{prefix}-access-logs-{shared_account}-{region}",
            logs_key_alias=f"alias/{prefix}-logs",
        )


@dataclass(frozen=True)
class PipelineNames:
    """Names of one pipeline's resources across the three accounts."""

    base: str
    # shared services account
    artifact_bucket: str
    artifact_key_alias: str
    repository: str
    pipeline: str
    pipeline_role: str
    trigger_role: str
    trigger_rule: str
    approval_rule_template: str
    notification_topic: str
    notification_rule: str
    # training account
    training_cross_account_role: str
    state_machine_role: str
    training_sagemaker_role: str
    state_machine: str
    state_machine_log_group: str
    training_job_prefix: str
    # production account
    production_cross_account_role: str
    deployer_role: str
    production_sagemaker_role: str
    deployer_function: str
    deployer_log_group: str
    deployer_queue: str
    endpoint: str
    alarm_5xx: str
    alarm_latency: str

    LIMITS: ClassVar[dict[str, Limit]] = {
        "artifact_bucket": Limit(63, "S3 bucket name"),
        "artifact_key_alias": Limit(256, "KMS alias"),
        "repository": Limit(100, "CodeCommit repository name"),
        "pipeline": Limit(100, "CodePipeline name"),
        "pipeline_role": Limit(64, "IAM role name"),
        "trigger_role": Limit(64, "IAM role name"),
        "trigger_rule": Limit(64, "EventBridge rule name"),
        "approval_rule_template": Limit(100, "CodeCommit approval rule template name"),
        "notification_topic": Limit(256, "SNS topic name"),
        "notification_rule": Limit(64, "EventBridge rule name"),
        "training_cross_account_role": Limit(64, "IAM role name"),
        "state_machine_role": Limit(64, "IAM role name"),
        "training_sagemaker_role": Limit(64, "IAM role name"),
        "state_machine": Limit(80, "Step Functions state machine name"),
        "state_machine_log_group": Limit(512, "CloudWatch log group name"),
        "training_job_prefix": Limit(63 - TRAINING_JOB_SUFFIX_LENGTH, "SageMaker training job name prefix"),
        "production_cross_account_role": Limit(64, "IAM role name"),
        "deployer_role": Limit(64, "IAM role name"),
        "production_sagemaker_role": Limit(64, "IAM role name"),
        "deployer_function": Limit(64, "Lambda function name"),
        "deployer_log_group": Limit(512, "CloudWatch log group name"),
        "deployer_queue": Limit(80, "SQS queue name"),
        "endpoint": Limit(63, "SageMaker endpoint name"),
        "alarm_5xx": Limit(255, "CloudWatch alarm name"),
        "alarm_latency": Limit(255, "CloudWatch alarm name"),
    }

    @property
    def artifact_prefix(self) -> str:
        """CodePipeline keeps a run's artifacts under the first 20 characters of the pipeline's name."""
        return self.pipeline[:20]

    @property
    def data_capture_prefix(self) -> str:
        """Where the endpoint's captured requests and responses go, in the pipeline's own bucket."""
        return f"datacapture/{self.endpoint}"

    @classmethod
    def derive(cls, prefix: str, pipeline: str, shared_account: str, region: str) -> PipelineNames:
        base = f"{prefix}-{pipeline}"
        return cls(
            base=base,
            artifact_bucket=f"{base}-artifacts-{shared_account}-{region}",
            artifact_key_alias=f"alias/{base}-artifacts",
            repository=f"{base}-training-requests",
            pipeline=f"{base}-pipeline",
            pipeline_role=f"{base}-pipeline",
            trigger_role=f"{base}-pipeline-trigger",
            trigger_rule=f"{base}-on-push",
            approval_rule_template=f"{base}-require-review",
            notification_topic=f"{base}-notifications",
            notification_rule=f"{base}-notify",
            training_cross_account_role=f"{base}-training-xacct",
            state_machine_role=f"{base}-training-sfn",
            training_sagemaker_role=f"{base}-training-sagemaker",
            state_machine=f"{base}-training",
            state_machine_log_group=f"/aws/vendedlogs/states/{base}-training",
            training_job_prefix=base,
            production_cross_account_role=f"{base}-production-xacct",
            deployer_role=f"{base}-deployer",
            production_sagemaker_role=f"{base}-production-sagemaker",
            deployer_function=f"{base}-deployer",
            deployer_log_group=f"/aws/lambda/{base}-deployer",
            deployer_queue=f"{base}-deployer-dlq",
            endpoint=f"{base}-endpoint",
            alarm_5xx=f"{base}-endpoint-5xx-errors",
            alarm_latency=f"{base}-endpoint-model-latency",
        )


def named_fields(names: FoundationNames | PipelineNames) -> dict[str, str]:
    """Field name -> derived name, for every name that has a service limit."""
    return {f.name: getattr(names, f.name) for f in fields(names) if f.name in names.LIMITS}
