"""End-to-end test of the local emulator: a real Terraform apply across three emulated accounts.

Why end to end: the emulator's value is that the AWS provider can apply, re-plan with no changes
and destroy a stack shaped like ours. Each test below checks one promise against a single applied
copy of ``fixtures/emulator_smoke`` (module-scoped: the apply takes a couple of minutes, mostly
provider start-up and the provider's own consistency waits). Tests run in file order; the destroy
test is last on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlpipe.core.errors import EmulatorError
from mlpipe.emulator.patches import INSECURE_TRANSPORT_HEADER, evaluate_bucket_policy
from mlpipe.emulator.process import Emulator, ensure_running, is_ready, status, stop_running
from mlpipe.engine.terraform import TERRAFORM_GOGC

FIXTURE = Path(__file__).parent / "fixtures" / "emulator_smoke"
TERRAFORM = shutil.which("terraform") or "/usr/local/bin/terraform"
PROVIDER_MIRROR = "/opt/tf-plugins"
REGION = "eu-west-1"
SHARED, TRAINING, PRODUCTION = "111111111111", "222222222222", "333333333333"
PREFIX = "mlpipe-smoke"


@dataclass
class Stack:
    """An applied copy of the fixture."""

    workdir: Path
    url: str
    env: dict[str, str]
    outputs: dict[str, Any]
    apply_seconds: float = 0.0
    create_seconds: dict[str, int] = field(default_factory=dict)


def aws(service: str, account: str, url: str, extra_headers: dict[str, str] | None = None) -> Any:
    """A boto3 client that talks to the emulator as ``account`` (moto's x-moto-account-id)."""
    client = boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    headers = {"x-moto-account-id": account, **(extra_headers or {})}

    def add_headers(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    client.meta.events.register("before-send.*.*", add_headers)
    return client


def terraform(stack_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TERRAFORM, *args],
        cwd=stack_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def tf_env(tmp: Path) -> dict[str, str]:
    """Environment pointing Terraform at the offline provider mirror (never the registry)."""
    rc = tmp / "terraform.rc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{PROVIDER_MIRROR}"\n  }}\n}}\n')
    env = dict(os.environ)
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "GOGC": TERRAFORM_GOGC,  # as mlpipe runs Terraform
        }
    )
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    return env


