"""The CDK for Terraform app: one stack, three aliased AWS providers, one construct tree per account.

Run through `mlpipe synth` (which sets SYNTH_HCL_OUTPUT before cdktf is imported, formats the HCL
and writes it atomically) or `cdktf synth` with MLPIPE_CONFIG set.
"""

from __future__ import annotations

import os
from pathlib import Path

from cdktf import App, LocalBackend, S3Backend, TerraformOutput, TerraformStack, TerraformVariable
from cdktf_cdktf_provider_aws.provider import (
    AwsProvider,
    AwsProviderAssumeRole,
    AwsProviderDefaultTags,
    AwsProviderEndpoints,
)
from constructs import Construct

from mlpipe.core.assets import build_lambda_zip, write_sample_data
from mlpipe.core.config import Account, PipelineConfig, load_config, partition_of
from mlpipe.core.names import STACK_NAME
from modules.common import AccountContext
from modules.production import Deployer, DeployerProps, ProductionRoles
from modules.shared_services import (
    ArtifactStore,
    ArtifactStoreProps,
    DeliveryPipeline,
    DeliveryPipelineProps,
    PipelineIdentity,
)
from modules.training import TrainingRoles, TrainingWorkload, TrainingWorkloadProps

EMULATOR_SERVICES = (
    "cloudwatch", "codecommit", "codepipeline", "events", "iam", "kms", "lambda", "logs",
    "s3", "sagemaker", "sns", "sqs", "sfn", "sts",
)  # fmt: skip


def _python_name(service: str) -> str:
    """jsii renames struct fields that are Python keywords (`lambda` -> `lambda_`)."""
    return f"{service}_" if service == "lambda" else service


