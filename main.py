"""The CDK for Terraform app: a foundation stack plus one stack per pipeline, three aliased providers each.

Run through `mlpipe synth`, which starts ``python main.py`` (the app command of cdktf.json) with
MLPIPE_CONFIG, CDKTF_OUTDIR and SYNTH_HCL_OUTPUT set, then lays the HCL out and formats it. Next
to each stack's ``cdk.tf`` this writes ``mlpipe-stack.json``: what the stack's record collected
(policy documents, checkov skips, configuration literals) and an index of its resources.
"""

from __future__ import annotations

import modules  # noqa: F401  first: it makes the AWS bindings import lean (modules/bindings.py)

# isort: split
import json
import os
from pathlib import Path
from typing import Any

from cdktf import (
    App,
    DataTerraformRemoteStateLocal,
    DataTerraformRemoteStateS3,
    DefaultTokenResolver,
    Fn,
    LocalBackend,
    S3Backend,
    StringConcat,
    TerraformOutput,
    TerraformVariable,
    Token,
    Tokenization,
)
from cdktf_cdktf_provider_aws.provider import (
    AwsProvider,
    AwsProviderAssumeRole,
    AwsProviderDefaultTags,
    AwsProviderEndpoints,
)
from constructs import Construct

from mlpipe.core.assets import build_lambda_zip, write_sample_data
from mlpipe.core.config import ProjectConfig, load_config
from mlpipe.core.names import FOUNDATION_STACK
from mlpipe.core.paths import STACK_MANIFEST, SYNTH_STACKS_ENV
from modules.common import AccountContext
from modules.foundation import AccessLogBucket, LogsKey
from modules.production import DeployerProps, ProductionAccount
from modules.shared_services import ArtifactStoreProps, DeliveryPipelineProps, SharedServicesAccount
from modules.stack import ReadableStack, literal
from modules.training import TrainingAccount, TrainingWorkloadProps

EMULATOR_SERVICES = (
    "cloudwatch", "codecommit", "codepipeline", "events", "iam", "kms", "lambda", "logs",
    "s3", "sagemaker", "sns", "sqs", "sfn", "sts",
)  # fmt: skip
# Attempts per AWS call on the emulator (the provider's `max_retries` is the SDK's attempt count).
# The local emulator loses an answer now and then under load (connection closed after the status
# line: docs/emulator-notes.md); five attempts make a read survive that, while an action moto does
# not implement (HTTP 500) still fails within seconds instead of the default 25 attempts' minutes.
EMULATOR_SDK_ATTEMPTS = 5
# The foundation's outputs that pipeline stacks read through terraform_remote_state.
FOUNDATION_OUTPUTS = ("access_log_bucket", "training_logs_key_arn", "production_logs_key_arn")


def _python_name(service: str) -> str:
    """jsii renames struct fields that are Python keywords (`lambda` -> `lambda_`)."""
    return f"{service}_" if service == "lambda" else service