def write_lambda_zip(path: Path) -> None:
    """A deterministic deployment package so the code hash never changes between plans."""
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("handler.py", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, "def handler(event, context):\n    return event\n")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def stack(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    tmp = tmp_path_factory.mktemp("emulator_smoke")
    workdir = tmp / "stack"
    shutil.copytree(FIXTURE, workdir)
    write_lambda_zip(workdir / "lambda.zip")
    env = tf_env(tmp)
    var = f"emulator_url={emulator.url}"

    init = terraform(workdir, env, "init", "-no-color", "-input=false")
    assert init.returncode == 0, init.stdout + init.stderr
    started = time.monotonic()
    apply = terraform(workdir, env, "apply", "-auto-approve", "-no-color", "-input=false", "-var", var)
    apply_seconds = time.monotonic() - started
    assert apply.returncode == 0, apply.stdout[-4000:] + apply.stderr + _tail(emulator)
    out = terraform(workdir, env, "output", "-json")
    assert out.returncode == 0, out.stderr
    outputs = {name: item["value"] for name, item in json.loads(out.stdout).items()}
    return Stack(
        workdir=workdir,
        url=emulator.url,
        env=env,
        outputs=outputs,
        apply_seconds=apply_seconds,
        create_seconds=creation_seconds(apply.stdout),
    )


_CREATION_COMPLETE = re.compile(r"^(\S+): Creation complete after (?:(\d+)m)?(\d+)s", re.MULTILINE)


def creation_seconds(apply_stdout: str) -> dict[str, int]:
    """Each resource's "Creation complete after 1m5s" from Terraform's apply output, in seconds."""
    return {m[1]: int(m[2] or 0) * 60 + int(m[3]) for m in _CREATION_COMPLETE.finditer(apply_stdout)}


def _tail(emulator: Emulator) -> str:
    try:
        return "\n--- emulator log ---\n" + "\n".join(emulator.log_path.read_text(errors="replace").splitlines()[-60:])
    except (OSError, EmulatorError):
        return ""


# ------------------------------------------------------------------------------------------------
# The applied stack
# ------------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_shared_account_holds_artifacts_source_and_pipeline(stack: Stack) -> None:
    url = stack.url
    s3 = aws("s3", SHARED, url)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {f"{PREFIX}-artifacts", f"{PREFIX}-access-logs"} <= buckets

    bucket = f"{PREFIX}-artifacts"
    key_arn = stack.outputs["artifact_key_arn"]
    assert f":{SHARED}:key/" in key_arn
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key_arn
    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(pab.values())
    owner = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0]
    assert owner["ObjectOwnership"] == "BucketOwnerEnforced"
    logging_cfg = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
    assert logging_cfg["TargetBucket"] == f"{PREFIX}-access-logs"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    assert "EventBridgeConfiguration" in s3.get_bucket_notification_configuration(Bucket=bucket)
    statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert {"DenyInsecureTransport", "DenyUnencryptedUploads", "DenyWrongKmsKey"} <= {s["Sid"] for s in statements}
    head = s3.head_object(Bucket=bucket, Key="seed/README.txt")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn

    kms = aws("kms", SHARED, url)
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases[f"alias/{PREFIX}-artifacts"] == key_arn.rsplit("/", 1)[1]
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
    key_policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    assert {s["Sid"] for s in key_policy["Statement"]} == {"RootAccount", "WorkloadAccounts"}

    cc = aws("codecommit", SHARED, url)
    repo = cc.get_repository(repositoryName=f"{PREFIX}-source")["repositoryMetadata"]
    assert repo["accountId"] == SHARED
    assert cc.list_tags_for_resource(resourceArn=repo["Arn"])["tags"] == {"project": "mlpipe"}
    template = f"{PREFIX}-two-approvers"
    assert cc.get_approval_rule_template(approvalRuleTemplateName=template)["approvalRuleTemplate"]
    linked = cc.list_repositories_for_approval_rule_template(approvalRuleTemplateName=template)
    assert linked["repositoryNames"] == [f"{PREFIX}-source"]

    cp = aws("codepipeline", SHARED, url)
    pipeline = cp.get_pipeline(name=f"{PREFIX}-pipeline")
    stages = [s["name"] for s in pipeline["pipeline"]["stages"]]
    assert stages == ["Source", "Train", "Approve", "Deploy"]
    providers = [s["actions"][0]["actionTypeId"]["provider"] for s in pipeline["pipeline"]["stages"]]
    assert providers == ["CodeCommit", "StepFunctions", "Manual", "Lambda"]
    store = pipeline["pipeline"]["artifactStore"]
    assert store["encryptionKey"]["id"] == key_arn
    assert f":{SHARED}:" in pipeline["metadata"]["pipelineArn"]

    iam = aws("iam", SHARED, url)
    role = iam.get_role(RoleName=f"{PREFIX}-pipeline")["Role"]
    assert f"::{SHARED}:" in role["Arn"]
    assert iam.list_role_policies(RoleName=f"{PREFIX}-pipeline")["PolicyNames"] == ["pipeline"]


