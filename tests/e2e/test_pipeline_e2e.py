"""End to end on the local emulator: plan, apply, verify per account, re-plan, destroy.

Every resource is looked up with boto3 *in the account it belongs to* (clients assume that
account's deploy role, as Terraform does), and looked for in the wrong account too.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlpipe.core.config import PipelineConfig
from mlpipe.core.errors import StalePlan
from mlpipe.core.names import TRAINING_REQUEST_FILE
from mlpipe.emulator.process import Emulator
from mlpipe.workflow.clients import account_client
from mlpipe.workflow.flow import Workflow
from mlpipe.workflow.workspace import Workspace
from tests.conftest import LOCAL_CONFIG

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def deployed(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workflow, dict[str, Any]]]:
    project = tmp_path_factory.mktemp("project")
    config_path = project / "pipeline.toml"
    shutil.copy(LOCAL_CONFIG, config_path)
    lines: list[str] = []
    flow = Workflow(config_path, Workspace(project), echo=lines.append, emulator_url=emulator.url)
    first = flow.plan()
    assert first.changes_present
    assert "shared" in first.summary and "training" in first.summary and "production" in first.summary

    # A plan is applied only while what was scanned is unchanged.
    original = config_path.read_text()
    config_path.write_text(original + "\n# edited after the plan\n")
    with pytest.raises(StalePlan):
        flow.apply()
    config_path.write_text(original)

    outputs = flow.apply()
    yield flow, outputs


def _client(config: PipelineConfig, account: str, service: str, url: str) -> Any:
    return account_client(config, account, service, url)


def _account_of(arn: str) -> str:
    return arn.split(":")[4]


def test_outputs_come_from_the_three_accounts(deployed: tuple[Workflow, dict[str, Any]]) -> None:
    flow, outputs = deployed
    accounts = {k: a.account_id for k, a in flow.config.accounts.items()}
    assert _account_of(outputs["kms_key_arn"]) == accounts["shared"]
    assert _account_of(outputs["pipeline_role_arn"]) == accounts["shared"]
    assert _account_of(outputs["training_cross_account_role_arn"]) == accounts["training"]
    assert _account_of(outputs["state_machine_arn"]) == accounts["training"]
    assert _account_of(outputs["production_cross_account_role_arn"]) == accounts["production"]
    assert outputs["xgboost_image_uri"].endswith(f"/sagemaker-xgboost:{flow.config.training.xgboost_version}")


def test_shared_account_key_bucket_repository_pipeline(
    deployed: tuple[Workflow, dict[str, Any]], emulator: Emulator
) -> None:
    flow, outputs = deployed
    cfg, url = flow.config, emulator.url
    kms = _client(cfg, "shared", "kms", url)
    key = kms.describe_key(KeyId=outputs["kms_key_arn"])["KeyMetadata"]
    assert key["KeyManager"] == "CUSTOMER" and key["Enabled"]
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    key_policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    use = next(s for s in key_policy["Statement"] if s["Sid"] == "AllowKeyUseByNamedRoles")
    assert outputs["pipeline_role_arn"] in use["Principal"]["AWS"]
    assert outputs["training_sagemaker_role_arn"] in use["Principal"]["AWS"]

    s3 = _client(cfg, "shared", "s3", url)
    bucket = outputs["bucket_name"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == outputs["kms_key_arn"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    sids = {s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]}
    assert {"DenyInsecureTransport", "DenyUnencryptedUploads", "DenyUploadsWithOtherKeys"} <= sids
    for key_name in ("data/train/train.csv", "data/validation/validation.csv"):
        head = s3.head_object(Bucket=bucket, Key=key_name)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == outputs["kms_key_arn"]

    repo = _client(cfg, "shared", "codecommit", url)
    assert repo.get_repository(repositoryName=outputs["repository_name"])["repositoryMetadata"]["Arn"]
    request = repo.get_file(
        repositoryName=outputs["repository_name"], commitSpecifier=outputs["branch"], filePath=TRAINING_REQUEST_FILE
    )
    assert json.loads(request["fileContent"])["hyperparameters"] == cfg.training.hyperparameters

    pipeline = _client(cfg, "shared", "codepipeline", url).get_pipeline(name=outputs["pipeline_name"])["pipeline"]
    assert [s["name"] for s in pipeline["stages"]] == ["Source", "Train", "Approve", "Deploy"]
    assert pipeline["artifactStore"]["encryptionKey"] == {"id": outputs["kms_key_arn"], "type": "KMS"}
    train, deploy = pipeline["stages"][1]["actions"][0], pipeline["stages"][3]["actions"][0]
    assert train["roleArn"] == outputs["training_cross_account_role_arn"]
    assert deploy["roleArn"] == outputs["production_cross_account_role_arn"]


def test_bucket_policy_denies_unencrypted_and_wrong_key_uploads(
    deployed: tuple[Workflow, dict[str, Any]], emulator: Emulator
) -> None:
    flow, outputs = deployed
    s3 = _client(flow.config, "shared", "s3", emulator.url)
    bucket = outputs["bucket_name"]
    with pytest.raises(ClientError, match=r"AccessDenied|403"):
        s3.put_object(Bucket=bucket, Key="data/plain.csv", Body=b"1,2")
    with pytest.raises(ClientError, match=r"AccessDenied|403"):
        s3.put_object(Bucket=bucket, Key="data/aes.csv", Body=b"1,2", ServerSideEncryption="AES256")
    s3.put_object(
        Bucket=bucket,
        Key="data/ok.csv",
        Body=b"1,2",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=outputs["kms_key_arn"],
    )
    s3.delete_object(Bucket=bucket, Key="data/ok.csv")


def test_training_account_roles_and_state_machine(
    deployed: tuple[Workflow, dict[str, Any]], emulator: Emulator
) -> None:
    flow, outputs = deployed
    iam = _client(flow.config, "training", "iam", emulator.url)
    role = iam.get_role(RoleName=outputs["training_cross_account_role_arn"].split("/")[-1])["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"AWS": outputs["pipeline_role_arn"]}
    machine = _client(flow.config, "training", "stepfunctions", emulator.url).describe_state_machine(
        stateMachineArn=outputs["state_machine_arn"]
    )
    definition = json.loads(machine["definition"])
    assert definition["States"]["TrainModel"]["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"
    assert machine["loggingConfiguration"]["level"] == "ALL"
    # the training role does not exist in the shared account
    with pytest.raises(ClientError, match="NoSuchEntity"):
        _client(flow.config, "shared", "iam", emulator.url).get_role(RoleName=role["RoleName"])


def test_production_account_deployer(deployed: tuple[Workflow, dict[str, Any]], emulator: Emulator) -> None:
    flow, outputs = deployed
    fn = _client(flow.config, "production", "lambda", emulator.url).get_function(
        FunctionName=outputs["deployer_function_name"]
    )["Configuration"]
    assert fn["Runtime"] == "python3.12" and fn["TracingConfig"]["Mode"] == "Active"
    assert _account_of(fn["FunctionArn"]) == flow.config.production.account_id
    assert fn["Environment"]["Variables"]["ENDPOINT_NAME"] == outputs["endpoint_name"]
    with pytest.raises(ClientError):
        _client(flow.config, "shared", "lambda", emulator.url).get_function(
            FunctionName=outputs["deployer_function_name"]
        )


def test_seed_is_idempotent(deployed: tuple[Workflow, dict[str, Any]]) -> None:
    flow, outputs = deployed
    lines: list[str] = []
    flow.echo = lines.append
    flow.seed(outputs)
    assert any("already present, left unchanged" in line for line in lines)


def test_second_plan_shows_no_changes_then_destroy_leaves_nothing(
    deployed: tuple[Workflow, dict[str, Any]], emulator: Emulator
) -> None:
    flow, _outputs = deployed
    assert flow.plan().changes_present is False
    flow.destroy()
    cfg, url = flow.config, emulator.url
    assert _client(cfg, "shared", "s3", url).list_buckets()["Buckets"] == []
    assert _client(cfg, "shared", "codepipeline", url).list_pipelines()["pipelines"] == []
    assert _client(cfg, "training", "stepfunctions", url).list_state_machines()["stateMachines"] == []
    assert _client(cfg, "production", "lambda", url).list_functions()["Functions"] == []
    for account in ("shared", "training", "production"):
        assert _client(cfg, account, "iam", url).list_roles()["Roles"] == []
        keys = _client(cfg, account, "kms", url)
        states = [keys.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] for k in keys.list_keys()["Keys"]]
        assert all(state == "PendingDeletion" for state in states)
