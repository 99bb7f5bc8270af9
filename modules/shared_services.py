"""The shared services account, per pipeline: the data key, the bucket, the repository and the pipeline.

Each pipeline has its own key and bucket, so one pipeline's roles can neither read nor decrypt
another pipeline's data, models or artifacts: isolation by construction, proven again by the gate.
"""

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
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_object import S3Object
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from mlpipe.core.names import TRAINING_REQUEST_FILE, PipelineNames
from modules.common import AccountContext, AccountScope, inline_policy, managed_key, policy_document, service_role
from modules.storage import hardened_bucket


class SharedServicesAccount(AccountScope):
    """The shared services account's part of one pipeline (resources named ``shared_<part>``)."""

    def __init__(self, scope: Construct, construct_id: str, ctx: AccountContext, names: PipelineNames) -> None:
        super().__init__(scope, construct_id)
        self.ctx = ctx
        self.names = names

    def add_pipeline_role(self) -> IamRole:
        """The pipeline's service role, created first because every other account trusts it by name."""
        return service_role(
            self.part("pipeline"), "iam_role", self.ctx, self.names.pipeline_role,
            "codepipeline.amazonaws.com", "CodePipeline",
        )  # fmt: skip

    def add_artifact_store(self, props: ArtifactStoreProps) -> ArtifactStore:
        return ArtifactStore(self, "artifacts", props)

    def add_delivery_pipeline(self, props: DeliveryPipelineProps) -> DeliveryPipeline:
        return DeliveryPipeline(self, props)


@dataclass(frozen=True)
class ArtifactStoreProps:
    """Who may use the key and the bucket, by role; nothing else is granted."""

    ctx: AccountContext
    names: PipelineNames
    pipeline_role_arn: str
    training_cross_account_role_arn: str
    training_sagemaker_role_arn: str
    production_cross_account_role_arn: str
    production_sagemaker_role_arn: str
    deployer_role_arn: str
    access_log_bucket: str
    sample_data: dict[str, Path]
    smoke_test_key: str