@pytest.mark.e2e
def test_apply_timings_are_recorded(
    stack: Stack, record_testsuite_property: Callable[[str, object], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """Record how long each resource took to create (no timing assertions: the machine varies).

    Why: the apply is dominated by the provider's fixed consistency waits (docs/emulator-notes.md,
    "Provider waits": lifecycle 55 s, SQS 25 s, KMS 4 s per read-back, Lambda 5 s). A read-back
    the emulator gets wrong turns one of them into a minutes-long timeout; these lines in the test
    output (and the JUnit test-suite properties) show that at a glance.
    """
    slowest = sorted(stack.create_seconds.items(), key=lambda item: -item[1])
    lines = [f"smoke apply: {stack.apply_seconds:.1f} s, {len(slowest)} resources created"]
    lines += [f"  {seconds:>4} s  {address}" for address, seconds in slowest if seconds >= 2]
    with capsys.disabled():  # straight to the terminal, also when the test passes
        print("\n" + "\n".join(lines))
    record_testsuite_property("smoke_apply_seconds", round(stack.apply_seconds, 1))
    for address, seconds in slowest:
        record_testsuite_property(f"smoke_create_seconds[{address}]", seconds)
    assert "aws_s3_bucket_lifecycle_configuration.artifacts" in stack.create_seconds


def test_creation_seconds_reads_minutes_and_seconds() -> None:
    out = "a.b: Creation complete after 55s [id=x]\nc.d: Creation complete after 1m5s [id=y]\nc.d: Still creating..."
    assert creation_seconds(out) == {"a.b": 55, "c.d": 65}


@pytest.mark.e2e
def test_training_account_holds_state_machine(stack: Stack) -> None:
    url = stack.url
    sfn = aws("stepfunctions", TRAINING, url)
    arn = stack.outputs["state_machine_arn"]
    assert f":{TRAINING}:stateMachine:" in arn
    machine = sfn.describe_state_machine(stateMachineArn=arn)
    assert machine["tracingConfiguration"]["enabled"] is True
    assert machine["loggingConfiguration"]["level"] == "ALL"
    definition = json.loads(machine["definition"])
    image = definition["States"]["Train"]["Parameters"]["AlgorithmSpecification"]["TrainingImage"]
    assert image == stack.outputs["prebuilt_image"]
    assert image.startswith("141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1")

    logs = aws("logs", TRAINING, url)
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/vendedlogs/states/")["logGroups"]
    assert [(g["retentionInDays"], f":{TRAINING}:key/" in g["kmsKeyId"]) for g in groups] == [(365, True)]

    iam = aws("iam", TRAINING, url)
    assert iam.get_role(RoleName=f"{PREFIX}-sfn")["Role"]["Arn"].startswith(f"arn:aws:iam::{TRAINING}:")


@pytest.mark.e2e
def test_production_account_holds_deploy_lambda_and_alerts(stack: Stack) -> None:
    url = stack.url
    lam = aws("lambda", PRODUCTION, url)
    fn = lam.get_function(FunctionName=f"{PREFIX}-deploy")
    config = fn["Configuration"]
    assert f":{PRODUCTION}:function:" in config["FunctionArn"]
    assert config["TracingConfig"]["Mode"] == "Active"
    assert config["DeadLetterConfig"]["TargetArn"].endswith(f":{PRODUCTION}:{PREFIX}-deploy-dlq")
    assert f":{PRODUCTION}:key/" in config["KMSKeyArn"]
    assert fn["Concurrency"]["ReservedConcurrentExecutions"] == 2

    sqs = aws("sqs", PRODUCTION, url)
    queue_url = sqs.get_queue_url(QueueName=f"{PREFIX}-deploy-dlq")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert f":{PRODUCTION}:key/" in attrs["KmsMasterKeyId"]

    sns = aws("sns", PRODUCTION, url)
    topic_arn = f"arn:aws:sns:{REGION}:{PRODUCTION}:{PREFIX}-alerts"
    topic = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    assert f":{PRODUCTION}:key/" in topic["KmsMasterKeyId"]

    events = aws("events", PRODUCTION, url)
    rule = events.describe_rule(Name=f"{PREFIX}-training-done")
    assert json.loads(rule["EventPattern"])["source"] == ["aws.states"]
    targets = events.list_targets_by_rule(Rule=f"{PREFIX}-training-done")["Targets"]
    assert [t["Arn"] for t in targets] == [topic_arn]

    logs = aws("logs", PRODUCTION, url)
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    assert [g["retentionInDays"] for g in groups] == [365]


@pytest.mark.e2e
def test_resources_are_not_visible_from_other_accounts(stack: Stack) -> None:
    url = stack.url
    for account in (TRAINING, PRODUCTION):
        assert aws("s3", account, url).list_buckets()["Buckets"] == []
        assert aws("codecommit", account, url).list_repositories()["repositories"] == []
        assert aws("codepipeline", account, url).list_pipelines()["pipelines"] == []
    for account in (SHARED, PRODUCTION):
        assert aws("stepfunctions", account, url).list_state_machines()["stateMachines"] == []
    for account in (SHARED, TRAINING):
        assert aws("lambda", account, url).list_functions()["Functions"] == []
        assert aws("sqs", account, url).list_queues().get("QueueUrls", []) == []
        assert aws("sns", account, url).list_topics()["Topics"] == []


@pytest.mark.e2e
def test_second_plan_reports_no_changes(stack: Stack) -> None:
    plan = terraform(
        stack.workdir,
        stack.env,
        "plan",
        "-detailed-exitcode",
        "-no-color",
        "-input=false",
        "-var",
        f"emulator_url={stack.url}",
    )
    assert plan.returncode == 0, plan.stdout[-4000:] + plan.stderr
    assert "No changes." in plan.stdout


@pytest.mark.e2e
def test_bucket_policy_denies_are_enforced(stack: Stack) -> None:
    url = stack.url
    bucket = f"{PREFIX}-artifacts"
    key_arn = stack.outputs["artifact_key_arn"]
    s3 = aws("s3", SHARED, url)

    def denied(**kwargs: Any) -> bool:
        try:
            s3.put_object(Bucket=bucket, Body=b"model", **kwargs)
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 403
            return True
        return False

    assert denied(Key="models/plain.bin")
    assert denied(Key="models/aes.bin", ServerSideEncryption="AES256")
    assert denied(Key="models/no-key.bin", ServerSideEncryption="aws:kms")
    other_key = aws("kms", SHARED, url).create_key(Description="not the bucket key")["KeyMetadata"]
    assert denied(Key="models/other.bin", ServerSideEncryption="aws:kms", SSEKMSKeyId=other_key["Arn"])
    assert not denied(Key="models/good.bin", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    assert s3.head_object(Bucket=bucket, Key="models/good.bin")["SSEKMSKeyId"] == key_arn

    # A multipart upload is judged by the encryption given when it was created.
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="models/big.bin", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn
    )
    part = s3.upload_part(
        Bucket=bucket, Key="models/big.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 16
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="models/big.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )

    # Reads are allowed over "secure" transport; a request marked as plain HTTP is denied.
    assert s3.get_object(Bucket=bucket, Key="models/good.bin")["Body"].read() == b"model"
    plain = aws("s3", SHARED, url, {INSECURE_TRANSPORT_HEADER: "true"})
    with pytest.raises(ClientError) as err:
        plain.get_object(Bucket=bucket, Key="models/good.bin")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    # Clean up what terraform does not own, so the destroy test sees only its own objects.
    s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "models/good.bin"}, {"Key": "models/big.bin"}]},
    )


