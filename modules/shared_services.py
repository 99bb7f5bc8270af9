"""The shared services account: the data key, the bucket, the repository and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdktf import AssetType, Fn, TerraformAsset
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.codecommit_approval_rule_template import CodecommitApprovalRuleTemplate
from cdktf_cdktf_provider_aws.codecommit_approval_rule_template_association import (
    CodecommitApprovalRuleTemplateAssociation,
)
from cdktf_cdktf_provider_aws.codecommit_repository import CodecommitRepository
from cdktf_cdktf_provider_aws.codepipeline import (
    Codepipeline,
    CodepipelineArtifactStore,
    CodepipelineArtifactStoreEncryptionKey,
    CodepipelineStage,
    CodepipelineStageAction,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA
from cdktf_cdktf_provider_aws.s3_object import S3Object
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from mlpipe.core.names import TRAINING_REQUEST_FILE
from modules.common import AccountContext, inline_policy, policy_document, service_role, skip_check

SseDefault = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA
REPLICATION_SKIP = (
    "Single-region pipeline: cross-region replication would copy KMS-encrypted training data and models "
    "to a region this design does not use."
)


class PipelineIdentity(Construct):
    """The pipeline's service role, created first because every other account trusts it by name."""

    def __init__(self, scope: Construct, construct_id: str, ctx: AccountContext) -> None:
        super().__init__(scope, construct_id)
        self.role = service_role(
            self, "role", ctx, f"{ctx.name_prefix}-pipeline", "codepipeline.amazonaws.com", "CodePipeline"
        )


@dataclass(frozen=True)
class ArtifactStoreProps:
    """Who may use the key and the bucket, by role; nothing else is granted."""

    ctx: AccountContext
    pipeline_role_arn: str
    training_cross_account_role_arn: str
    training_sagemaker_role_arn: str
    production_cross_account_role_arn: str
    production_sagemaker_role_arn: str
    deployer_role_arn: str
    artifact_prefix: str
    sample_data: dict[str, Path]


def _harden_bucket(scope: Construct, ctx: AccountContext, bucket: S3Bucket, abort_days: int = 7) -> None:
    """Versioning, no ACLs, no public access, multipart clean-up, EventBridge notifications."""
    S3BucketVersioningA(
        scope, "versioning", provider=ctx.provider, bucket=bucket.id, versioning_configuration={"status": "Enabled"}
    )
    S3BucketOwnershipControls(
        scope, "ownership", provider=ctx.provider, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}
    )
    S3BucketPublicAccessBlock(
        scope,
        "public_access_block",
        provider=ctx.provider,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    S3BucketLifecycleConfiguration(
        scope,
        "lifecycle",
        provider=ctx.provider,
        bucket=bucket.id,
        rule=[
            S3BucketLifecycleConfigurationRule(
                id="abort-incomplete-multipart-uploads",
                status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                abort_incomplete_multipart_upload=[
                    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=abort_days)
                ],
                noncurrent_version_expiration=[
                    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=90)
                ],
            )
        ],
    )
    S3BucketNotification(scope, "notifications", provider=ctx.provider, bucket=bucket.id, eventbridge=True)