class PipelineStack(TerraformStack):
    """The whole cross-account pipeline in one Terraform configuration."""

    def __init__(self, scope: Construct, construct_id: str, config: PipelineConfig, build_dir: Path) -> None:
        super().__init__(scope, construct_id)
        self._backend(config)
        emulator_url = None
        if config.uses_emulator:
            emulator_url = TerraformVariable(
                self,
                "emulator_url",
                type="string",
                description="URL of the local AWS emulator (set by mlpipe; local target only).",
            ).string_value
        providers = {key: self._provider(config, account, emulator_url) for key, account in config.accounts.items()}
        partition = partition_of(config.region)

        def ctx(key: str) -> AccountContext:
            return AccountContext(
                provider=providers[key],
                account_id=config.accounts[key].account_id,
                region=config.region,
                partition=partition,
                name_prefix=config.name_prefix,
            )

        shared, training, production = ctx("shared"), ctx("training"), ctx("production")
        pipeline_name = f"{config.name_prefix}-pipeline"
        # CodePipeline stores artifacts under the first 20 characters of the pipeline name.
        artifact_prefix = pipeline_name[:20]

        identity = PipelineIdentity(self, "shared_identity", shared)
        training_roles = TrainingRoles(self, "training_roles", training, identity.role.arn)
        production_roles = ProductionRoles(self, "production_roles", production, identity.role.arn)
        store = ArtifactStore(
            self,
            "shared_store",
            ArtifactStoreProps(
                ctx=shared,
                pipeline_role_arn=identity.role.arn,
                training_cross_account_role_arn=training_roles.cross_account.arn,
                training_sagemaker_role_arn=training_roles.sagemaker.arn,
                production_cross_account_role_arn=production_roles.cross_account.arn,
                production_sagemaker_role_arn=production_roles.sagemaker.arn,
                deployer_role_arn=production_roles.deployer.arn,
                artifact_prefix=artifact_prefix,
                sample_data=write_sample_data(build_dir / "sample_data"),
            ),
        )
        workload = TrainingWorkload(
            self,
            "training_workload",
            TrainingWorkloadProps(
                ctx=training,
                roles=training_roles,
                bucket=store.bucket,
                key=store.key,
                artifact_prefix=artifact_prefix,
                settings=config.training,
            ),
        )
        deployer = Deployer(
            self,
            "production_deployer",
            DeployerProps(
                ctx=production,
                roles=production_roles,
                bucket=store.bucket,
                key=store.key,
                artifact_prefix=artifact_prefix,
                settings=config.deploy,
                package=build_lambda_zip(build_dir / "deployer.zip"),
            ),
        )
        delivery = DeliveryPipeline(
            self,
            "shared_pipeline",
            DeliveryPipelineProps(
                ctx=shared,
                pipeline_role=identity.role,
                pipeline_name=pipeline_name,
                artifact_prefix=artifact_prefix,
                branch=config.branch,
                bucket=store.bucket,
                key=store.key,
                training_cross_account_role_arn=training_roles.cross_account.arn,
                state_machine_arn=workload.state_machine.arn,
                production_cross_account_role_arn=production_roles.cross_account.arn,
                deployer_function_name=deployer.function.function_name,
                approval_email=config.approval_email,
            ),
        )
        outputs = {
            "pipeline_name": delivery.pipeline.name,
            "repository_name": delivery.repository.repository_name,
            "repository_clone_url_http": delivery.repository.clone_url_http,
            "branch": config.branch,
            "bucket_name": store.bucket.bucket,
            "kms_key_arn": store.key.arn,
            "pipeline_role_arn": identity.role.arn,
            "training_cross_account_role_arn": training_roles.cross_account.arn,
            "training_sagemaker_role_arn": training_roles.sagemaker.arn,
            "state_machine_arn": workload.state_machine.arn,
            "production_cross_account_role_arn": production_roles.cross_account.arn,
            "deployer_role_arn": production_roles.deployer.arn,
            "deployer_function_name": deployer.function.function_name,
            "endpoint_name": deployer.endpoint_name,
            "xgboost_image_uri": workload.image.registry_path,
        }
        for name, value in outputs.items():
            TerraformOutput(self, name, value=value)

    def _backend(self, config: PipelineConfig) -> None:
        if config.state.backend == "s3":
            backend = S3Backend(
                self,
                bucket=config.state.bucket,
                key=config.state.key,
                region=config.region,
                encrypt=True,
                kms_key_id=config.state.kms_key_id,
                assume_role={"role_arn": config.shared.deploy_role_arn},
            )
            # Native S3 locking (Terraform >= 1.10); cdktf 0.21's S3Backend has no such argument yet.
            backend.add_override("use_lockfile", True)
        else:
            # Relative, so the output is the same on every machine; outside cdktf.out so re-synth keeps it.
            LocalBackend(self, path=f"../../../.mlpipe/state/{config.name_prefix}.tfstate")

    def _provider(self, config: PipelineConfig, account: Account, emulator_url: str | None) -> AwsProvider:
        tags = {"ManagedBy": "mlpipe", "Account": account.key, **config.tags}
        common = {
            "alias": account.key,
            "region": config.region,
            "assume_role": [
                AwsProviderAssumeRole(role_arn=account.deploy_role_arn, session_name=f"mlpipe-{account.key}")
            ],
            "allowed_account_ids": [account.account_id],
            "default_tags": [AwsProviderDefaultTags(tags=tags)],
        }
        if emulator_url is None:
            return AwsProvider(self, f"aws_{account.key}", **common)
        return AwsProvider(
            self,
            f"aws_{account.key}",
            **common,
            access_key="mlpipe-local",
            secret_key="mlpipe-local",
            skip_credentials_validation=True,
            # Not skipped: the provider asks STS who it is, so allowed_account_ids proves each alias
            # really acts in its own (simulated) account.
            skip_requesting_account_id=False,
            skip_metadata_api_check="true",
            s3_use_path_style=True,
            max_retries=2,
            endpoints=[AwsProviderEndpoints(**{_python_name(s): emulator_url for s in EMULATOR_SERVICES})],
        )


def build_app(config: PipelineConfig, outdir: Path, build_dir: Path) -> App:
    """Build (not synthesize) the app; `mlpipe.synth.runner` and the tests call this."""
    app = App(outdir=str(outdir), hcl_output=True)
    PipelineStack(app, STACK_NAME, config, build_dir)
    return app


if __name__ == "__main__":
    cfg = load_config(os.environ.get("MLPIPE_CONFIG", "config/local.toml"))
    out = Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out"))
    build_app(cfg, out, Path(os.environ.get("MLPIPE_BUILD_DIR", ".mlpipe/build"))).synth()