@pytest.mark.e2e
def test_destroy_leaves_nothing(stack: Stack, emulator: Emulator) -> None:
    destroy = terraform(
        stack.workdir,
        stack.env,
        "destroy",
        "-auto-approve",
        "-no-color",
        "-input=false",
        "-var",
        f"emulator_url={stack.url}",
    )
    assert destroy.returncode == 0, destroy.stdout[-4000:] + destroy.stderr + _tail(emulator)
    state = terraform(stack.workdir, stack.env, "state", "list")
    assert state.stdout.strip() == ""

    url = stack.url
    for account in (SHARED, TRAINING, PRODUCTION):
        assert aws("s3", account, url).list_buckets()["Buckets"] == []
        cc = aws("codecommit", account, url)
        assert cc.list_repositories()["repositories"] == []
        assert cc.list_approval_rule_templates()["approvalRuleTemplateNames"] == []
        assert aws("codepipeline", account, url).list_pipelines()["pipelines"] == []
        assert aws("stepfunctions", account, url).list_state_machines()["stateMachines"] == []
        assert aws("lambda", account, url).list_functions()["Functions"] == []
        assert aws("sqs", account, url).list_queues().get("QueueUrls", []) == []
        assert aws("sns", account, url).list_topics()["Topics"] == []
        assert aws("events", account, url).list_rules()["Rules"] == []
        assert aws("logs", account, url).describe_log_groups()["logGroups"] == []
        assert aws("iam", account, url).list_roles()["Roles"] == []
        kms = aws("kms", account, url)
        assert [a for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith("alias/mlpipe")] == []
        for key in kms.list_keys()["Keys"]:
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if meta["Description"] != "not the bucket key":
                assert meta["KeyState"] == "PendingDeletion", meta


