"""Create the Terraform state bucket once, in the shared account (real AWS only).

State cannot live in a bucket that the same configuration creates, so this one bucket is made
with the API: versioned, SSE-KMS by default, public access blocked, TLS only. Terraform's S3
backend then locks with a lock file in the same bucket (`use_lockfile`), no DynamoDB table.
Running it again changes nothing that is already right.
"""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from mlpipe.core.config import ProjectConfig
from mlpipe.core.errors import ConfigError
from mlpipe.workflow.clients import Target


def bootstrap_state_bucket(config: ProjectConfig) -> str:
    """Create or harden `config.state.bucket`; return a one-line report."""
    if config.state.backend != "s3":
        raise ConfigError(
            f"{config.source}: state.backend is {config.state.backend!r}; bootstrap creates an S3 state bucket",
            'set [state] backend = "s3" and bucket = "<name>" (the emulator target keeps local state)',
        )
    s3 = Target("aws").client(config, "shared", "s3")
    bucket = config.state.bucket
    created = False
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        params: dict[str, object] = {"Bucket": bucket}
        if config.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": config.region}
        s3.create_bucket(**params)
        created = True
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": config.state.kms_key_id,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    arn = f"arn:{config.partition}:s3:::{bucket}"
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [arn, f"{arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )
    return (
        f"state bucket {bucket} {'created' if created else 'already existed'}; versioning, SSE-KMS, TLS-only enforced"
    )
