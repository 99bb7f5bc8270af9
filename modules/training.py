"""The training account, per pipeline: a role the pipeline assumes, and a state machine that trains with SageMaker."""

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
from mlpipe.core.names import PipelineNames
from mlpipe.core.paths import ASL_DIR
from mlpipe.core.templates import render_json
from modules.common import (
    AccountContext,
    AccountScope,
    cross_account_role,
    encrypted_log_group,
    inline_policy,
    service_role,
)


@dataclass(frozen=True)
class TrainingRoles:
    """Roles first: the shared key and bucket policies name them before the workload exists."""

    cross_account: IamRole
    state_machine: IamRole
    sagemaker: IamRole


@dataclass(frozen=True)
class TrainingWorkloadProps:
    """The shared resources training reads and writes, and the job defaults."""

    roles: TrainingRoles
    bucket: S3Bucket
    key: KmsKey
    logs_key_arn: str
    settings: TrainingSettings
    hyperparameters: str  # a reference to the `training_hyperparameters` local: data, never code


class TrainingAccount(AccountScope):
    """The training account's part of one pipeline (resources named ``training_<part>``)."""

    def __init__(self, scope: Construct, construct_id: str, ctx: AccountContext, names: PipelineNames) -> None:
        super().__init__(scope, construct_id)
        self.ctx = ctx
        self.names = names

    def add_roles(self, pipeline_role_arn: str) -> TrainingRoles:
        ctx, names = self.ctx, self.names
        return TrainingRoles(
            cross_account=cross_account_role(
                self.part("cross_account"), "iam_role", ctx, names.training_cross_account_role, pipeline_role_arn
            ),
            state_machine=service_role(
                self.part("state_machine"), "iam_role", ctx, names.state_machine_role,
                "states.amazonaws.com", "StepFunctions",
            ),
            sagemaker=service_role(
                self.part("sagemaker"), "iam_role", ctx, names.training_sagemaker_role,
                "sagemaker.amazonaws.com", "SageMaker",
            ),
        )  # fmt: skip

    def add_workload(self, props: TrainingWorkloadProps) -> SfnStateMachine:
        """The state machine, its logs and the least-privilege policies of the three training roles."""
        ctx, names, roles, settings = self.ctx, self.names, props.roles, props.settings
        image = DataAwsSagemakerPrebuiltEcrImage(
            self.part("xgboost"),
            "sagemaker_prebuilt_ecr_image",
            provider=ctx.provider,
            repository_name="sagemaker-xgboost",
            image_tag=settings.xgboost_version,
        )
        self.image = image
        machine_scope = self.part("state_machine")
        log_group = encrypted_log_group(
            machine_scope, "cloudwatch_log_group", ctx, names.state_machine_log_group, props.logs_key_arn
        )
        definition = render_json(
            "training.asl.json.j2",
            ASL_DIR,
            name_prefix=names.training_job_prefix,
            bucket_name=props.bucket.bucket,
            kms_key_arn=props.key.arn,
            sagemaker_role_arn=roles.sagemaker.arn,
            image_uri=image.registry_path,
            default_instance_type=settings.instance_type,
            default_instance_count=settings.instance_count,
            volume_size_gb=settings.volume_size_gb,
            max_runtime_seconds=settings.max_runtime_seconds,
            default_hyperparameters=props.hyperparameters,
            default_train_prefix="data/train/",
            default_validation_prefix="data/validation/",
            model_output_prefix="models/",
        )
        state_machine = SfnStateMachine(
            machine_scope,
            "sfn_state_machine",
            provider=ctx.provider,
            name=names.state_machine,
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
            machine_scope, "iam_role_policy", ctx, roles.state_machine, names.state_machine_role,
            "state_machine_permissions.json.j2", sagemaker_role_arn=roles.sagemaker.arn,
        )  # fmt: skip
        inline_policy(
            self.part("sagemaker"), "iam_role_policy", ctx, roles.sagemaker, names.training_sagemaker_role,
            "sagemaker_training_permissions.json.j2", bucket_arn=props.bucket.arn, key_arn=props.key.arn,
        )  # fmt: skip
        inline_policy(
            self.part("cross_account"), "iam_role_policy", ctx, roles.cross_account, names.training_cross_account_role,
            "training_cross_account_permissions.json.j2",
            state_machine_arn=state_machine.arn, state_machine_name=names.state_machine,
            bucket_arn=props.bucket.arn, key_arn=props.key.arn, artifact_prefix=names.artifact_prefix,
        )  # fmt: skip
        return state_machine