class ArtifactStore(Construct):
    """The KMS key and the bucket that hold training data, models and pipeline artifacts."""

    def __init__(self, scope: Construct, construct_id: str, props: ArtifactStoreProps) -> None:
        super().__init__(scope, construct_id)
        ctx = props.ctx
        key_users = [
            props.pipeline_role_arn,
            props.training_cross_account_role_arn,
            props.training_sagemaker_role_arn,
            props.production_cross_account_role_arn,
            props.production_sagemaker_role_arn,
            props.deployer_role_arn,
        ]
        self.key = KmsKey(
            self,
            "key",
            provider=ctx.provider,
            description=f"{ctx.name_prefix}: training data, models and pipeline artifacts",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy_document(
                "key_policy.json.j2",
                partition=ctx.partition,
                region=ctx.region,
                account_id=ctx.account_id,
                key_user_arns=key_users,
                grant_user_arns=[props.training_sagemaker_role_arn, props.deployer_role_arn],
                log_service=False,
            ),
        )
        KmsAlias(
            self,
            "alias",
            provider=ctx.provider,
            name=f"alias/{ctx.name_prefix}-artifacts",
            target_key_id=self.key.key_id,
        )

        log_scope = Construct(self, "access_logs")
        # force_destroy: both buckets are versioned, so without it `destroy` could never remove them
        # (old versions and delete markers remain); `mlpipe destroy` means data and models go too.
        self.log_bucket = S3Bucket(
            log_scope,
            "bucket",
            provider=ctx.provider,
            bucket=f"{ctx.name_prefix}-access-logs-{ctx.account_id}-{ctx.region}",
            force_destroy=True,
        )
        skip_check(
            self.log_bucket, "CKV_AWS_18", "This bucket is the access-log destination; logging it to itself would loop."
        )
        skip_check(self.log_bucket, "CKV_AWS_144", REPLICATION_SKIP)
        skip_check(
            self.log_bucket,
            "CKV_AWS_145",
            "S3 server access logging delivers only to SSE-S3 (AES256) buckets; "
            "SSE-KMS is not supported for log destinations.",
        )
        S3BucketServerSideEncryptionConfigurationA(
            log_scope,
            "encryption",
            provider=ctx.provider,
            bucket=self.log_bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=SseDefault(sse_algorithm="AES256")
                )
            ],
        )
        _harden_bucket(log_scope, ctx, self.log_bucket)

        data_scope = Construct(self, "data")
        self.bucket = S3Bucket(
            data_scope,
            "bucket",
            provider=ctx.provider,
            bucket=f"{ctx.name_prefix}-artifacts-{ctx.account_id}-{ctx.region}",
            force_destroy=True,
        )
        skip_check(self.bucket, "CKV_AWS_144", REPLICATION_SKIP)
        S3BucketServerSideEncryptionConfigurationA(
            data_scope,
            "encryption",
            provider=ctx.provider,
            bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=SseDefault(
                        sse_algorithm="aws:kms", kms_master_key_id=self.key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
        )
        _harden_bucket(data_scope, ctx, self.bucket)
        log_bucket_policy = S3BucketPolicy(
            log_scope,
            "policy",
            provider=ctx.provider,
            bucket=self.log_bucket.id,
            policy=policy_document(
                "log_bucket_policy.json.j2",
                bucket_arn=self.log_bucket.arn,
                source_bucket_arn=self.bucket.arn,
                account_id=ctx.account_id,
            ),
        )
        S3BucketLoggingA(
            data_scope,
            "logging",
            provider=ctx.provider,
            bucket=self.bucket.id,
            target_bucket=self.log_bucket.id,
            target_prefix="access-logs/",
            # S3 accepts a logging target only once its policy lets the logging service write.
            depends_on=[log_bucket_policy],
        )
        self.bucket_policy = S3BucketPolicy(
            data_scope,
            "policy",
            provider=ctx.provider,
            bucket=self.bucket.id,
            policy=policy_document(
                "bucket_policy.json.j2",
                bucket_arn=self.bucket.arn,
                key_arn=self.key.arn,
                artifact_prefix=props.artifact_prefix,
                training_sagemaker_role_arn=props.training_sagemaker_role_arn,
                production_sagemaker_role_arn=props.production_sagemaker_role_arn,
                training_cross_account_role_arn=props.training_cross_account_role_arn,
                production_cross_account_role_arn=props.production_cross_account_role_arn,
                deployer_role_arn=props.deployer_role_arn,
            ),
        )
        for channel, path in props.sample_data.items():
            asset = TerraformAsset(self, f"{channel}_data_file", path=str(path), type=AssetType.FILE)
            S3Object(
                data_scope,
                f"{channel}_data",
                provider=ctx.provider,
                bucket=self.bucket.id,
                key=f"data/{channel}/{path.name}",
                source=asset.path,
                source_hash=Fn.filemd5(asset.path),
                content_type="text/csv",
                server_side_encryption="aws:kms",
                kms_key_id=self.key.arn,
                # The bucket policy denies unencrypted uploads: wait for it so the deny is proven.
                depends_on=[self.bucket_policy],
            )


@dataclass(frozen=True)
class DeliveryPipelineProps:
    """What the four stages run and through which cross-account roles."""

    ctx: AccountContext
    pipeline_role: IamRole
    pipeline_name: str
    artifact_prefix: str
    branch: str
    bucket: S3Bucket
    key: KmsKey
    training_cross_account_role_arn: str
    state_machine_arn: str
    production_cross_account_role_arn: str
    deployer_function_name: str
    approval_email: str


def _stage(name: str, action: CodepipelineStageAction) -> CodepipelineStage:
    return CodepipelineStage(name=name, action=[action])


class DeliveryPipeline(Construct):
    """CodeCommit source -> Step Functions training -> manual approval -> Lambda deployment."""

    def __init__(self, scope: Construct, construct_id: str, props: DeliveryPipelineProps) -> None:
        super().__init__(scope, construct_id)
        ctx = props.ctx
        self.repository = CodecommitRepository(
            self,
            "repository",
            provider=ctx.provider,
            repository_name=f"{ctx.name_prefix}-training-requests",
            description="Training requests: a push to the configured branch starts the pipeline.",
            kms_key_id=props.key.arn,
        )
        approval = CodecommitApprovalRuleTemplate(
            self,
            "approval_rule",
            provider=ctx.provider,
            name=f"{ctx.name_prefix}-require-review",
            description="Every pull request to the training branch needs two approvals.",
            content=Fn.jsonencode(
                {
                    "Version": "2018-11-08",
                    "DestinationReferences": [f"refs/heads/{props.branch}"],
                    "Statements": [{"Type": "Approvers", "NumberOfApprovalsNeeded": 2}],
                }
            ),
        )
        CodecommitApprovalRuleTemplateAssociation(
            self,
            "approval_rule_association",
            provider=ctx.provider,
            approval_rule_template_name=approval.name,
            repository_name=self.repository.repository_name,
        )

        self.approval_topic = None
        if props.approval_email:
            self.approval_topic = SnsTopic(
                self,
                "approval_topic",
                provider=ctx.provider,
                name=f"{ctx.name_prefix}-approvals",
                kms_master_key_id=props.key.arn,
            )
            SnsTopicSubscription(
                self, "approval_subscription", provider=ctx.provider, topic_arn=self.approval_topic.arn,
                protocol="email", endpoint=props.approval_email,
            )  # fmt: skip

        inline_policy(
            self,
            "pipeline_permissions",
            ctx,
            props.pipeline_role,
            "pipeline_permissions.json.j2",
            repository_arn=self.repository.arn,
            bucket_arn=props.bucket.arn,
            artifact_prefix=props.artifact_prefix,
            key_arn=props.key.arn,
            cross_account_role_arns=[props.training_cross_account_role_arn, props.production_cross_account_role_arn],
            approval_topic_arn=self.approval_topic.arn if self.approval_topic else "",
        )

        approve_config = {"CustomData": "Review the training job metrics before the model goes to production."}
        if self.approval_topic:
            approve_config["NotificationArn"] = self.approval_topic.arn
        self.pipeline = Codepipeline(
            self,
            "pipeline",
            provider=ctx.provider,
            name=props.pipeline_name,
            pipeline_type="V2",
            role_arn=props.pipeline_role.arn,
            artifact_store=[
                CodepipelineArtifactStore(
                    location=props.bucket.bucket,
                    type="S3",
                    encryption_key=CodepipelineArtifactStoreEncryptionKey(id=props.key.arn, type="KMS"),
                )
            ],
            stage=[
                _stage(
                    "Source",
                    CodepipelineStageAction(
                        name="TrainingRequest",
                        category="Source",
                        owner="AWS",
                        provider="CodeCommit",
                        version="1",
                        output_artifacts=["request"],
                        configuration={
                            "RepositoryName": self.repository.repository_name,
                            "BranchName": props.branch,
                            "PollForSourceChanges": "false",
                        },
                    ),
                ),
                _stage(
                    "Train",
                    CodepipelineStageAction(
                        name="TrainModel",
                        category="Invoke",
                        owner="AWS",
                        provider="StepFunctions",
                        version="1",
                        input_artifacts=["request"],
                        output_artifacts=["trained_model"],
                        role_arn=props.training_cross_account_role_arn,
                        configuration={
                            "StateMachineArn": props.state_machine_arn,
                            "InputType": "FilePath",
                            "Input": TRAINING_REQUEST_FILE,
                            "ExecutionNamePrefix": ctx.name_prefix,
                        },
                    ),
                ),
                _stage(
                    "Approve",
                    CodepipelineStageAction(
                        name="ApproveModel",
                        category="Approval",
                        owner="AWS",
                        provider="Manual",
                        version="1",
                        configuration=approve_config,
                    ),
                ),
                _stage(
                    "Deploy",
                    CodepipelineStageAction(
                        name="DeployModel",
                        category="Invoke",
                        owner="AWS",
                        provider="Lambda",
                        version="1",
                        input_artifacts=["trained_model"],
                        role_arn=props.production_cross_account_role_arn,
                        configuration={"FunctionName": props.deployer_function_name},
                    ),
                ),
            ],
        )

        events_role = service_role(
            self, "start_role", ctx, f"{ctx.name_prefix}-pipeline-trigger", "events.amazonaws.com", "EventBridge"
        )
        inline_policy(
            self,
            "start_permissions",
            ctx,
            events_role,
            "start_pipeline_permissions.json.j2",
            pipeline_arn=self.pipeline.arn,
        )
        rule = CloudwatchEventRule(
            self,
            "on_push",
            provider=ctx.provider,
            name=f"{ctx.name_prefix}-on-push",
            description="Start the pipeline when the training branch changes.",
            event_pattern=Fn.jsonencode(
                {
                    "source": ["aws.codecommit"],
                    "detail-type": ["CodeCommit Repository State Change"],
                    "resources": [self.repository.arn],
                    "detail": {
                        "event": ["referenceCreated", "referenceUpdated"],
                        "referenceType": ["branch"],
                        "referenceName": [props.branch],
                    },
                }
            ),
        )
        CloudwatchEventTarget(
            self,
            "on_push_target",
            provider=ctx.provider,
            rule=rule.name,
            arn=self.pipeline.arn,
            role_arn=events_role.arn,
        )