# ------------------------------------------------------------------------------------------------
# Process management and the policy evaluator (fast, no Terraform)
# ------------------------------------------------------------------------------------------------


def test_daemon_is_started_once_reused_and_stopped(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    assert status(state_dir) is None
    url = ensure_running(state_dir)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert ensure_running(state_dir) == url
        info = status(state_dir)
        assert info is not None and info["url"] == url
        assert (state_dir / "emulator.log").exists()
    finally:
        assert stop_running(state_dir) is True
    assert status(state_dir) is None
    assert not is_ready(url)
    assert stop_running(state_dir) is False


def test_dead_record_is_replaced(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "emulator.json").write_text(json.dumps({"pid": 999999, "port": 1}))
    url = ensure_running(state_dir)
    try:
        assert is_ready(url)
    finally:
        stop_running(state_dir)


def test_start_failure_raises_emulator_error_with_child_output() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(EmulatorError) as err:
            Emulator(port=port, start_timeout=20).start()
    assert "exited" in err.value.message
    assert "in use" in err.value.message.lower()


def test_serve_refuses_other_addresses() -> None:
    from mlpipe.emulator.process import serve

    with pytest.raises(EmulatorError):
        serve("0.0.0.0", 5999)


@pytest.mark.parametrize(
    ("condition", "keys", "expected"),
    [
        ({"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, {}, True),
        (
            {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            {"s3:x-amz-server-side-encryption": ["aws:kms"]},
            False,
        ),
        ({"StringEquals": {"s3:x-amz-acl": "private"}}, {}, False),
        ({"StringEqualsIfExists": {"s3:x-amz-acl": "private"}}, {}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:securetransport": ["true"]}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:securetransport": ["false"]}, True),
        ({"Null": {"s3:x-amz-server-side-encryption": "true"}}, {}, True),
        (
            {"Null": {"s3:x-amz-server-side-encryption": "true"}},
            {"s3:x-amz-server-side-encryption": ["AES256"]},
            False,
        ),
        ({"StringLike": {"s3:prefix": ["models/*"]}}, {"s3:prefix": ["models/a"]}, True),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": ["20"]}, False),
        ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {"aws:currenttime": ["x"]}, False),
    ],
)
def test_condition_operators(condition: dict[str, Any], keys: dict[str, list[str]], expected: bool) -> None:
    policy = {
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": condition}]
    }
    verdict = evaluate_bucket_policy(policy, "s3:PutObject", "arn:aws:s3:::b/k", keys)
    assert (verdict == "Deny") is expected


def test_policy_scope_action_resource_and_principal() -> None:
    statement = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::bucket/*",
    }
    policy = {"Statement": [statement]}
    assert evaluate_bucket_policy(policy, "s3:putobject", "arn:aws:s3:::bucket/k", {}) == "Deny"
    assert evaluate_bucket_policy(policy, "s3:GetObject", "arn:aws:s3:::bucket/k", {}) == ""
    assert evaluate_bucket_policy(policy, "s3:PutObject", "arn:aws:s3:::other/k", {}) == ""
    named = {"Statement": [{**statement, "Principal": {"AWS": "arn:aws:iam::1:role/x"}}]}
    assert evaluate_bucket_policy(named, "s3:PutObject", "arn:aws:s3:::bucket/k", {}) == ""
    allow = {"Statement": [{**statement, "Effect": "Allow"}]}
    assert evaluate_bucket_policy(allow, "s3:PutObject", "arn:aws:s3:::bucket/k", {}) == "Allow"
