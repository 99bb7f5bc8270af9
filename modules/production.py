"""The production account: a role the pipeline assumes, and the Lambda that deploys the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdktf import AssetType, Fn, TerraformAsset
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct

from mlpipe.core.config import DeploySettings
from modules.common import AccountContext, AccountLogsKey, encrypted_log_group, inline_policy, service_role, skip_check
from modules.training import cross_account_role

LAMBDA_RUNTIME = "python3.12"


class ProductionRoles(Construct):
    """Roles first: the shared key and bucket policies name them before the workload exists."""

    def __init__(self, scope: Construct, construct_id: str, ctx: AccountContext, pipeline_role_arn: str) -> None:
        super().__init__(scope, construct_id)
        self.cross_account = cross_account_role(
            self, "cross_account", ctx, f"{ctx.name_prefix}-production-xacct", pipeline_role_arn
        )
        self.deployer = service_role(
            self, "deployer", ctx, f"{ctx.name_prefix}-deployer", "lambda.amazonaws.com", "Lambda"
        )
        self.sagemaker = service_role(
            self, "sagemaker", ctx, f"{ctx.name_prefix}-production-sagemaker", "sagemaker.amazonaws.com", "SageMaker"
        )


@dataclass(frozen=True)
class DeployerProps:
    """The packaged deployer and what it may touch in the shared account."""

    ctx: AccountContext
    roles: ProductionRoles
    bucket: S3Bucket
    key: KmsKey
    artifact_prefix: str
    settings: DeploySettings
    package: Path


class Deployer(Construct):
    """The deployer Lambda, its dead-letter queue, its logs, and the production roles' policies."""

    def __init__(self, scope: Construct, construct_id: str, props: DeployerProps) -> None:
        super().__init__(scope, construct_id)
        ctx, roles = props.ctx, props.roles
        self.function_name = f"{ctx.name_prefix}-deployer"
        self.endpoint_name = f"{ctx.name_prefix}-endpoint"
        self.logs_key = AccountLogsKey(self, "logs_key", ctx, key_user_arns=[roles.deployer.arn])
        log_group = encrypted_log_group(self, "logs", ctx, f"/aws/lambda/{self.function_name}", self.logs_key.key)
        self.dead_letter_queue = SqsQueue(
            self,
            "dead_letter_queue",
            provider=ctx.provider,
            name=f"{self.function_name}-dlq",
            kms_master_key_id=self.logs_key.key.arn,
            message_retention_seconds=1209600,
        )
        package = TerraformAsset(self, "package", path=str(props.package), type=AssetType.FILE)
        self.function = LambdaFunction(
            self,
            "function",
            provider=ctx.provider,
            function_name=self.function_name,
            description="Deploys the approved model to a SageMaker endpoint and reports to CodePipeline.",
            role=roles.deployer.arn,
            runtime=LAMBDA_RUNTIME,
            handler="deployer.handler",
            filename=package.path,
            source_code_hash=Fn.filebase64sha256(package.path),
            timeout=60,
            memory_size=256,
            reserved_concurrent_executions=5,
            kms_key_arn=self.logs_key.key.arn,
            tracing_config={"mode": "Active"},
            dead_letter_config={"target_arn": self.dead_letter_queue.arn},
            logging_config={"log_format": "JSON", "log_group": log_group.name},
            environment={
                "variables": {
                    "NAME_PREFIX": ctx.name_prefix,
                    "SAGEMAKER_EXECUTION_ROLE_ARN": roles.sagemaker.arn,
                    "ENDPOINT_NAME": self.endpoint_name,
                    "ENDPOINT_INSTANCE_TYPE": props.settings.endpoint_instance_type,
                    "ENDPOINT_INSTANCE_COUNT": str(props.settings.endpoint_instance_count),
                    "KMS_KEY_ARN": props.key.arn,
                }
            },
            depends_on=[log_group],
        )
        skip_check(
            self.function,
            "CKV_AWS_117",
            "The deployer calls only AWS APIs (SageMaker, S3, KMS, CodePipeline); "
            "a VPC would add NAT or endpoints and no isolation benefit.",
        )
        skip_check(
            self.function,
            "CKV_AWS_272",
            "Code signing needs an AWS Signer profile outside this pipeline's scope; "
            "the package is built reproducibly from lambda_src/ and pinned by source_code_hash.",
        )
        inline_policy(
            self, "deployer_permissions", ctx, roles.deployer, "deployer_permissions.json.j2",
            sagemaker_role_arn=roles.sagemaker.arn, bucket_arn=props.bucket.arn, key_arn=props.key.arn,
            artifact_prefix=props.artifact_prefix, log_group_arn=log_group.arn,
            dead_letter_queue_arn=self.dead_letter_queue.arn, local_key_arn=self.logs_key.key.arn,
        )  # fmt: skip
        inline_policy(
            self, "sagemaker_permissions", ctx, roles.sagemaker, "production_sagemaker_permissions.json.j2",
            bucket_arn=props.bucket.arn, key_arn=props.key.arn,
        )  # fmt: skip
        inline_policy(
            self, "cross_account_permissions", ctx, roles.cross_account, "production_cross_account_permissions.json.j2",
            function_arn=self.function.arn, bucket_arn=props.bucket.arn, key_arn=props.key.arn,
            artifact_prefix=props.artifact_prefix,
        )  # fmt: skip