class PlatformStack(ReadableStack):
    """What every stack of the platform has: a backend, the variables, and one provider per account."""

    def __init__(self, scope: Construct, stack_name: str, config: ProjectConfig, name_prefix: str) -> None:
        super().__init__(scope, stack_name)
        self.config = config
        self.stack_name = stack_name
        self._backend()
        emulator_url = None
        if config.uses_emulator:
            emulator_url = TerraformVariable(
                self,
                "emulator_url",
                type="string",
                description="URL of the local AWS emulator (set by mlpipe; local target only).",
            ).string_value
        user_tags = literal(self, "tags", config.tags) if config.tags else None
        self.ctx = {
            key: AccountContext(
                provider=self._provider(key, emulator_url, user_tags.as_string_map if user_tags else None),
                account_id=account.account_id,
                region=config.region,
                partition=config.partition,
                name_prefix=name_prefix,
            )
            for key, account in config.accounts.items()
        }

    def _backend(self) -> None:
        state = self.config.state
        if state.backend == "s3":
            backend = S3Backend(
                self,
                bucket=state.bucket,
                key=state.key_for(self.stack_name),
                region=self.config.region,
                encrypt=True,
                kms_key_id=state.kms_key_id,
                assume_role={"role_arn": self.config.shared.deploy_role_arn},
            )
            # Native S3 locking (Terraform >= 1.10); cdktf 0.21's S3Backend has no such argument yet.
            backend.add_override("use_lockfile", True)
        else:
            # The state file's path is machine-specific, so mlpipe passes it at init
            # (`-backend-config=path=...`): the HCL stays the same on every machine.
            LocalBackend(self).add_override("path", None)

    def _provider(self, key: str, emulator_url: str | None, user_tags: Any) -> AwsProvider:
        account = self.config.accounts[key]
        own_tags = {"ManagedBy": "mlpipe", "Account": key, "Stack": self.stack_name}
        tags = Token.as_string_map(Fn.merge([user_tags, own_tags])) if user_tags is not None else own_tags
        common: dict[str, Any] = {
            "alias": key,
            "region": self.config.region,
            "assume_role": [AwsProviderAssumeRole(role_arn=account.deploy_role_arn, session_name=f"mlpipe-{key}")],
            "allowed_account_ids": [account.account_id],
            "default_tags": [AwsProviderDefaultTags(tags=tags)],
        }
        if emulator_url is None:
            return AwsProvider(self, f"aws_{key}", **common)
        return AwsProvider(
            self,
            f"aws_{key}",
            **common,
            access_key="mlpipe-local",
            secret_key="mlpipe-local",
            skip_credentials_validation=True,
            # Not skipped: the provider asks STS who it is, so allowed_account_ids proves each alias
            # really acts in its own (simulated) account.
            skip_requesting_account_id=False,
            skip_metadata_api_check="true",
            s3_use_path_style=True,
            max_retries=EMULATOR_SDK_ATTEMPTS,
            endpoints=[AwsProviderEndpoints(**{_python_name(s): emulator_url for s in EMULATOR_SERVICES})],
        )


class FoundationStack(PlatformStack):
    """What all pipelines share: the access-log bucket and a logs key per workload account."""

    def __init__(self, scope: Construct, config: ProjectConfig) -> None:
        super().__init__(scope, FOUNDATION_STACK, config, config.name_prefix)
        prefix, names = config.name_prefix, config.foundation
        shared = Construct(self, "shared")
        logs = AccessLogBucket(
            shared,
            "access_logs",
            self.ctx["shared"],
            names.access_log_bucket,
            source_bucket_pattern=f"{prefix}-*-artifacts-{config.shared.account_id}-{config.region}",
        )
        training_key = LogsKey(
            Construct(self, "training"), "logs", self.ctx["training"], prefix, names.logs_key_alias,
            [f"/aws/vendedlogs/states/{prefix}-*"],
        )  # fmt: skip
        production_key = LogsKey(
            Construct(self, "production"), "logs", self.ctx["production"], prefix, names.logs_key_alias,
            [f"/aws/lambda/{prefix}-*"],
        )  # fmt: skip
        outputs = {
            "access_log_bucket": logs.bucket.bucket,
            "training_logs_key_arn": training_key.key.arn,
            "production_logs_key_arn": production_key.key.arn,
        }
        for name, value in outputs.items():
            TerraformOutput(self, name, value=value)


