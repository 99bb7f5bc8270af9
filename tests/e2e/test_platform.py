"""The platform end to end on the local emulator, every command as its own process.

One platform (the foundation and two pipelines) is planned and applied the way a user does it,
`plan` then `apply` as separate processes, while a second process races the gate. The tests then
verify every resource with boto3 in its own account, the isolation between pipelines, the
outputs, convergence, adding and removing a pipeline, and destroy. They run in file order: the
last ones change the platform.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlpipe.core.config import ProjectConfig, load_config
from mlpipe.core.names import TRAINING_REQUEST_FILE
from mlpipe.emulator.process import Emulator
from mlpipe.workflow.clients import Target
from mlpipe.workflow.flow import Workflow
from mlpipe.workflow.workspace import Workspace
from tests.conftest import LOCAL_CONFIG
from tests.e2e.conftest import Cli, TrafficRecorder, make_cli

pytestmark = pytest.mark.e2e

WILDCARD_POLICY = """
data "aws_iam_policy_document" "sneaky" {
  statement {
    sid       = "Everything"
    actions   = ["*"]
    resources = ["*"]
  }
  provider = aws.training
}

resource "aws_iam_role_policy" "sneaky" {
  name     = "sneaky"
  role     = aws_iam_role.training_sagemaker.id
  policy   = data.aws_iam_policy_document.sneaky.json
  provider = aws.training
}
"""


@dataclass
class Platform:
    cli: Cli
    config: ProjectConfig
    target: Target
    outputs: dict[str, dict[str, Any]]
    log: dict[str, str] = field(default_factory=dict)

    def client(self, account: str, service: str) -> Any:
        return self.target.client(self.config, account, service)


def _lambda_names(url: str, account: str, region: str) -> list[str]:
    """Function names in one emulated account and region (moto's x-moto-account-id header)."""
    client = boto3.client(
        "lambda", endpoint_url=url, region_name=region, aws_access_key_id="test", aws_secret_access_key="test"
    )
    client.meta.events.register(
        "before-send.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account)
    )
    return sorted(f["FunctionName"] for f in client.list_functions()["Functions"])


def _ok(result: Any, what: str) -> str:
    assert result.returncode == 0, (
        f"{what} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return str(result.stdout)


def _raced_plan(cli: Cli) -> tuple[str, int, str]:
    """Plan while another process tries to synthesize and then swaps the HCL right after the scan."""
    proc = cli.popen("plan")
    assert proc.stdout is not None
    lines: list[str] = []
    synth_code, synth_err = -1, ""
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("scan: ") and synth_code == -1:
            second = cli.run("synth", timeout=60)  # a second terminal, an editor hook, a CI retry
            synth_code, synth_err = second.returncode, second.stderr
            hcl = cli.project / "cdktf.out" / "stacks" / "churn" / "cdk.tf"
            hcl.write_text(hcl.read_text() + WILDCARD_POLICY)  # and a process that ignores the lock
    assert proc.wait(timeout=900) == 0, "".join(lines[-80:])
    return "".join(lines), synth_code, synth_err


SECOND_ACCOUNT_SET = {  # other accounts, another region, full role ARNs, another branch
    "111111111111": "520000000001",
    "222222222222": "520000000002",
    "333333333333": "520000000003",
}


def _second_account_set() -> str:
    """One pipeline in us-east-1 under three other accounts, deploy roles given as role ARNs."""
    text = LOCAL_CONFIG.read_text().split("[[pipelines]]", 1)[0]
    text = text.replace('name_prefix = "mlpipe"', 'name_prefix = "mlpus"').replace("eu-west-1", "us-east-1")
    for old, new in SECOND_ACCOUNT_SET.items():
        text = text.replace(
            f'id = "{old}"\ndeploy_role = "OrganizationAccountAccessRole"',
            f'id = "{new}"\ndeploy_role = "arn:aws:iam::{new}:role/MlpipeDeployer"',
        )
    return text.replace('branch = "main"', 'branch = "develop"') + '\n[[pipelines]]\nname = "churn"\n'


def _deploy(cli: Cli, log: dict[str, str], race: bool) -> None:
    log["plan-1"] = _ok(cli.run("plan"), "first plan")  # the foundation; pipelines wait for it
    log["apply-1"] = _ok(cli.run("apply"), "first apply")
    if race:
        log["plan-2"], synth_code, log["racing-synth"] = _raced_plan(cli)
        log["racing-synth-code"] = str(synth_code)
    else:
        log["plan-2"] = _ok(cli.run("plan"), "second plan")
    log["apply-2"] = _ok(cli.run("apply"), "second apply")


@pytest.fixture(scope="module")
def platforms(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, recorder: TrafficRecorder
) -> Iterator[tuple[Platform, Platform]]:
    """Two platforms deployed at the same time into one emulator: the normal case of many pipelines."""
    clis = [
        make_cli(tmp_path_factory.mktemp("platform"), emulator, recorder, LOCAL_CONFIG.read_text()),
        make_cli(tmp_path_factory.mktemp("second"), emulator, recorder, _second_account_set()),
    ]
    logs: list[dict[str, str]] = [{}, {}]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [
            pool.submit(_deploy, cli, log, index == 0) for index, (cli, log) in enumerate(zip(clis, logs, strict=True))
        ]:
            done.result()
    result = []
    for cli, log in zip(clis, logs, strict=True):
        outputs = json.loads(_ok(cli.run("output", "--json"), "output"))
        result.append(Platform(cli, load_config(cli.config), Target("emulator", emulator.url), outputs, log))
    yield result[0], result[1]


@pytest.fixture(scope="module")
def platform(platforms: tuple[Platform, Platform]) -> Platform:
    return platforms[0]


def test_the_first_plan_waits_for_the_foundation(platform: Platform) -> None:
    first = platform.log["plan-1"]
    assert "not planned yet: churn, fraud (they read the foundation's outputs)" in first
    assert re.search(r"plan foundation:\n  provider\s+add", first)
    assert "Apply complete! Resources: 12 added" in platform.log["apply-1"]


def test_plan_and_apply_in_separate_processes_never_leave_loopback(
    platform: Platform, recorder: TrafficRecorder
) -> None:
    assert recorder.seen == [], f"requests left for non-loopback addresses: {recorder.seen}"
    for pipeline in ("churn", "fraud"):
        assert f"[{pipeline}] seed: mlpipe-{pipeline}-training-requests:" in platform.log["apply-2"]


def test_a_racing_synth_is_refused_and_the_applied_policies_are_the_scanned_ones(platform: Platform) -> None:
    assert platform.log["racing-synth-code"] == "12"
    assert "another mlpipe command holds this workspace" in platform.log["racing-synth"]
    assert re.search(r"PID \d+ running `mlpipe plan` since", platform.log["racing-synth"])
    iam = platform.client("training", "iam")
    role = "mlpipe-churn-training-sagemaker"
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["sagemaker_training_permissions"]
    document = iam.get_role_policy(RoleName=role, PolicyName="sagemaker_training_permissions")["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    actions = [
        a for s in document["Statement"] for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert "*" not in actions
    assert not platform.cli.project.joinpath(".mlpipe", "audit.log").exists()  # nothing was overridden


@pytest.mark.parametrize("pipeline", ["churn", "fraud"])
def test_each_pipeline_lives_in_its_three_accounts(platform: Platform, pipeline: str) -> None:
    out = platform.outputs[pipeline]
    accounts = {key: account.account_id for key, account in platform.config.accounts.items()}
    assert out["kms_key_arn"].split(":")[4] == accounts["shared"]
    assert out["state_machine_arn"].split(":")[4] == accounts["training"]
    assert out["deployer_role_arn"].split(":")[4] == accounts["production"]

    s3 = platform.client("shared", "s3")
    bucket = out["bucket_name"]
    assert bucket == f"mlpipe-{pipeline}-artifacts-111111111111-eu-west-1"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == out["kms_key_arn"]
    assert (
        s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]["TargetBucket"]
        == (platform.outputs["foundation"]["access_log_bucket"])
    )
    for key in ("data/train/train.csv", "data/validation/validation.csv"):
        assert s3.head_object(Bucket=bucket, Key=key)["SSEKMSKeyId"] == out["kms_key_arn"]

    codecommit = platform.client("shared", "codecommit")
    request = codecommit.get_file(
        repositoryName=out["repository_name"], commitSpecifier=out["branch"], filePath=TRAINING_REQUEST_FILE
    )
    spec = platform.config.pipeline(pipeline)
    assert json.loads(request["fileContent"])["hyperparameters"] == spec.training.hyperparameters
    assert out["branch"] == spec.branch

    stages = platform.client("shared", "codepipeline").get_pipeline(name=out["pipeline_name"])["pipeline"]["stages"]
    assert [s["name"] for s in stages] == ["Source", "Train", "Approve", "Deploy"]
    assert stages[0]["actions"][0]["configuration"]["BranchName"] == spec.branch

    function = platform.client("production", "lambda").get_function(FunctionName=out["deployer_function_name"])
    variables = function["Configuration"]["Environment"]["Variables"]
    assert variables["ENDPOINT_INSTANCE_COUNT"] == str(spec.deploy.endpoint_instance_count)
    assert (
        variables["ROLLBACK_ALARM_NAMES"]
        == f"mlpipe-{pipeline}-endpoint-5xx-errors,mlpipe-{pipeline}-endpoint-model-latency"
    )
    alarms = platform.client("production", "cloudwatch").describe_alarms(AlarmNamePrefix=f"mlpipe-{pipeline}-")
    assert len(alarms["MetricAlarms"]) == 2
    topics = platform.client("shared", "sns").list_topics()["Topics"]
    assert any(t["TopicArn"].endswith(f":mlpipe-{pipeline}-notifications") for t in topics)

    # and nothing of it in the wrong account
    with pytest.raises(ClientError):
        platform.client("shared", "lambda").get_function(FunctionName=out["deployer_function_name"])
    with pytest.raises(ClientError, match="NoSuchEntity"):
        platform.client("shared", "iam").get_role(RoleName=f"mlpipe-{pipeline}-training-sagemaker")


def test_buckets_deny_plaintext_and_another_pipelines_key(platform: Platform) -> None:
    s3 = platform.client("shared", "s3")
    churn, fraud = platform.outputs["churn"], platform.outputs["fraud"]
    bucket = churn["bucket_name"]
    with pytest.raises(ClientError, match=r"AccessDenied|403"):
        s3.put_object(Bucket=bucket, Key="data/plain.csv", Body=b"1,2")
    with pytest.raises(ClientError, match=r"AccessDenied|403"):
        s3.put_object(Bucket=bucket, Key="data/aes.csv", Body=b"1,2", ServerSideEncryption="AES256")
    # isolation, enforced by the bucket policy itself: fraud's key is refused in churn's bucket
    with pytest.raises(ClientError, match=r"AccessDenied|403"):
        s3.put_object(
            Bucket=bucket,
            Key="data/x.csv",
            Body=b"1,2",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=fraud["kms_key_arn"],
        )
    s3.put_object(
        Bucket=bucket, Key="data/ok.csv", Body=b"1,2", ServerSideEncryption="aws:kms", SSEKMSKeyId=churn["kms_key_arn"]
    )
    s3.delete_object(Bucket=bucket, Key="data/ok.csv")


def test_outputs_are_keyed_by_stack(platform: Platform) -> None:
    assert sorted(platform.outputs) == ["churn", "foundation", "fraud"]
    assert platform.outputs["fraud"]["endpoint_name"] == "mlpipe-fraud-endpoint"


def test_a_second_account_set_and_region_converges_in_the_same_emulator(
    platforms: tuple[Platform, Platform], emulator: Emulator
) -> None:
    first, second = platforms
    result = second.cli.run("plan", "--detailed-exitcode")
    assert result.returncode == 0, result.stdout[-3000:]
    production, region = SECOND_ACCOUNT_SET["333333333333"], "us-east-1"
    assert _lambda_names(emulator.url, production, region) == ["mlpus-churn-deployer"]
    assert _lambda_names(emulator.url, production, "eu-west-1") == []
    assert _lambda_names(emulator.url, "333333333333", region) == []
    assert second.outputs["churn"]["deployer_role_arn"].startswith(f"arn:aws:iam::{production}:role/")
    assert "[churn] seed: mlpus-churn-training-requests:" in second.log["apply-2"]
    assert first.outputs["churn"]["branch"] == "main" and second.outputs["churn"]["branch"] == "develop"


def test_objects_outside_any_state_are_named_in_seconds_and_adopted(platform: Platform, emulator: Emulator) -> None:
    """A killed apply (or a console click) leaves objects with our names that no state knows."""
    flow = Workflow(
        platform.cli.config, Workspace(platform.cli.project), echo=lambda _l: None, emulator_url=emulator.url
    )
    orphaned = [
        "aws_cloudwatch_log_group.production_deployer",
        "aws_iam_role.production_sagemaker",
        "aws_kms_key.production_deployer",  # no name: found through its alias, else a second key is made
    ]
    kms = platform.client("production", "kms")
    key_id = _alias_target(kms, "alias/mlpipe-churn-deployer")
    tf = flow.init("churn", quiet=True)
    for address in orphaned:
        assert tf.run(["state", "rm", address]).returncode == 0
    started = time.monotonic()
    refused = platform.cli.run("plan", "--pipeline", "churn")
    assert refused.returncode == 14, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert (
        "aws_iam_role.production_sagemaker = mlpipe-churn-production-sagemaker (account production)" in refused.stderr
    )
    assert "aws_cloudwatch_log_group.production_deployer = /aws/lambda/mlpipe-churn-deployer" in refused.stderr
    assert f"aws_kms_key.production_deployer = {key_id} (account production)" in refused.stderr
    assert "mlpipe adopt --pipeline churn" in refused.stderr
    assert time.monotonic() - started < 180
    adopted = platform.cli.run("adopt", "--pipeline", "churn")
    assert adopted.returncode == 0, adopted.stdout[-3000:] + adopted.stderr[-3000:]
    imports = re.search(r"plan churn:\n  provider .* import\n(?:.*\n)*?  total(?:\s+\d+){4}\s+(\d+)", adopted.stdout)
    assert imports and imports.group(1) == "3", adopted.stdout[-3000:]
    assert platform.cli.run("apply", "--pipeline", "churn").returncode == 0
    # both pipelines converge: the adopted one, and its neighbour that nothing touched
    converged = platform.cli.run("plan", "--pipeline", "churn", "--pipeline", "fraud", "--detailed-exitcode")
    assert converged.returncode == 0, converged.stdout[-3000:]
    assert "plan churn:\n  No resource changes." in converged.stdout
    assert "plan fraud:\n  No resource changes." in converged.stdout
    assert set(orphaned) <= set(flow.init("churn", quiet=True).state_list())
    assert _alias_target(kms, "alias/mlpipe-churn-deployer") == key_id  # the same key: none was added


def _alias_target(kms: Any, name: str) -> str:
    (alias,) = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == name]
    return str(alias["TargetKeyId"])


def test_an_added_pipeline_plans_only_its_own_stack_and_a_removed_one_is_orphaned_until_destroyed(
    platform: Platform,
) -> None:
    """One edit adds `ads` and removes `fraud`: the converged stacks plan no change, `fraud` is kept."""
    config = platform.cli.config
    original = config.read_text()
    edited = re.sub(r'\[\[pipelines\]\]\nname = "fraud".*', "", original, flags=re.S)
    config.write_text(edited + '\n[[pipelines]]\nname = "ads"\n')
    lambdas = platform.client("production", "lambda")
    try:
        result = platform.cli.run("plan", "--detailed-exitcode")
        assert result.returncode == 2, result.stdout[-3000:]
        for stack in ("foundation", "churn"):  # converged; a new pipeline changes nothing of theirs
            assert f"plan {stack}:\n  No resource changes." in result.stdout
        added = re.search(r"plan ads:\n(?:.*\n)*?  total\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", result.stdout)
        assert added and int(added.group(1)) > 40 and added.groups()[1:] == ("0", "0", "0")
        assert "plan fraud:" not in result.stdout
        assert "orphaned stack 'fraud'" in result.stdout and "mlpipe destroy --pipeline fraud" in result.stdout
        assert lambdas.get_function(FunctionName="mlpipe-fraud-deployer")  # nothing was destroyed
        destroyed = platform.cli.run("destroy", "--pipeline", "fraud", "--yes")
        assert destroyed.returncode == 0, destroyed.stdout[-3000:]
        with pytest.raises(ClientError):
            lambdas.get_function(FunctionName="mlpipe-fraud-deployer")
        assert lambdas.get_function(FunctionName="mlpipe-churn-deployer")  # its neighbour is untouched
        with pytest.raises(ClientError):  # `ads` was only planned
            lambdas.get_function(FunctionName="mlpipe-ads-deployer")
        # its state is empty now: no longer an orphan (no Terraform run needed to tell)
        flow = Workflow(config, Workspace(platform.cli.project), echo=lambda _l: None)
        assert flow.orphans() == []
    finally:
        config.write_text(original)


def test_destroy_removes_everything(platform: Platform) -> None:
    started = time.monotonic()
    result = platform.cli.run("destroy", "--yes")
    assert result.returncode == 0, result.stdout[-3000:]
    assert time.monotonic() - started < 600
    assert platform.client("shared", "s3").list_buckets()["Buckets"] == []
    assert platform.client("shared", "codepipeline").list_pipelines()["pipelines"] == []
    assert platform.client("production", "lambda").list_functions()["Functions"] == []
    for account in ("shared", "training", "production"):
        assert platform.client(account, "iam").list_roles()["Roles"] == []
        keys = platform.client(account, "kms")
        states = [keys.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] for k in keys.list_keys()["Keys"]]
        assert all(state == "PendingDeletion" for state in states)
