"""Bucket policies judge each object request as its own IAM action (PUT ?tagging is not an upload).

Why: changing one tag of an ``aws_s3_object`` makes Terraform send ``PutObjectTagging``; the emulator
judged every PUT as ``s3:PutObject``, so the bucket policy's "deny unencrypted uploads" statement
(the request carries no SSE header) answered 403 and the apply failed. S3 authorizes tagging, ACL,
retention, ... as separate actions that those statements do not name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlpipe.emulator.patches import INSECURE_TRANSPORT_HEADER, evaluate_bucket_policy
from mlpipe.emulator.patches.s3_bucket_policy import object_request_action
from mlpipe.emulator.process import Emulator

ACCOUNT = "111111111111"
BUCKET = "mlpipe-tag-test"
KEY_ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"


def pipeline_policy(key_arn: str = KEY_ARN) -> dict[str, Any]:
    """The deny statements of policies/bucket_policy.json.j2, for ``BUCKET``."""
    arn = f"arn:aws:s3:::{BUCKET}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyUnencryptedUploads",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{arn}/*",
                "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            },
            {
                "Sid": "DenyUploadsWithOtherKeys",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{arn}/*",
                "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}},
            },
        ],
    }


@pytest.mark.parametrize(
    ("method", "query", "action"),
    [
        ("PUT", {}, "s3:PutObject"),
        ("PUT", {"tagging": [""]}, "s3:PutObjectTagging"),
        ("PUT", {"tagging": [""], "versionId": ["v1"]}, "s3:PutObjectVersionTagging"),
        ("GET", {"tagging": [""]}, "s3:GetObjectTagging"),
        ("DELETE", {"tagging": [""]}, "s3:DeleteObjectTagging"),
        ("PUT", {"acl": [""]}, "s3:PutObjectAcl"),
        ("GET", {"acl": [""]}, "s3:GetObjectAcl"),
        ("PUT", {"retention": [""]}, "s3:PutObjectRetention"),
        ("PUT", {"legal-hold": [""]}, "s3:PutObjectLegalHold"),
        ("PUT", {"partNumber": ["1"], "uploadId": ["u"]}, "s3:PutObject"),
        ("POST", {"uploads": [""]}, "s3:PutObject"),
        ("POST", {"uploadId": ["u"]}, "s3:PutObject"),
        ("POST", {"restore": [""]}, "s3:RestoreObject"),
        ("GET", {"uploadId": ["u"]}, "s3:ListMultipartUploadParts"),
        ("DELETE", {"uploadId": ["u"]}, "s3:AbortMultipartUpload"),
        ("GET", {}, "s3:GetObject"),
        ("GET", {"versionId": ["v1"]}, "s3:GetObjectVersion"),
        ("HEAD", {}, "s3:GetObject"),
        ("DELETE", {}, "s3:DeleteObject"),
        ("DELETE", {"versionId": ["v1"]}, "s3:DeleteObjectVersion"),
    ],
)
def test_object_request_action(method: str, query: dict[str, list[str]], action: str) -> None:
    assert object_request_action(method, query) == action


def test_tagging_is_not_judged_as_an_upload() -> None:
    policy = pipeline_policy()
    resource = f"arn:aws:s3:::{BUCKET}/data/train.csv"
    secure = {"aws:securetransport": ["true"]}
    # A tagging request carries no SSE headers: as s3:PutObject it would be denied.
    assert evaluate_bucket_policy(policy, "s3:PutObject", resource, secure) == "Deny"
    for method, query in (("PUT", {"tagging": [""]}), ("GET", {"tagging": [""]}), ("DELETE", {"tagging": [""]})):
        action = object_request_action(method, query)
        assert evaluate_bucket_policy(policy, action, resource, secure) == "", action
    # The TLS-only statement names s3:*, so it still covers tagging.
    insecure = {"aws:securetransport": ["false"]}
    assert evaluate_bucket_policy(policy, "s3:PutObjectTagging", resource, insecure) == "Deny"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def s3_client(url: str, extra_headers: dict[str, str] | None = None) -> Any:
    client = boto3.client(
        "s3", endpoint_url=url, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    headers = {"x-moto-account-id": ACCOUNT, **(extra_headers or {})}

    def add_headers(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    client.meta.events.register("before-send.*.*", add_headers)
    return client


def status_of(call: Any, **kwargs: Any) -> int:
    try:
        return int(call(**kwargs)["ResponseMetadata"]["HTTPStatusCode"])
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


def test_tag_change_on_an_encrypted_object_is_allowed(emulator: Emulator) -> None:
    s3 = s3_client(emulator.url)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(pipeline_policy()))
    key = "data/train.csv"
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY_ARN}

    assert status_of(s3.put_object, Bucket=BUCKET, Key="data/plain.csv", Body=b"x") == 403
    assert status_of(s3.put_object, Bucket=BUCKET, Key=key, Body=b"a,b\n", Tagging="Stage=one", **sse) == 200

    tags = {"TagSet": [{"Key": "Stage", "Value": "two"}]}
    assert status_of(s3.put_object_tagging, Bucket=BUCKET, Key=key, Tagging=tags) == 200
    assert s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"] == tags["TagSet"]
    assert status_of(s3.delete_object_tagging, Bucket=BUCKET, Key=key) == 204
    assert s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"] == []

    plain = s3_client(emulator.url, {INSECURE_TRANSPORT_HEADER: "true"})
    assert status_of(plain.put_object_tagging, Bucket=BUCKET, Key=key, Tagging=tags) == 403