class PipelineStack(PlatformStack):
    """One model pipeline across the three accounts, reading the foundation's outputs."""

    def __init__(self, scope: Construct, config: ProjectConfig, pipeline_name: str, build_dir: Path) -> None:
        spec = config.pipeline(pipeline_name)
        names = spec.names
        super().__init__(scope, spec.name, config, names.base)
        foundation = self._foundation_outputs()
        branch = literal(self, "branch", spec.branch).as_string
        emails = (
            literal(self, "notification_emails", list(spec.notification_emails)) if spec.notification_emails else None
        )
        hyperparameters = literal(self, "training_hyperparameters", spec.training.hyperparameters).as_string

        shared = SharedServicesAccount(self, "shared", self.ctx["shared"], names)
        training = TrainingAccount(self, "training", self.ctx["training"], names)
        production = ProductionAccount(self, "production", self.ctx["production"], names)

        pipeline_role = shared.add_pipeline_role()
        training_roles = training.add_roles(pipeline_role.arn)
        production_roles = production.add_roles(pipeline_role.arn)
        store = shared.add_artifact_store(
            ArtifactStoreProps(
                ctx=self.ctx["shared"],
                names=names,
                pipeline_role_arn=pipeline_role.arn,
                training_cross_account_role_arn=training_roles.cross_account.arn,
                training_sagemaker_role_arn=training_roles.sagemaker.arn,
                production_cross_account_role_arn=production_roles.cross_account.arn,
                production_sagemaker_role_arn=production_roles.sagemaker.arn,
                deployer_role_arn=production_roles.deployer.arn,
                access_log_bucket=foundation.get_string("access_log_bucket"),
                sample_data=write_sample_data(build_dir / spec.name / "sample_data"),
                smoke_test_key=spec.serving.smoke_test_data,
            )
        )
        state_machine = training.add_workload(
            TrainingWorkloadProps(
                roles=training_roles,
                bucket=store.bucket,
                key=store.key,
                logs_key_arn=foundation.get_string("training_logs_key_arn"),
                settings=spec.training,
                hyperparameters=hyperparameters,
            )
        )
        deployer = production.add_deployer(
            DeployerProps(
                roles=production_roles,
                bucket=store.bucket,
                key=store.key,
                logs_key_arn=foundation.get_string("production_logs_key_arn"),
                settings=spec.deploy,
                serving=spec.serving,
                package=build_lambda_zip(build_dir / spec.name / "deployer.zip"),
            )
        )
        delivery = shared.add_delivery_pipeline(
            DeliveryPipelineProps(
                ctx=self.ctx["shared"],
                names=names,
                pipeline_role=pipeline_role,
                branch=branch,
                notification_emails=[
                    Fn.element(emails.as_list, index) for index in range(len(spec.notification_emails))
                ]
                if emails
                else [],
                bucket=store.bucket,
                key=store.key,
                training_cross_account_role_arn=training_roles.cross_account.arn,
                state_machine_arn=state_machine.arn,
                production_cross_account_role_arn=production_roles.cross_account.arn,
                deployer_function_name=deployer.function_name,
            )
        )
        outputs = {
            "pipeline_name": delivery.pipeline.name,
            "repository_name": delivery.repository.repository_name,
            "repository_clone_url_http": delivery.repository.clone_url_http,
            "branch": branch,
            "bucket_name": store.bucket.bucket,
            "kms_key_arn": store.key.arn,
            "pipeline_role_arn": pipeline_role.arn,
            "training_cross_account_role_arn": training_roles.cross_account.arn,
            "training_sagemaker_role_arn": training_roles.sagemaker.arn,
            "state_machine_arn": state_machine.arn,
            "production_cross_account_role_arn": production_roles.cross_account.arn,
            "deployer_role_arn": production_roles.deployer.arn,
            "deployer_function_name": deployer.function_name,
            "endpoint_name": names.endpoint,
            "xgboost_image_uri": training.image.registry_path,
        }
        for name, value in outputs.items():
            TerraformOutput(self, name, value=value)

    def _foundation_outputs(self) -> DataTerraformRemoteStateLocal | DataTerraformRemoteStateS3:
        """The foundation's outputs, read from its state: values flow by reference, never copied."""
        state = self.config.state
        if state.backend == "s3":
            return DataTerraformRemoteStateS3(
                self,
                "foundation",
                bucket=state.bucket,
                key=state.key_for(FOUNDATION_STACK),
                region=self.config.region,
                assume_role={"role_arn": self.config.shared.deploy_role_arn},
            )
        path = TerraformVariable(
            self,
            "foundation_state_path",
            type="string",
            description="Path of the foundation stack's local state file (set by mlpipe; local backend only).",
        )
        return DataTerraformRemoteStateLocal(self, "foundation", path=path.string_value)