class ArtifactStore(Construct):
    """The pipeline's KMS key and the bucket that holds its training data, models and pipeline artifacts."""

    def __init__(self, scope: Construct, construct_id: str, props: ArtifactStoreProps) -> None:
        super().__init__(scope, construct_id)
        ctx, names = props.ctx, props.names
        key_users = [
            props.pipeline_role_arn,
            props.training_cross_account_role_arn,
            props.training_sagemaker_role_arn,
            props.production_cross_account_role_arn,
            props.production_sagemaker_role_arn,
            props.deployer_role_arn,
        ]
        rules = (names.notification_rule, f"{names.notification_rule}-approvals")
        self.key = managed_key(
            self,
            ctx,
            names.artifact_key_alias,
            f"{names.base}: training data, models and pipeline artifacts",
            "key_policy.json.j2",
            key_user_arns=key_users,
            grant_user_arns=[props.training_sagemaker_role_arn, props.deployer_role_arn],
            event_rule_arns=[f"arn:{ctx.partition}:events:{ctx.region}:{ctx.account_id}:rule/{r}" for r in rules],
        )
        self.bucket = hardened_bucket(self, ctx, names.artifact_bucket, kms_key_arn=self.key.arn)
        S3BucketLoggingA(
            self,
            "s3_bucket_logging",
            provider=ctx.provider,
            bucket=self.bucket.id,
            target_bucket=props.access_log_bucket,
            # One prefix for every pipeline: the log bucket's policy grants exactly `access-logs/*`,
            # and each log record names its source bucket.
            target_prefix="access-logs/",
        )
        self.bucket_policy = S3BucketPolicy(
            self,
            "s3_bucket_policy",
            provider=ctx.provider,
            bucket=self.bucket.id,
            policy=policy_document(
                self,
                f"{names.artifact_bucket}/bucket-policy",
                "bucket_policy.json.j2",
                bucket_arn=self.bucket.arn,
                key_arn=self.key.arn,
                artifact_prefix=names.artifact_prefix,
                training_sagemaker_role_arn=props.training_sagemaker_role_arn,
                production_sagemaker_role_arn=props.production_sagemaker_role_arn,
                training_cross_account_role_arn=props.training_cross_account_role_arn,
                production_cross_account_role_arn=props.production_cross_account_role_arn,
                deployer_role_arn=props.deployer_role_arn,
                data_capture_prefix=names.data_capture_prefix,
                smoke_test_key=props.smoke_test_key,
            ),
        )
        for channel, path in props.sample_data.items():
            asset = TerraformAsset(self, f"{channel}_data_file", path=str(path), type=AssetType.FILE)
            S3Object(
                self,
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
    names: PipelineNames
    pipeline_role: IamRole
    branch: str  # a reference to the `branch` local: data, never code
    notification_emails: list[str]  # references to elements of the `notification_emails` local
    bucket: S3Bucket
    key: KmsKey
    training_cross_account_role_arn: str
    state_machine_arn: str
    production_cross_account_role_arn: str
    deployer_function_name: str


def _stage(name: str, action: CodepipelineStageAction) -> CodepipelineStage:
    return CodepipelineStage(name=name, action=[action])


class DeliveryPipeline:
    """CodeCommit source -> Step Functions training -> manual approval -> Lambda deployment.

    Its resources are parts of the shared services account (``shared_pipeline``,
    ``shared_training_requests``, ``shared_pipeline_trigger``, ``shared_approvals``).
    """

    def __init__(self, account: AccountScope, props: DeliveryPipelineProps) -> None:
        ctx, names = props.ctx, props.names
        requests = account.part("training_requests")
        self.repository = CodecommitRepository(
            requests,
            "codecommit_repository",
            provider=ctx.provider,
            repository_name=names.repository,
            description="Training requests: a push to the configured branch starts the pipeline.",
            kms_key_id=props.key.arn,
        )
        approval = CodecommitApprovalRuleTemplate(
            requests,
            "codecommit_approval_rule_template",
            provider=ctx.provider,
            name=names.approval_rule_template,
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
            requests,
            "codecommit_approval_rule_template_association",
            provider=ctx.provider,
            approval_rule_template_name=approval.name,
            repository_name=self.repository.repository_name,
        )

        self.notifications = self._notifications(account, props)

        pipeline_scope = account.part("pipeline")
        inline_policy(
            pipeline_scope,
            "iam_role_policy",
            ctx,
            props.pipeline_role,
            names.pipeline_role,
            "pipeline_permissions.json.j2",
            repository_arn=self.repository.arn,
            bucket_arn=props.bucket.arn,
            artifact_prefix=names.artifact_prefix,
            key_arn=props.key.arn,
            cross_account_role_arns=[props.training_cross_account_role_arn, props.production_cross_account_role_arn],
        )

        # Approval requests reach the notifications topic through EventBridge (see _notifications).
        approve_config = {"CustomData": "Review the training job metrics before the model goes to production."}
        self.pipeline = Codepipeline(
            pipeline_scope,
            "codepipeline",
            provider=ctx.provider,
            name=names.pipeline,
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
                            "ExecutionNamePrefix": names.base,
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

        trigger = account.part("pipeline_trigger")
        trigger_role = service_role(trigger, "iam_role", ctx, names.trigger_role, "events.amazonaws.com", "EventBridge")
        inline_policy(
            trigger,
            "iam_role_policy",
            ctx,
            trigger_role,
            names.trigger_role,
            "start_pipeline_permissions.json.j2",
            pipeline_arn=self.pipeline.arn,
        )
        rule = CloudwatchEventRule(
            trigger,
            "cloudwatch_event_rule",
            provider=ctx.provider,
            name=names.trigger_rule,
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
            trigger,
            "cloudwatch_event_target",
            provider=ctx.provider,
            rule=rule.name,
            arn=self.pipeline.arn,
            role_arn=trigger_role.arn,
        )
        self._notification_rules(account, props)

    def _notifications(self, account: AccountScope, props: DeliveryPipelineProps) -> SnsTopic:
        """The pipeline's SNS topic, encrypted with its key; e-mail subscriptions from the config."""
        ctx, names = props.ctx, props.names
        scope = account.part("notifications")
        topic = SnsTopic(
            scope, "sns_topic", provider=ctx.provider, name=names.notification_topic, kms_master_key_id=props.key.arn
        )
        SnsTopicPolicy(
            scope,
            "sns_topic_policy",
            provider=ctx.provider,
            arn=topic.arn,
            policy=policy_document(
                scope,
                f"{names.notification_topic}/topic-policy",
                "notification_topic_policy.json.j2",
                topic_arn=topic.arn,
                account_id=ctx.account_id,
                rule_arns=[
                    f"arn:{ctx.partition}:events:{ctx.region}:{ctx.account_id}:rule/{rule}"
                    for rule in (names.notification_rule, f"{names.notification_rule}-approvals")
                ],
            ),
        )
        for index, email in enumerate(props.notification_emails):
            SnsTopicSubscription(
                scope, f"email_{index}", provider=ctx.provider, topic_arn=topic.arn, protocol="email", endpoint=email
            )
        return topic

    def _notification_rules(self, account: AccountScope, props: DeliveryPipelineProps) -> None:
        """Failed and succeeded runs, and approvals waiting for a reviewer, go to the topic."""
        ctx, names = props.ctx, props.names
        patterns = {
            "runs": (
                names.notification_rule,
                "A run of the pipeline failed or succeeded.",
                {
                    "source": ["aws.codepipeline"],
                    "detail-type": ["CodePipeline Pipeline Execution State Change"],
                    "detail": {"pipeline": [names.pipeline], "state": ["FAILED", "SUCCEEDED"]},
                },
            ),
            "approvals": (
                f"{names.notification_rule}-approvals",
                "A trained model waits for approval.",
                {
                    "source": ["aws.codepipeline"],
                    "detail-type": ["CodePipeline Action Execution State Change"],
                    "detail": {"pipeline": [names.pipeline], "state": ["STARTED"], "type": {"category": ["Approval"]}},
                },
            ),
        }
        for kind, (name, description, pattern) in patterns.items():
            scope = account.part(f"notify_{kind}")
            rule = CloudwatchEventRule(
                scope,
                "cloudwatch_event_rule",
                provider=ctx.provider,
                name=name,
                description=description,
                event_pattern=Fn.jsonencode(pattern),
            )
            CloudwatchEventTarget(
                scope,
                "cloudwatch_event_target",
                provider=ctx.provider,
                rule=rule.name,
                arn=self.notifications.arn,
            )
