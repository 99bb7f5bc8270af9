"""What the AWS provider's create waiters read back, checked against the emulator with boto3.

Why: provider 5.100.0 accepts a create only once it has read back what it wrote several times in a
row, on a fixed schedule (docs/emulator-notes.md, "Provider waits"): S3 lifecycle 10 equal reads
5 s apart after a 10 s delay (55 s), SQS 6 equal attribute reads 5 s apart (25 s), KMS 5 equal
reads 1 s apart each for rotation, policy and tags (4 s each), Lambda ``State`` ``Active`` after a
5 s delay. Those schedules are the floor of every apply, on AWS too. They stay at the floor only
while every read-back equals what was written: one differing field fails every poll, and the
create runs into the waiter's timeout (3 min lifecycle, 2 min SQS, 10 min KMS) and fails. Each
test mirrors one waiter's comparison with the request the provider sends (taken from its DEBUG
log), so a moto upgrade or a patch that breaks a read-back fails here in seconds, not in an apply.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from mlpipe.emulator.process import Emulator

REGION = "eu-west-1"
ACCOUNT = "333333333333"
TAGS = {"project": "mlpipe", "owner": "ml-platform"}  # the provider's default_tags land on every resource


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with Emulator() as emu:
        yield emu.url


def client(service: str, url: str) -> Any:
    """A boto3 client acting in ``ACCOUNT`` (moto's x-moto-account-id header)."""
    made = boto3.client(
        service, endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )

    def add_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = ACCOUNT

    made.meta.events.register("before-send.*.*", add_account)
    return made


# ------------------------------------------------------------------------------------------------
# aws_s3_bucket_lifecycle_configuration: waitLifecycleConfigEquals -> lifecycleConfigEqual
# ------------------------------------------------------------------------------------------------

#: The rule of modules/storage.py as the provider sends it (``filter { prefix = "" }``).
PROJECT_RULE: dict[str, Any] = {
    "ID": "abort-incomplete-multipart-uploads",
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
}


@pytest.mark.parametrize("minimum_size", ["all_storage_classes_128K", "varies_by_storage_class"])
def test_lifecycle_reads_back_rules_and_transition_default_minimum_object_size(url: str, minimum_size: str) -> None:
    """``lifecycleConfigEqual`` compares ``TransitionDefaultMinimumObjectSize``, then the rules.

    The provider always sends the header (default ``all_storage_classes_128K``, the project's
    value). moto answered that constant whatever was sent, so ``varies_by_storage_class`` timed
    the create out after 3 minutes; ``patches/s3_lifecycle.py`` keeps the value sent.
    """
    s3 = client("s3", url)
    bucket = f"mlpipe-waits-{minimum_size.replace('_', '-').lower()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    put = s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [PROJECT_RULE]}, TransitionDefaultMinimumObjectSize=minimum_size
    )

    reads = [s3.get_bucket_lifecycle_configuration(Bucket=bucket) for _ in range(2)]
    for got in reads:
        assert got["TransitionDefaultMinimumObjectSize"] == minimum_size
        assert got["Rules"] == [PROJECT_RULE]
    assert put["TransitionDefaultMinimumObjectSize"] == minimum_size  # S3 echoes it (the waiter reads GET only)


def test_lifecycle_put_without_the_header_applies_the_default(url: str) -> None:
    """S3 applies ``all_storage_classes_128K`` to a PUT that names no value; nothing is sticky."""
    s3 = client("s3", url)
    bucket = "mlpipe-waits-default-size"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    config = {"Rules": [PROJECT_RULE]}
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration=config, TransitionDefaultMinimumObjectSize="varies_by_storage_class"
    )
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=config)
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"


# ------------------------------------------------------------------------------------------------
# aws_sqs_queue: waitQueueAttributesPropagated -> statusQueueAttributeState
# ------------------------------------------------------------------------------------------------


def test_sqs_queue_attributes_read_back_as_sent(url: str) -> None:
    """Every attribute the provider sent must come back from ``GetQueueAttributes(All)`` as the same string."""
    kms = client("kms", url)
    key_arn = kms.create_key(Description="queue key")["KeyMetadata"]["Arn"]
    sent = {  # CreateQueue of modules/production.py's dead-letter queue, as the provider sends it
        "KmsMasterKeyId": key_arn,
        "VisibilityTimeout": "30",
        "DelaySeconds": "0",
        "MessageRetentionPeriod": "1209600",
        "ReceiveMessageWaitTimeSeconds": "0",
        "MaximumMessageSize": "262144",
    }
    sqs = client("sqs", url)
    queue_url = sqs.create_queue(QueueName="mlpipe-waits-dlq", Attributes=sent, tags=TAGS)["QueueUrl"]
    got = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert {name: got.get(name) for name in sent} == sent
    assert sqs.list_queue_tags(QueueUrl=queue_url)["Tags"] == TAGS


# ------------------------------------------------------------------------------------------------
# aws_kms_key / aws_kms_key_policy: waitKeyRotationEnabledPropagated, waitKeyPolicyPropagated,
# waitTagsPropagated
# ------------------------------------------------------------------------------------------------


def key_policy(account: str, sid: str) -> str:
    """A key policy as the provider sends it (normalized JSON)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        separators=(",", ":"),
    )


def test_kms_key_rotation_policy_and_tags_read_back(url: str) -> None:
    """Rotation status, the policy (equivalent JSON) and the tags must read back as written."""
    kms = client("kms", url)
    policy = key_policy(ACCOUNT, "KeyAdministrationByOwningAccount")
    key_id = kms.create_key(
        Description="deployer environment and dead-letter queue",
        Policy=policy,
        Tags=[{"TagKey": k, "TagValue": v} for k, v in TAGS.items()],
    )["KeyMetadata"]["KeyId"]

    kms.enable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    read_policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert json.loads(read_policy) == json.loads(policy)
    tags = kms.list_resource_tags(KeyId=key_id)["Tags"]
    assert {tag["TagKey"]: tag["TagValue"] for tag in tags} == TAGS

    # aws_kms_key_policy: PutKeyPolicy, then the same policy wait.
    replaced = key_policy(ACCOUNT, "RootAccount")
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=replaced)
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == json.loads(replaced)

    # The status follows the key (a constant answer would pass the create and break a later disable).
    kms.disable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


# ------------------------------------------------------------------------------------------------
# aws_lambda_function: waitFunctionCreated (State), waitFunctionUpdated (LastUpdateStatus)
# ------------------------------------------------------------------------------------------------


def test_lambda_function_is_active_and_updates_succeed(url: str) -> None:
    """``State`` must be ``Active`` (not ``Pending``) and ``LastUpdateStatus`` ``Successful``."""
    iam = client("iam", url)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role_arn = iam.create_role(RoleName="mlpipe-waits-fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")

    lam = client("lambda", url)
    lam.create_function(
        FunctionName="mlpipe-waits-fn",
        Role=role_arn,
        Runtime="python3.12",
        Handler="handler.handler",
        Code={"ZipFile": package.getvalue()},
        Tags=TAGS,
    )
    config = lam.get_function(FunctionName="mlpipe-waits-fn")["Configuration"]
    assert (config["State"], config["LastUpdateStatus"]) == ("Active", "Successful")

    lam.put_function_concurrency(FunctionName="mlpipe-waits-fn", ReservedConcurrentExecutions=2)
    lam.update_function_configuration(FunctionName="mlpipe-waits-fn", MemorySize=256)
    config = lam.get_function(FunctionName="mlpipe-waits-fn")["Configuration"]
    assert (config["State"], config["LastUpdateStatus"], config["MemorySize"]) == ("Active", "Successful", 256)
