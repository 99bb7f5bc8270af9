"""``mlpipe adopt``'s lookups against the emulator: what exists under the stack's names, with import ids.

Why the emulator: the lookups are AWS calls per account (through each account's deploy role), and
the import ids must be the ones the provider accepts. Objects are created out of band with boto3,
the way an interrupted apply or a console click leaves them; the rendered import blocks are then
checked by Terraform itself (``fmt`` and ``validate`` next to the real synthesized stack).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlpipe.core.config import ProjectConfig, load_config
from mlpipe.emulator.process import Emulator
from mlpipe.engine.terraform import Terraform, default_mirror, engine_env, find_engine, write_cli_config
from mlpipe.synth.runner import SynthResult
from mlpipe.workflow.adopt import (
    Adoption,
    Import,
    KeyCandidate,
    Skip,
    adoptable,
    blocking_leftovers,
    describe,
    parse_key_choice,
    pick_key_command,
    render_imports,
)
from mlpipe.workflow.clients import Target
from tests.conftest import LOCAL_CONFIG

REGION = "eu-west-1"
SHARED, TRAINING, PRODUCTION = "111111111111", "222222222222", "333333333333"
BUCKET = f"mlpipe-churn-artifacts-{SHARED}-{REGION}"
ARTIFACTS_DESCRIPTION = "mlpipe-churn: training data, models and pipeline artifacts"
DEPLOYER_DESCRIPTION = "mlpipe-churn: deployer environment and dead-letter queue"
LOGS_DESCRIPTION = "mlpipe: CloudWatch Logs of every pipeline in this account"
PIPELINE_TARGET_ID = "terraform-20240101000000000000000001"
TOPIC_TARGET_ID = "terraform-20240101000000000000000002"


def _tags(account: str, stack: str) -> list[dict[str, str]]:
    return [
        {"TagKey": "ManagedBy", "TagValue": "mlpipe"},
        {"TagKey": "Account", "TagValue": account},
        {"TagKey": "Stack", "TagValue": stack},
    ]


def _key(kms: Any, description: str, tags: list[dict[str, str]] | None = None) -> str:
    """A symmetric key as Terraform creates it (moto omits KeyUsage unless it is given)."""
    extra = {"Tags": tags} if tags else {}
    return str(kms.create_key(Description=description, KeyUsage="ENCRYPT_DECRYPT", **extra)["KeyMetadata"]["KeyId"])


@pytest.fixture(scope="module")
def config() -> ProjectConfig:
    return load_config(LOCAL_CONFIG)


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with Emulator() as emu:
        yield Target("emulator", emu.url)


@pytest.fixture(scope="module")
def world(config: ProjectConfig, target: Target) -> dict[str, str]:
    """Objects left behind as if by a killed apply; returns the ids only AWS knows (keys, queue URL)."""

    def client(account: str, service: str) -> Any:
        return target.client(config, account, service)

    ids: dict[str, str] = {}
    # production: the deployer (role + inline policy, log group, function, queue), a key, one alarm
    iam = client("production", "iam")
    lambda_principal = {"Service": "lambda.amazonaws.com"}
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": lambda_principal, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName="mlpipe-churn-deployer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}
    iam.put_role_policy(
        RoleName="mlpipe-churn-deployer", PolicyName="deployer_permissions", PolicyDocument=json.dumps(allow)
    )
    client("production", "logs").create_log_group(logGroupName="/aws/lambda/mlpipe-churn-deployer")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("deployer.py", "def handler(event, context):\n    return None\n")
    client("production", "lambda").create_function(
        FunctionName="mlpipe-churn-deployer",
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="deployer.handler",
        Code={"ZipFile": package.getvalue()},
    )
    ids["queue"] = client("production", "sqs").create_queue(QueueName="mlpipe-churn-deployer-dlq")["QueueUrl"]
    client("production", "cloudwatch").put_metric_alarm(
        AlarmName="mlpipe-churn-endpoint-5xx-errors",
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    kms = client("production", "kms")
    ids["deployer_key"] = _key(kms, DEPLOYER_DESCRIPTION, _tags("production", "churn"))
    # Keys that must never be candidates: pending deletion, disabled, other description, other stack.
    kms.schedule_key_deletion(
        KeyId=_key(kms, DEPLOYER_DESCRIPTION, _tags("production", "churn")), PendingWindowInDays=7
    )
    kms.disable_key(KeyId=_key(kms, DEPLOYER_DESCRIPTION, _tags("production", "churn")))
    _key(kms, "something else", _tags("production", "churn"))
    _key(kms, DEPLOYER_DESCRIPTION, _tags("production", "fraud"))

    # shared: the artifact bucket (two settings) and one data object, the key with its alias,
    # the repository with its approval template, two rules with targets, the topic
    s3 = client("shared", "s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_object(Bucket=BUCKET, Key="data/train/train.csv", Body=b"1,0.5\n")
    kms = client("shared", "kms")
    ids["artifacts_key"] = _key(kms, ARTIFACTS_DESCRIPTION)
    kms.create_alias(AliasName="alias/mlpipe-churn-artifacts", TargetKeyId=ids["artifacts_key"])
    # A tagged look-alike: the alias decides, so it is neither imported nor a candidate.
    _key(kms, ARTIFACTS_DESCRIPTION, _tags("shared", "churn"))
    codecommit = client("shared", "codecommit")
    codecommit.create_repository(repositoryName="mlpipe-churn-training-requests")
    codecommit.create_approval_rule_template(
        approvalRuleTemplateName="mlpipe-churn-require-review",
        approvalRuleTemplateContent=json.dumps(
            {"Version": "2018-11-08", "Statements": [{"Type": "Approvers", "NumberOfApprovalsNeeded": 2}]}
        ),
    )
    codecommit.associate_approval_rule_template_with_repository(
        approvalRuleTemplateName="mlpipe-churn-require-review", repositoryName="mlpipe-churn-training-requests"
    )
    topic = client("shared", "sns").create_topic(Name="mlpipe-churn-notifications")["TopicArn"]
    events = client("shared", "events")
    pattern = json.dumps({"source": ["aws.codecommit"]})
    events.put_rule(Name="mlpipe-churn-on-push", EventPattern=pattern)
    pipeline_arn = f"arn:aws:codepipeline:{REGION}:{SHARED}:mlpipe-churn-pipeline"
    events.put_targets(Rule="mlpipe-churn-on-push", Targets=[{"Id": PIPELINE_TARGET_ID, "Arn": pipeline_arn}])
    events.put_rule(Name="mlpipe-churn-notify", EventPattern=pattern)
    events.put_targets(
        Rule="mlpipe-churn-notify",
        Targets=[
            {"Id": "added-by-hand", "Arn": f"arn:aws:sqs:{REGION}:{SHARED}:somewhere-else"},
            {"Id": TOPIC_TARGET_ID, "Arn": topic},
        ],
    )

    # training: the state machine; two keys that both look like the foundation's logs key
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    ids["state_machine"] = client("training", "stepfunctions").create_state_machine(
        name="mlpipe-churn-training",
        definition=definition,
        roleArn=f"arn:aws:iam::{TRAINING}:role/mlpipe-churn-training-sfn",
    )["stateMachineArn"]
    kms = client("training", "kms")
    for number in (1, 2):
        ids[f"logs_key_{number}"] = _key(kms, LOGS_DESCRIPTION, _tags("training", "foundation"))
    ids["topic"] = topic
    return ids


@pytest.fixture(scope="module")
def churn(local_synth: SynthResult, config: ProjectConfig, target: Target, world: dict[str, str]) -> Adoption:
    return adoptable(config, "churn", local_synth.manifest("churn"), set(), target)


def _expected_churn(world: dict[str, str]) -> list[Import]:
    topic = f"arn:aws:sns:{REGION}:{SHARED}:mlpipe-churn-notifications"
    return [
        Import("aws_cloudwatch_event_rule.shared_notify_runs", "mlpipe-churn-notify", "shared"),
        Import("aws_cloudwatch_event_rule.shared_pipeline_trigger", "mlpipe-churn-on-push", "shared"),
        Import("aws_cloudwatch_event_target.shared_notify_runs", f"mlpipe-churn-notify/{TOPIC_TARGET_ID}", "shared"),
        Import(
            "aws_cloudwatch_event_target.shared_pipeline_trigger",
            f"mlpipe-churn-on-push/{PIPELINE_TARGET_ID}",
            "shared",
        ),
        Import("aws_cloudwatch_log_group.production_deployer", "/aws/lambda/mlpipe-churn-deployer", "production"),
        Import(
            "aws_cloudwatch_metric_alarm.production_endpoint_errors", "mlpipe-churn-endpoint-5xx-errors", "production"
        ),
        Import(
            "aws_codecommit_approval_rule_template.shared_training_requests", "mlpipe-churn-require-review", "shared"
        ),
        Import(
            "aws_codecommit_approval_rule_template_association.shared_training_requests",
            "mlpipe-churn-require-review,mlpipe-churn-training-requests",
            "shared",
        ),
        Import("aws_codecommit_repository.shared_training_requests", "mlpipe-churn-training-requests", "shared"),
        Import("aws_iam_role.production_deployer", "mlpipe-churn-deployer", "production"),
        Import("aws_iam_role_policy.production_deployer", "mlpipe-churn-deployer:deployer_permissions", "production"),
        Import("aws_kms_alias.shared_artifacts", "alias/mlpipe-churn-artifacts", "shared"),
        Import("aws_kms_key.production_deployer", world["deployer_key"], "production"),
        Import("aws_kms_key.shared_artifacts", world["artifacts_key"], "shared"),
        Import("aws_lambda_function.production_deployer", "mlpipe-churn-deployer", "production"),
        Import("aws_s3_bucket.shared_artifacts", BUCKET, "shared"),
        Import("aws_s3_bucket_public_access_block.shared_artifacts", BUCKET, "shared"),
        Import("aws_s3_bucket_versioning.shared_artifacts", BUCKET, "shared"),
        Import("aws_s3_object.shared_artifacts_train_data", f"{BUCKET}/data/train/train.csv", "shared"),
        Import("aws_sfn_state_machine.training_state_machine", world["state_machine"], "training"),
        Import("aws_sns_topic.shared_notifications", topic, "shared"),
        Import("aws_sns_topic_policy.shared_notifications", topic, "shared"),
        Import("aws_sqs_queue.production_deployer", world["queue"], "production"),
    ]


def test_everything_left_behind_is_found_with_the_provider_import_ids(churn: Adoption, world: dict[str, str]) -> None:
    # Absent objects (the pipeline, the other roles, the validation object, unconfigured bucket
    # settings, the approvals rule) are not listed at all; nothing needed a guess.
    assert churn.imports == _expected_churn(world)
    assert churn.candidates == []
    assert churn.skipped == []
    assert world["state_machine"] == f"arn:aws:states:{REGION}:{TRAINING}:stateMachine:mlpipe-churn-training"
    assert "alias/mlpipe-churn-artifacts" in churn.notes["aws_kms_key.shared_artifacts"]
    assert "only enabled key" in churn.notes["aws_kms_key.production_deployer"]


def test_a_plan_stops_for_leftovers_whose_create_fails_or_duplicates(churn: Adoption, world: dict[str, str]) -> None:
    """Named objects whose create fails, and keys: creating a key next to a leftover makes a second key."""
    blocking = blocking_leftovers(churn)
    assert f"aws_kms_key.production_deployer = {world['deployer_key']} (account production)" in blocking
    assert f"aws_kms_key.shared_artifacts = {world['artifacts_key']} (account shared)" in blocking
    assert "aws_iam_role.production_deployer = mlpipe-churn-deployer (account production)" in blocking
    assert f"aws_s3_bucket.shared_artifacts = {BUCKET} (account shared)" in blocking
    # written with put calls, so applying over them converges: adoptable, but no reason to stop
    settled = {"aws_s3_bucket_versioning.", "aws_iam_role_policy.", "aws_sns_topic_policy.", "aws_s3_object."}
    assert not [line for line in blocking if line.startswith(tuple(settled))]
    assert sorted(line.split(" = ")[0] for line in blocking) == [
        "aws_cloudwatch_log_group.production_deployer",
        "aws_codecommit_approval_rule_template.shared_training_requests",
        "aws_codecommit_repository.shared_training_requests",
        "aws_iam_role.production_deployer",
        "aws_kms_alias.shared_artifacts",
        "aws_kms_key.production_deployer",
        "aws_kms_key.shared_artifacts",
        "aws_lambda_function.production_deployer",
        "aws_s3_bucket.shared_artifacts",
        "aws_sfn_state_machine.training_state_machine",
    ]


def test_several_leftover_keys_stop_a_plan_each_named(
    local_synth: SynthResult, config: ProjectConfig, target: Target, world: dict[str, str]
) -> None:
    adoption = adoptable(config, "foundation", local_synth.manifest("foundation"), set(), target)
    assert sorted(blocking_leftovers(adoption)) == sorted(
        f"aws_kms_key.training_logs = {world[key]} (account training, one of several keys)"
        for key in ("logs_key_1", "logs_key_2")
    )
    assert blocking_leftovers(Adoption(stack="foundation")) == []


def test_what_the_state_already_has_is_not_listed(
    local_synth: SynthResult, config: ProjectConfig, target: Target, world: dict[str, str]
) -> None:
    in_state = {
        "aws_iam_role.production_deployer",
        "aws_s3_bucket.shared_artifacts",
        "aws_kms_key.shared_artifacts",
        "aws_cloudwatch_event_rule.shared_pipeline_trigger",
    }
    adoption = adoptable(config, "churn", local_synth.manifest("churn"), in_state, target)
    expected = [i for i in _expected_churn(world) if i.address not in in_state]
    assert adoption.imports == expected
    # Dependants are still adopted: their names come from the manifest, not from the state.
    addresses = {i.address for i in adoption.imports}
    assert {"aws_iam_role_policy.production_deployer", "aws_s3_bucket_versioning.shared_artifacts"} <= addresses
    assert "aws_cloudwatch_event_target.shared_pipeline_trigger" in addresses


def test_several_matching_keys_are_candidates_and_never_imported(
    local_synth: SynthResult, config: ProjectConfig, target: Target, world: dict[str, str]
) -> None:
    adoption = adoptable(config, "foundation", local_synth.manifest("foundation"), set(), target)
    assert adoption.imports == []  # the access-log bucket and the production logs key do not exist
    assert adoption.skipped == []
    ids = sorted(c.key_id for c in adoption.candidates)
    assert ids == sorted([world["logs_key_1"], world["logs_key_2"]])
    assert {(c.address, c.account, c.description) for c in adoption.candidates} == {
        ("aws_kms_key.training_logs", "training", LOGS_DESCRIPTION)
    }
    assert all(datetime.fromisoformat(c.created) for c in adoption.candidates)

    chosen = world["logs_key_2"]
    picked = adoptable(
        config, "foundation", local_synth.manifest("foundation"), set(), target, {"aws_kms_key.training_logs": chosen}
    )
    assert picked.imports == [Import("aws_kms_key.training_logs", chosen, "training")]
    assert picked.candidates == []

    wrong = adoptable(
        config,
        "foundation",
        local_synth.manifest("foundation"),
        set(),
        target,
        {"aws_kms_key.training_logs": world["deployer_key"]},
    )
    assert wrong.imports == []
    assert [s.address for s in wrong.skipped] == ["aws_kms_key.training_logs"]
    assert "not an enabled key tagged for this stack" in wrong.skipped[0].reason


def test_keys_an_alias_of_the_stack_already_targets_are_not_candidates(config: ProjectConfig, target: Target) -> None:
    kms = target.client(config, "shared", "kms")
    kms.create_alias(
        AliasName="alias/exclusion-a", TargetKeyId=_key(kms, "exclusion: two keys", _tags("shared", "exclusion"))
    )
    other = _key(kms, "exclusion: two keys", _tags("shared", "exclusion"))
    manifest = {
        "resources": {
            "aws_kms_key.a": {"provider": "aws.shared", "description": "exclusion: two keys"},
            "aws_kms_alias.a": {
                "provider": "aws.shared",
                "name": "alias/exclusion-a",
                "target_key_id": "${aws_kms_key.a.key_id}",
            },
            "aws_kms_key.b": {"provider": "aws.shared", "description": "exclusion: two keys"},
        }
    }
    adoption = adoptable(config, "exclusion", manifest, {"aws_kms_key.a", "aws_kms_alias.a"}, target)
    assert adoption.imports == [Import("aws_kms_key.b", other, "shared")]
    assert adoption.candidates == []

    # An alias that points at a key pending deletion: that key cannot be imported, and is not guessed.
    doomed = _key(kms, "exclusion: two keys", _tags("shared", "exclusion"))
    kms.create_alias(AliasName="alias/exclusion-c", TargetKeyId=doomed)
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    manifest["resources"]["aws_kms_key.c"] = {"provider": "aws.shared", "description": "exclusion: two keys"}
    manifest["resources"]["aws_kms_alias.c"] = {
        "provider": "aws.shared",
        "name": "alias/exclusion-c",
        "target_key_id": "${aws_kms_key.c.arn}",
    }
    adoption = adoptable(config, "exclusion", manifest, {"aws_kms_key.a", "aws_kms_alias.a", "aws_kms_key.b"}, target)
    assert adoption.imports == [Import("aws_kms_alias.c", "alias/exclusion-c", "shared")]
    assert [s.address for s in adoption.skipped] == ["aws_kms_key.c"]
    assert "pending deletion" in adoption.skipped[0].reason


def test_what_cannot_be_decided_is_skipped_with_a_reason(
    config: ProjectConfig, target: Target, world: dict[str, str]
) -> None:
    manifest = {
        "resources": {
            "aws_iam_role_policy.dangling": {
                "provider": "aws.production",
                "name": "p",
                "role": "${aws_iam_role.missing.id}",
            },
            "aws_iam_role_policy.computed": {
                "provider": "aws.production",
                "name": "p",
                "role": "${aws_iam_role.deployer.unique_id}",
            },
            "aws_iam_role.deployer": {"provider": "aws.production", "name": "mlpipe-churn-deployer"},
            "aws_ecr_repository.images": {"provider": "aws.shared", "name": "images"},
            "aws_s3_bucket_acl.artifacts": {"provider": "aws.shared", "bucket": BUCKET},
            "aws_s3_bucket_cors_configuration.gone": {"provider": "aws.shared", "bucket": "no-such-bucket-here"},
            "aws_sqs_queue.elsewhere": {"provider": "aws.nowhere", "name": "q"},
            "data.aws_caller_identity.me": {"provider": "aws.shared"},
        }
    }
    adoption = adoptable(config, "odd", manifest, set(), target)
    assert adoption.imports == [Import("aws_iam_role.deployer", "mlpipe-churn-deployer", "production")]
    reasons = dict(adoption.skipped)
    assert set(reasons) == {
        "aws_iam_role_policy.dangling",
        "aws_iam_role_policy.computed",
        "aws_ecr_repository.images",
        "aws_s3_bucket_acl.artifacts",
        "aws_sqs_queue.elsewhere",
    }  # the CORS setting's bucket does not exist: nothing to adopt, nothing to say
    assert "aws_iam_role.missing, which is not in this stack" in reasons["aws_iam_role_policy.dangling"]
    assert "only known once the object exists" in reasons["aws_iam_role_policy.computed"]
    assert "cannot look up aws_ecr_repository" in reasons["aws_ecr_repository.images"]
    assert "no import needed" in reasons["aws_s3_bucket_acl.artifacts"]
    assert "none of the configured accounts" in reasons["aws_sqs_queue.elsewhere"]


def _run(argv: list[str], cwd: Path, env: dict[str, str], text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, input=text, capture_output=True, text=True, timeout=300, check=False)


def test_rendered_imports_are_canonical_hcl(churn: Adoption, tmp_path: Path) -> None:
    engine = find_engine(os.environ)
    odd = Adoption(
        stack="churn",
        imports=[
            Import("aws_s3_object.x", 'b/we"ird ${x} %{y}\\key', "shared"),
            Import("aws_iam_role.a", "r", "shared"),
        ],
    )
    for adoption in (churn, odd, Adoption(stack="churn")):
        text = render_imports(adoption, now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
        formatted = _run(
            [*engine.argv_prefix, "fmt", "-no-color", "-"], tmp_path, engine_env(engine.kind, os.environ), text
        )
        assert formatted.returncode == 0, formatted.stderr
        assert formatted.stdout == text  # already what `terraform fmt` writes
    text = render_imports(odd, now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert text.startswith("# Written by `mlpipe adopt` at 2025-01-02T03:04:05Z for stack churn.")
    assert text.index("aws_iam_role.a") < text.index("aws_s3_object.x")  # sorted
    assert 'id       = "b/we\\"ird $${x} %%{y}\\\\key"' in text
    assert "  provider = aws.shared\n" in text


def _stack_copy(local_synth: SynthResult, adoption: Adoption, tmp_path: Path, backend: bool = False) -> Terraform:
    """The synthesized churn stack with the rendered blocks as imports.tf, initialised from the mirror.

    With ``backend`` the local backend keeps its state in the copy (a plan needs one; validate not).
    """
    stack = tmp_path / "churn"
    shutil.copytree(local_synth.stack_dir("churn"), stack)
    (stack / "imports.tf").write_text(render_imports(adoption), encoding="utf-8")
    cli_config = write_cli_config(tmp_path / "terraform.rc", default_mirror())
    tf = Terraform(stack, find_engine(os.environ), cli_config, env_extra={"TF_DATA_DIR": str(tmp_path / "data")})
    init = tf.run(["init", "-input=false", "-no-color", f"-backend={str(backend).lower()}"], echo_stdout=False)
    assert init.returncode == 0, init.stderr
    return tf


def test_import_blocks_validate_next_to_the_synthesized_stack(
    churn: Adoption, local_synth: SynthResult, tmp_path: Path
) -> None:
    """Syntax and provider aliases (a wrong ``provider = aws.x`` fails here).

    Terraform 1.11's validate does not check that each ``to`` names a resource block (plan does),
    so the next test plans the same directory against the emulator.
    """
    tf = _stack_copy(local_synth, churn, tmp_path)
    validate = tf.run(["validate", "-no-color"], echo_stdout=False)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Warning" not in validate.stdout + validate.stderr


@pytest.mark.e2e
def test_the_provider_imports_every_block_in_a_plan(
    churn: Adoption, local_synth: SynthResult, target: Target, tmp_path: Path
) -> None:
    """The real proof: each ``to`` is a resource of the stack and the provider finds each id.

    Nothing of the imported objects is replaced: the ids point at the objects the stack describes.
    """
    tf = _stack_copy(local_synth, churn, tmp_path, backend=True)
    foundation = tmp_path / "foundation.tfstate"  # the outputs the pipeline stack reads
    outputs = {
        "access_log_bucket": f"mlpipe-access-logs-{SHARED}-{REGION}",
        "training_logs_key_arn": f"arn:aws:kms:{REGION}:{TRAINING}:key/00000000-0000-0000-0000-000000000001",
        "production_logs_key_arn": f"arn:aws:kms:{REGION}:{PRODUCTION}:key/00000000-0000-0000-0000-000000000002",
    }
    state = {"version": 4, "terraform_version": "1.5.0", "serial": 1, "lineage": "adopt-test", "resources": []}
    state["outputs"] = {name: {"value": value, "type": "string"} for name, value in outputs.items()}
    foundation.write_text(json.dumps(state), encoding="utf-8")
    plan = tf.run(
        [
            "plan",
            "-input=false",
            "-no-color",
            "-lock=false",
            f"-var=emulator_url={target.emulator_url}",
            f"-var=foundation_state_path={foundation}",
        ],
        echo_stdout=False,
    )
    assert plan.returncode == 0, plan.stderr
    assert f"Plan: {len(churn.imports)} to import, " in plan.stdout
    for item in churn.imports:
        assert f'(imported from "{item.id}")' in plan.stdout or f"# {item.address} will be imported" in plan.stdout
    assert "must be replaced" not in plan.stdout


def test_describe_lists_each_object_then_the_keys_to_pick(churn: Adoption, world: dict[str, str]) -> None:
    text = describe(churn)
    lines = text.splitlines()
    assert lines[0] == f"churn: {len(churn.imports)} object(s) to import"
    role_line = next(line for line in lines if "aws_iam_role.production_deployer " in line)
    assert "mlpipe-churn-deployer" in role_line and f"production ({PRODUCTION})" in role_line

    candidates = [
        KeyCandidate("aws_kms_key.training_logs", "training", world["logs_key_1"], "2025-01-01T00:00:00", "d"),
        KeyCandidate("aws_kms_key.training_logs", "training", world["logs_key_2"], "2025-01-02T00:00:00", "d"),
    ]
    foundation = Adoption(
        stack="foundation",
        candidates=candidates,
        skipped=[Skip("aws_x.y", "because")],
        accounts={"training": TRAINING},
    )
    text = describe(foundation)
    assert f"    {world['logs_key_1']}  created 2025-01-01T00:00:00" in text
    assert "mlpipe adopt --key aws_kms_key.training_logs=<key-id>" in text
    assert "foundation: skipped aws_x.y: because" in text
    assert pick_key_command("churn", "aws_kms_key.a", "k") == "mlpipe adopt --pipeline churn --key aws_kms_key.a=k"
    assert parse_key_choice("aws_kms_key.a=k-1") == ("aws_kms_key.a", "k-1")
    with pytest.raises(ValueError):
        parse_key_choice("aws_iam_role.a=k")
