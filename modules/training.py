"""The training account: a role the pipeline assumes, and a state machine that trains with SageMaker."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import Fn
from cdktf_cdktf_provider_aws.data_aws_sagemaker_prebuilt_ecr_image import DataAwsSagemakerPrebuiltEcrImage
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.sfn_state_machine import SfnStateMachine
from constructs import Construct

from mlpipe.core.config import TrainingSettings
from mlpipe.core.paths import ASL_DIR
from mlpipe.core.templates import render_json
from modules.common import (
    AccountContext,
    AccountLogsKey,
    encrypted_log_group,
    inline_policy,
    policy_document,
    service_role,
)


def cross_account_role(
    scope: Construct, construct_id: str, ctx: AccountContext, name: str, pipeline_role_arn: str
) -> IamRole:
    """A role only the pipeline's role (by ARN, not the account root) may assume."""
    return IamRole(
        scope,
        construct_id,
        provider=ctx.provider,
        name=name,
        assume_role_policy=policy_document("cross_account_trust.json.j2", pipeline_role_arn=pipeline_role_arn),
    )


class TrainingRoles(Construct):
    """Roles first: the shared key and bucket policies name them before the workload exists."""

    def __init__(self, scope: Construct, construct_id: str, ctx: AccountContext, pipeline_role_arn: str) -> None:
        super().__init__(scope, construct_id)
        self.cross_account = cross_account_role(
            self, "cross_account", ctx, f"{ctx.name_prefix}-training-xacct", pipeline_role_arn
        )
        self.state_machine = service_role(
            self, "state_machine", ctx, f"{ctx.name_prefix}-training-sfn", "states.amazonaws.com", "StepFunctions"
        )
        self.sagemaker = service_role(
            self, "sagemaker", ctx, f"{ctx.name_prefix}-training-sagemaker", "sagemaker.amazonaws.com", "SageMaker"
        )


@dataclass(frozen=True)
class TrainingWorkloadProps:
    """The shared resources training reads and writes, and the job defaults."""

    ctx: AccountContext
    roles: TrainingRoles
    bucket: S3Bucket
    key: KmsKey
    artifact_prefix: str
    settings: TrainingSettings


class TrainingWorkload(Construct):
    """The state machine, its logs and the least-privilege policies of the three training roles."""

    def __init__(self, scope: Construct, construct_id: str, props: TrainingWorkloadProps) -> None:
        super().__init__(scope, construct_id)
        ctx, roles, settings = props.ctx, props.roles, props.settings
        self.logs_key = AccountLogsKey(self, "logs_key", ctx, key_user_arns=[roles.state_machine.arn])
        self.image = DataAwsSagemakerPrebuiltEcrImage(
            self,
            "xgboost_image",
            provider=ctx.provider,
            repository_name="sagemaker-xgboost",
            image_tag=settings.xgboost_version,
        )
        self.state_machine_name = f"{ctx.name_prefix}-training"
        log_group = encrypted_log_group(
            self, "state_machine_logs", ctx, f"/aws/vendedlogs/states/{self.state_machine_name}", self.logs_key.key
        )
        definition = render_json(
            "training.asl.json.j2",
            ASL_DIR,
            name_prefix=ctx.name_prefix,
            bucket_name=props.bucket.bucket,
            kms_key_arn=props.key.arn,
            sagemaker_role_arn=roles.sagemaker.arn,
            image_uri=self.image.registry_path,
            default_instance_type=settings.instance_type,
            default_instance_count=settings.instance_count,
            volume_size_gb=settings.volume_size_gb,
            max_runtime_seconds=settings.max_runtime_seconds,
            default_hyperparameters=settings.hyperparameters,
            default_train_prefix="data/train/",
            default_validation_prefix="data/validation/",
            model_output_prefix="models/",
        )
        self.state_machine = SfnStateMachine(
            self,
            "state_machine",
            provider=ctx.provider,
            name=self.state_machine_name,
            role_arn=roles.state_machine.arn,
            definition=Fn.jsonencode(definition),
            logging_configuration={
                "log_destination": f"{log_group.arn}:*",
                "include_execution_data": True,
                "level": "ALL",
            },
            tracing_configuration={"enabled": True},
        )
        inline_policy(
            self, "state_machine_permissions", ctx, roles.state_machine, "state_machine_permissions.json.j2",
            sagemaker_role_arn=roles.sagemaker.arn,
        )  # fmt: skip
        inline_policy(
            self, "sagemaker_permissions", ctx, roles.sagemaker, "sagemaker_training_permissions.json.j2",
            bucket_arn=props.bucket.arn, key_arn=props.key.arn,
        )  # fmt: skip
        inline_policy(
            self, "cross_account_permissions", ctx, roles.cross_account, "training_cross_account_permissions.json.j2",
            state_machine_arn=self.state_machine.arn, state_machine_name=self.state_machine_name,
            bucket_arn=props.bucket.arn, key_arn=props.key.arn, artifact_prefix=props.artifact_prefix,
        )  # fmt: skip
