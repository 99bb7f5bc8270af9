"""The production account, per pipeline: a role the pipeline assumes, and the Lambda that deploys the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdktf import AssetType, Fn, TerraformAsset
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct

from mlpipe.core.config import DeploySettings, ServingSettings
from mlpipe.core.names import PipelineNames
from modules.common import (
    AccountContext,
    AccountScope,
    cross_account_role,
    encrypted_log_group,
    inline_policy,
    managed_key,
    service_role,
)
from modules.stack import skip_check

LAMBDA_RUNTIME = "python3.12"
# A smoke test may take two InvokeEndpoint attempts of up to 35 s before the result is reported.
LAMBDA_TIMEOUT_SECONDS = 120
ROLLOUT_STRATEGY = {"canary": "CANARY", "linear": "LINEAR", "all_at_once": "ALL_AT_ONCE"}


@dataclass(frozen=True)
class ProductionRoles:
    """Roles first: the shared key and bucket policies name them before the workload exists."""

    cross_account: IamRole
    deployer: IamRole
    sagemaker: IamRole


@dataclass(frozen=True)
class DeployerProps:
    """The packaged deployer and what it may touch in the shared account."""

    roles: ProductionRoles
    bucket: S3Bucket
    key: KmsKey
    logs_key_arn: str
    settings: DeploySettings
    serving: ServingSettings
    package: Path


class ProductionAccount(AccountScope):
    """The production account's part of one pipeline (resources named ``production_<part>``)."""

    def __init__(self, scope: Construct, construct_id: str, ctx: AccountContext, names: PipelineNames) -> None:
        super().__init__(scope, construct_id)
        self.ctx = ctx
        self.names = names

    def add_roles(self, pipeline_role_arn: str) -> ProductionRoles:
        ctx, names = self.ctx, self.names
        return ProductionRoles(
            cross_account=cross_account_role(
                self.part("cross_account"), "iam_role", ctx, names.production_cross_account_role, pipeline_role_arn
            ),
            deployer=service_role(
                self.part("deployer"), "iam_role", ctx, names.deployer_role, "lambda.amazonaws.com", "Lambda"
            ),
            sagemaker=service_role(
                self.part("sagemaker"), "iam_role", ctx, names.production_sagemaker_role,
                "sagemaker.amazonaws.com", "SageMaker",
            ),
        )  # fmt: skip

    def add_deployer(self, props: DeployerProps) -> LambdaFunction:
        """The deployer Lambda, its key, dead-letter queue and logs, and the production roles' policies."""
        ctx, names, roles = self.ctx, self.names, props.roles
        scope = self.part("deployer")
        # The function's environment and its dead-letter queue are encrypted with a key only the
        # deployer role may use (the foundation's logs key serves CloudWatch Logs only).
        key = managed_key(
            scope,
            ctx,
            f"alias/{names.deployer_function}",
            f"{names.base}: deployer environment and dead-letter queue",
            "key_policy.json.j2",
            key_user_arns=[roles.deployer.arn],
            grant_user_arns=[],
            event_rule_arns=[],
        )
        log_group = encrypted_log_group(
            scope, "cloudwatch_log_group", ctx, names.deployer_log_group, props.logs_key_arn
        )
        queue = SqsQueue(
            scope,
            "sqs_queue",
            provider=ctx.provider,
            name=names.deployer_queue,
            kms_master_key_id=key.arn,
            message_retention_seconds=1209600,
        )
        alarms = self._rollback_alarms(props.serving)
        serving = props.serving
        bucket = props.bucket.bucket
        environment = {
            "NAME_PREFIX": names.base,
            "SAGEMAKER_EXECUTION_ROLE_ARN": roles.sagemaker.arn,
            "ENDPOINT_NAME": names.endpoint,
            "ENDPOINT_INSTANCE_TYPE": props.settings.endpoint_instance_type,
            "ENDPOINT_INSTANCE_COUNT": str(props.settings.endpoint_instance_count),
            "KMS_KEY_ARN": props.key.arn,
            "SMOKE_TEST_S3_URI": f"s3://{bucket}/{serving.smoke_test_data}",
            "SMOKE_TEST_ROWS": str(serving.smoke_test_rows),
            "SMOKE_TEST_EXPECT": serving.smoke_test_expect,
            "DEPLOYMENT_STRATEGY": ROLLOUT_STRATEGY[serving.rollout],
            "CANARY_PERCENT": str(serving.canary_percent),
            "LINEAR_STEP_PERCENT": str(serving.linear_step_percent),
            "DEPLOYMENT_WAIT_SECONDS": str(serving.bake_seconds),
            "DEPLOYMENT_TERMINATION_WAIT_SECONDS": str(serving.bake_seconds),
            "ROLLBACK_ALARM_NAMES": f"{names.alarm_5xx},{names.alarm_latency}",
            "AUTOSCALING_ENABLED": "true" if serving.autoscaling else "false",
            "AUTOSCALING_MIN": str(serving.autoscaling_min),
            "AUTOSCALING_MAX": str(serving.autoscaling_max),
            "AUTOSCALING_TARGET_INVOCATIONS": str(serving.target_invocations_per_instance),
            "DATA_CAPTURE_PERCENT": str(serving.data_capture_percent),
            "DATA_CAPTURE_S3_URI": f"s3://{bucket}/{names.data_capture_prefix}",
        }
        package = TerraformAsset(scope, "package", path=str(props.package), type=AssetType.FILE)
        function = LambdaFunction(
            scope,
            "lambda_function",
            provider=ctx.provider,
            function_name=names.deployer_function,
            description="Deploys the approved model to a SageMaker endpoint and reports to CodePipeline.",
            role=roles.deployer.arn,
            runtime=LAMBDA_RUNTIME,
            handler="deployer.handler",
            filename=package.path,
            source_code_hash=Fn.filebase64sha256(package.path),
            timeout=LAMBDA_TIMEOUT_SECONDS,
            memory_size=256,
            reserved_concurrent_executions=5,
            kms_key_arn=key.arn,
            tracing_config={"mode": "Active"},
            dead_letter_config={"target_arn": queue.arn},
            logging_config={"log_format": "JSON", "log_group": log_group.name},
            environment={"variables": environment},
            depends_on=[log_group],
        )
        skip_check(
            function,
            "CKV_AWS_117",
            "The deployer calls only AWS APIs (SageMaker, S3, KMS, CodePipeline); "
            "a VPC would add NAT or endpoints and no isolation benefit.",
        )
        skip_check(
            function,
            "CKV_AWS_272",
            "Code signing needs an AWS Signer profile outside this pipeline's scope; "
            "the package is built reproducibly from lambda_src/ and pinned by source_code_hash.",
        )
        inline_policy(
            scope, "iam_role_policy", ctx, roles.deployer, names.deployer_role, "deployer_permissions.json.j2",
            sagemaker_role_arn=roles.sagemaker.arn, bucket_arn=props.bucket.arn, key_arn=props.key.arn,
            artifact_prefix=names.artifact_prefix, log_group_arn=log_group.arn,
            dead_letter_queue_arn=queue.arn, local_key_arn=key.arn, endpoint_name=names.endpoint,
            smoke_test_key=serving.smoke_test_data, rollback_alarm_arns=[alarm.arn for alarm in alarms],
        )  # fmt: skip
        inline_policy(
            self.part("sagemaker"), "iam_role_policy", ctx, roles.sagemaker, names.production_sagemaker_role,
            "production_sagemaker_permissions.json.j2", bucket_arn=props.bucket.arn, key_arn=props.key.arn,
            data_capture_prefix=names.data_capture_prefix,
        )  # fmt: skip
        inline_policy(
            self.part("cross_account"), "iam_role_policy", ctx, roles.cross_account,
            names.production_cross_account_role, "production_cross_account_permissions.json.j2",
            function_arn=function.arn, bucket_arn=props.bucket.arn, key_arn=props.key.arn,
            artifact_prefix=names.artifact_prefix,
        )  # fmt: skip
        return function

    def _rollback_alarms(self, serving: ServingSettings) -> list[CloudwatchMetricAlarm]:
        """The alarms a blue/green update watches: a breach rolls the endpoint back to the old fleet."""
        ctx, names = self.ctx, self.names
        scope = self.part("endpoint")
        dimensions = {"EndpointName": names.endpoint, "VariantName": "AllTraffic"}
        common: dict[str, Any] = {
            "provider": ctx.provider,
            "namespace": "AWS/SageMaker",
            "dimensions": dimensions,
            "period": 60,
            "evaluation_periods": 1,
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "treat_missing_data": "notBreaching",
        }
        errors = CloudwatchMetricAlarm(
            scope,
            "errors",
            alarm_name=names.alarm_5xx,
            alarm_description="Server errors of the endpoint: rolls a blue/green update back.",
            metric_name="Invocation5XXErrors",
            statistic="Sum",
            threshold=serving.alarm_5xx_errors,
            **common,
        )
        latency = CloudwatchMetricAlarm(
            scope,
            "latency",
            alarm_name=names.alarm_latency,
            alarm_description="Model latency of the endpoint: rolls a blue/green update back.",
            metric_name="ModelLatency",
            statistic="Average",
            threshold=serving.alarm_latency_ms * 1000,  # ModelLatency is reported in microseconds
            **common,
        )
        return [errors, latency]
