"""What every pipeline shares: the access-log bucket and one logs key per workload account.

Nothing here names a pipeline, so adding or removing a pipeline never changes the foundation:
the log bucket accepts access logs from the platform's artifact buckets by name pattern, and the
logs keys serve CloudWatch Logs for the platform's log groups by encryption context.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from constructs import Construct

from modules.common import AccountContext, managed_key, policy_document
from modules.stack import skip_check
from modules.storage import hardened_bucket


class AccessLogBucket(Construct):
    """The S3 server access log destination for every artifact bucket of the platform."""

    def __init__(
        self, scope: Construct, construct_id: str, ctx: AccountContext, name: str, source_bucket_pattern: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = hardened_bucket(self, ctx, name, kms_key_arn=None)
        skip_check(
            self.bucket, "CKV_AWS_18", "This bucket is the access-log destination; logging it to itself would loop."
        )
        skip_check(
            self.bucket,
            "CKV_AWS_145",
            "S3 server access logging delivers only to SSE-S3 (AES256) buckets; "
            "SSE-KMS is not supported for log destinations.",
        )
        self.policy = S3BucketPolicy(
            self,
            "s3_bucket_policy",
            provider=ctx.provider,
            bucket=self.bucket.id,
            policy=policy_document(
                self,
                f"{name}/bucket-policy",
                "log_bucket_policy.json.j2",
                bucket_arn=self.bucket.arn,
                source_bucket_arn_pattern=f"arn:{ctx.partition}:s3:::{source_bucket_pattern}",
                account_id=ctx.account_id,
            ),
        )


class LogsKey(Construct):
    """A customer-managed key for the platform's log groups in one workload account.

    CloudWatch Logs encrypts with a key in the log group's own account, so the shared services
    account's data keys cannot serve here. Only the CloudWatch Logs service may use it, and only
    for log groups whose names carry the platform prefix (``kms:EncryptionContext:aws:logs:arn``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        ctx: AccountContext,
        prefix: str,
        alias: str,
        log_group_patterns: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        arns = [f"arn:{ctx.partition}:logs:{ctx.region}:{ctx.account_id}:log-group:{p}" for p in log_group_patterns]
        self.key = managed_key(
            self,
            ctx,
            alias,
            f"{prefix}: CloudWatch Logs of every pipeline in this account",
            "logs_key_policy.json.j2",
            log_group_arns=arns,
        )
