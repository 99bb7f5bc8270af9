"""A bucket hardened the same way everywhere: versioned, no ACLs, no public access, encrypted."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA
from constructs import Construct

from modules.common import AccountContext
from modules.stack import skip_check

SseDefault = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA
REPLICATION_SKIP = (
    "Single-region pipeline: cross-region replication would copy KMS-encrypted training data and models "
    "to a region this design does not use."
)


def hardened_bucket(scope: Construct, ctx: AccountContext, name: str, kms_key_arn: str | None) -> S3Bucket:
    """The bucket and its settings, all named after ``scope`` (``aws_s3_bucket.<scope>`` and so on).

    ``kms_key_arn=None`` means SSE-S3: the only encryption S3 server access logging can deliver to.
    ``force_destroy``: the bucket is versioned, so without it ``destroy`` could never remove it (old
    versions and delete markers remain); ``mlpipe destroy`` says that data goes too.
    """
    bucket = S3Bucket(scope, "s3_bucket", provider=ctx.provider, bucket=name, force_destroy=True)
    skip_check(bucket, "CKV_AWS_144", REPLICATION_SKIP)
    default = (
        SseDefault(sse_algorithm="AES256")
        if kms_key_arn is None
        else SseDefault(sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn)
    )
    S3BucketServerSideEncryptionConfigurationA(
        scope,
        "s3_bucket_server_side_encryption_configuration",
        provider=ctx.provider,
        bucket=bucket.id,
        rule=[
            S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=default,
                bucket_key_enabled=kms_key_arn is not None,
            )
        ],
    )
    S3BucketVersioningA(
        scope,
        "s3_bucket_versioning",
        provider=ctx.provider,
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
    )
    S3BucketOwnershipControls(
        scope,
        "s3_bucket_ownership_controls",
        provider=ctx.provider,
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
    )
    S3BucketPublicAccessBlock(
        scope,
        "s3_bucket_public_access_block",
        provider=ctx.provider,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    S3BucketLifecycleConfiguration(
        scope,
        "s3_bucket_lifecycle_configuration",
        provider=ctx.provider,
        bucket=bucket.id,
        rule=[
            S3BucketLifecycleConfigurationRule(
                id="abort-incomplete-multipart-uploads",
                status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                abort_incomplete_multipart_upload=[
                    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
                ],
                noncurrent_version_expiration=[
                    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=90)
                ],
            )
        ],
    )
    S3BucketNotification(scope, "s3_bucket_notification", provider=ctx.provider, bucket=bucket.id, eventbridge=True)
    return bucket