def build_app(config: ProjectConfig, outdir: Path, build_dir: Path, only: frozenset[str] | None = None) -> App:
    """Build (not synthesize) the app: the foundation, then one stack per pipeline, in file order.

    ``only`` builds a subset of the stacks: stacks share nothing in the construct tree (pipeline
    stacks read the foundation through remote state), so several processes can each synthesize a
    part of a large configuration and the bytes of every stack stay the same.
    """
    unknown = sorted((only or frozenset()) - set(config.stacks))
    if unknown:
        raise ValueError(f"{SYNTH_STACKS_ENV} names stacks the configuration does not have: {unknown}")
    app = App(outdir=str(outdir), hcl_output=True)
    if only is None or FOUNDATION_STACK in only:
        FoundationStack(app, config)
    for spec in config.pipelines:
        if only is None or spec.name in only:
            PipelineStack(app, config, spec.name, build_dir)
    return app


def stack_manifest(stack: ReadableStack) -> dict[str, Any]:
    """What synth reports next to the stack's HCL, collected from this stack's construct tree only.

    ``resources`` is the synthesized configuration of every resource and data source (references
    kept as ``${...}``), with each recorded policy document replaced by ``@document:<name>``: the
    access proof derives every ARN and attachment from it, so it cannot drift from the HCL.
    """

    def resolved(value: Any) -> Any:
        return Tokenization.resolve(value, scope=stack, preparing=False, resolver=DefaultTokenResolver(StringConcat()))

    skips: dict[str, list[dict[str, str]]] = {}
    for resource, check, reason in stack.record.skips:
        address = f"{resource.terraform_resource_type}.{resource.friendly_unique_id}"
        skips.setdefault(address, []).append({"check": check, "reason": reason})
    skips = {address: sorted(entries, key=lambda e: e["check"]) for address, entries in skips.items()}

    names = [name for name, _document, _expression in stack.record.policies]
    if len(set(names)) != len(names):
        raise ValueError(f"a policy document is recorded twice in stack {stack.node.id}: {sorted(names)}")
    # One call into the Node runtime for all documents of the stack (each call costs about a millisecond).
    documents, expressions = resolved(
        [[document for _n, document, _e in stack.record.policies], [e for _n, _d, e in stack.record.policies]]
    )
    policies = dict(zip(names, documents, strict=True))
    attached = {expression: f"@document:{name}" for name, expression in zip(names, expressions, strict=True)}

    config = stack.to_terraform()
    resources: dict[str, dict[str, Any]] = {}
    for mode, prefix in (("resource", ""), ("data", "data.")):
        for rtype, entries in config.get(mode, {}).items():
            for name, attributes in entries.items():
                resources[f"{prefix}{rtype}.{name}"] = {
                    key: attached.get(value, value) if isinstance(value, str) else value
                    for key, value in attributes.items()
                    if key != "//"
                }
    return {
        "stack": stack.node.id,
        "outputs": {name: item.get("value") for name, item in config.get("output", {}).items()},
        "skips": dict(sorted(skips.items())),
        "literals": stack.record.literals,
        "policies": policies,
        "resources": dict(sorted(resources.items())),
    }


def synthesize_app(config_path: Path, outdir: Path, only: frozenset[str] | None = None) -> None:
    """The child's work: build, synthesize, write each stack's manifest next to its HCL."""
    config = load_config(config_path)
    build_dir = outdir / "build"
    app = build_app(config, outdir, build_dir, only)
    stacks = [c for c in app.node.children if isinstance(c, ReadableStack)]
    manifests = {stack.node.id: stack_manifest(stack) for stack in stacks}
    app.synth()
    for name, manifest in manifests.items():
        path = outdir / "stacks" / name / STACK_MANIFEST
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    selected = os.environ.get(SYNTH_STACKS_ENV)
    synthesize_app(
        Path(os.environ.get("MLPIPE_CONFIG", "config/local.toml")),
        Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out")),
        frozenset(selected.split(",")) if selected else None,
    )
