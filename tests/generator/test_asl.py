"""Tests for asl/training.asl.json.j2, the training state machine.

Static checks render the template and walk the Amazon States Language graph, because Terraform only
sends the definition to AWS at apply time and a broken graph would surface there, late.
Execution checks run the rendered definition on moto's Step Functions interpreter. Stock moto
5.2.5 cannot run ``sagemaker:createTrainingJob.sync`` (see ``test_moto_cannot_run_the_sync_task``),
so the happy and failure paths run on a copy where only that one Task is replaced by what ``.sync``
does (create the job, then describe it); every other state is the rendered one, unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlpipe.core.errors import TemplateError
from mlpipe.core.paths import ASL_DIR
from mlpipe.core.templates import render_json

TEMPLATE = "training.asl.json.j2"
REGION = "eu-west-1"
SFN_ROLE = "arn:aws:iam::123456789012:role/training-sfn"

SAMPLE: dict[str, Any] = {
    "name_prefix": "mlp-demo",
    "bucket_name": "mlp-demo-shared-artifacts",
    "kms_key_arn": "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "sagemaker_role_arn": "arn:aws:iam::222222222222:role/mlp-demo-sagemaker-training",
    "image_uri": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
    "default_instance_type": "ml.m5.large",
    "default_instance_count": 1,
    "volume_size_gb": 30,
    "max_runtime_seconds": 3600,
    "default_hyperparameters": {"max_depth": "5", "num_round": "100", "objective": "binary:logistic"},
    "default_train_prefix": "data/train/",
    "default_validation_prefix": "data/validation/",
    "model_output_prefix": "models/",
}

STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}
TERMINAL_TYPES = {"Succeed", "Fail"}
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def render(**overrides: Any) -> dict[str, Any]:
    """Render the template with SAMPLE values, some replaced."""
    return render_json(TEMPLATE, ASL_DIR, **{**SAMPLE, **overrides})


def _successors(state: dict[str, Any]) -> list[str]:
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def asl_problems(doc: dict[str, Any]) -> list[str]:
    """Return what makes ``doc`` invalid ASL (empty when valid): the checks AWS applies at create time."""
    problems: list[str] = []
    states = doc.get("States")
    if not isinstance(states, dict) or not states:
        return ["States must be a non-empty object"]
    if doc.get("StartAt") not in states:
        problems.append(f"StartAt {doc.get('StartAt')!r} is not a state")
    for name, state in states.items():
        kind = state.get("Type")
        if kind not in STATE_TYPES:
            problems.append(f"{name}: invalid Type {kind!r}")
            continue
        if len(name) > 80:
            problems.append(f"{name}: state names are limited to 80 characters")
        has_next, has_end = "Next" in state, state.get("End") is True
        if kind in {"Task", "Pass", "Wait", "Parallel", "Map"} and has_next == has_end:
            problems.append(f"{name}: needs exactly one of Next or End")
        if kind in TERMINAL_TYPES | {"Choice"} and (has_next or "End" in state):
            problems.append(f"{name}: a {kind} state cannot have Next or End")
        if kind == "Task" and not isinstance(state.get("Resource"), str):
            problems.append(f"{name}: a Task needs a Resource")
        if kind == "Choice":
            choices = state.get("Choices")
            if not isinstance(choices, list) or not choices:
                problems.append(f"{name}: a Choice needs a non-empty Choices list")
            elif any("Next" not in choice for choice in choices):
                problems.append(f"{name}: every choice rule needs a Next")
        if kind == "Fail" and not ({"Error", "ErrorPath"} & state.keys()):
            problems.append(f"{name}: a Fail state here must say what failed (Error or ErrorPath)")
        if kind == "Fail" and not ({"Cause", "CausePath"} & state.keys()):
            problems.append(f"{name}: a Fail state here must say why (Cause or CausePath)")
        for retrier in state.get("Retry", []):
            if not retrier.get("ErrorEquals"):
                problems.append(f"{name}: every retrier needs ErrorEquals")
        for catcher in state.get("Catch", []):
            if not catcher.get("ErrorEquals"):
                problems.append(f"{name}: every catcher needs ErrorEquals")
        for target in _successors(state):
            if target not in states:
                problems.append(f"{name}: transition to unknown state {target!r}")
    if problems:
        return problems

    reachable, frontier = set(), [doc["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name not in reachable:
            reachable.add(name)
            frontier.extend(_successors(states[name]))
    problems += [f"{name}: unreachable from StartAt" for name in states if name not in reachable]

    can_end = {n for n, s in states.items() if s["Type"] in TERMINAL_TYPES or s.get("End") is True}
    changed = True
    while changed:
        changed = False
        for name, state in states.items():
            if name not in can_end and any(t in can_end for t in _successors(state)):
                can_end.add(name)
                changed = True
    problems += [f"{name}: never reaches an end state" for name in states if name not in can_end]
    return problems


# --- static checks ------------------------------------------------------------------------------


def test_rendered_definition_is_valid_asl() -> None:
    assert asl_problems(render()) == []


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda d: d.update(StartAt="Nowhere"), "StartAt 'Nowhere' is not a state"),
        (lambda d: d["States"]["TrainModel"].update(Next="Missing"), "unknown state 'Missing'"),
        (lambda d: d["States"]["TrainModel"].update(Type="Job"), "invalid Type 'Job'"),
        (lambda d: d["States"]["TrainModel"].pop("Resource"), "a Task needs a Resource"),
        (lambda d: d["States"]["TrainingSucceeded"].pop("End"), "exactly one of Next or End"),
        (
            lambda d: d["States"].update(Orphan={"Type": "Pass", "End": True}),
            "Orphan: unreachable from StartAt",
        ),
        (
            lambda d: d["States"]["TrainingSucceeded"].update(End=False, Next="TrainingSucceeded"),
            "TrainingSucceeded: never reaches an end state",
        ),
    ],
)
def test_asl_checker_catches_broken_definitions(break_it: Any, expected: str) -> None:
    """The checker above must be able to fail, or the validity test proves nothing."""
    doc = render()
    break_it(doc)
    assert any(expected in problem for problem in asl_problems(doc)), asl_problems(doc)


def test_training_task_runs_sagemaker_synchronously() -> None:
    task = render()["States"]["TrainModel"]
    assert task["Type"] == "Task"
    assert task["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"


def test_training_job_uses_rendered_values() -> None:
    params = render()["States"]["TrainModel"]["Parameters"]
    assert params["RoleArn"] == SAMPLE["sagemaker_role_arn"]
    assert params["AlgorithmSpecification"] == {
        "TrainingImage": SAMPLE["image_uri"],
        "TrainingInputMode": "File",
    }
    assert params["OutputDataConfig"] == {
        "S3OutputPath": "s3://mlp-demo-shared-artifacts/models/",
        "KmsKeyId": SAMPLE["kms_key_arn"],
    }
    assert params["ResourceConfig"]["VolumeKmsKeyId"] == SAMPLE["kms_key_arn"]
    assert params["ResourceConfig"]["VolumeSizeInGB"] == 30
    assert params["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert params["EnableNetworkIsolation"] is True
    assert params["EnableInterContainerTrafficEncryption"] is True
    channels = {c["ChannelName"]: c for c in params["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    for channel in channels.values():
        assert channel["ContentType"] == "text/csv"
        assert channel["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"


def test_defaults_are_rendered_as_typed_json() -> None:
    prepare = render()["States"]["PrepareRequest"]["Parameters"]
    assert prepare["defaults"] == {
        "hyperparameters": {},
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "train_prefix": "data/train/",
        "validation_prefix": "data/validation/",
    }
    assert prepare["default_hyperparameters"] == SAMPLE["default_hyperparameters"]


def test_training_job_name_is_unique_per_execution_and_valid_for_sagemaker() -> None:
    doc = render()
    merge = doc["States"]["MergeHyperparameters"]["Parameters"]
    task = doc["States"]["TrainModel"]["Parameters"]
    assert merge["run_id.$"] == "States.Hash($$.Execution.Name, 'MD5')"
    assert task["TrainingJobName.$"] == ("States.Format('{}-{}-{}', $.name_prefix, $.run_id, $$.State.RetryCount)")
    # Longest case: a 20-character prefix, any execution name (MD5 hex), two-digit retry count.
    longest = f"{'p' * 20}-{hashlib.md5(b'any execution name').hexdigest()}-10"
    assert len(longest) <= 63 and SAGEMAKER_NAME.match(longest)


def test_retries_and_catch_cover_sagemaker_errors() -> None:
    task = render()["States"]["TrainModel"]
    retried = {error for retrier in task["Retry"] for error in retrier["ErrorEquals"]}
    assert {"SageMaker.ThrottlingException", "SageMaker.ResourceLimitExceededException"} <= retried
    for retrier in task["Retry"]:
        assert retrier["MaxAttempts"] >= 1 and retrier["IntervalSeconds"] >= 5
    assert all(r["BackoffRate"] > 1 for r in task["Retry"] if r["MaxAttempts"] > 1)
    assert task["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "TrainingFailed"}]
    failed = render()["States"]["TrainingFailed"]
    assert failed["Type"] == "Fail" and failed["Error"] == "TrainingJobFailed"
    assert "$.error.Cause" in failed["CausePath"]


def test_final_output_is_exactly_what_the_deployer_needs() -> None:
    final = render()["States"]["TrainingSucceeded"]
    assert final["Type"] == "Pass" and final["End"] is True
    assert final["Parameters"] == {
        "training_job_name.$": "$.training.training_job_name",
        "model_data_url.$": "$.training.model_data_url",
        "image_uri": SAMPLE["image_uri"],
    }


def test_cdktf_tokens_survive_rendering_and_stay_out_of_intrinsics() -> None:
    """Tokens contain braces, which intrinsic functions would read as placeholders."""
    tokens = {key: f"${{TfToken[TOKEN.{i}]}}" for i, key in enumerate(SAMPLE) if isinstance(SAMPLE[key], str)}
    doc = render(**tokens)
    assert asl_problems(doc) == []
    text = json.dumps(doc)
    for token in tokens.values():
        assert token in text
    params = doc["States"]["TrainModel"]["Parameters"]
    assert params["RoleArn"] == tokens["sagemaker_role_arn"]
    assert params["OutputDataConfig"]["S3OutputPath"] == (
        f"s3://{tokens['bucket_name']}/{tokens['model_output_prefix']}"
    )

    def intrinsic_strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for v in node.values() for s in intrinsic_strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in intrinsic_strings(v)]
        return [node] if isinstance(node, str) and node.startswith("States.") else []

    found = intrinsic_strings(doc)
    assert found, "expected intrinsic functions in the definition"
    assert not [s for s in found if "TfToken" in s]


def test_values_with_json_special_characters_are_escaped() -> None:
    doc = render(image_uri="img\\with'quote", default_hyperparameters={"a'b": "c\nd\te"})
    assert doc["States"]["TrainingSucceeded"]["Parameters"]["image_uri"] == "img\\with'quote"
    assert doc["States"]["PrepareRequest"]["Parameters"]["default_hyperparameters"] == {"a'b": "c\nd\te"}


def test_missing_value_is_rejected() -> None:
    """Every value goes through |tojson, so this is how a missing value arrives at the renderer."""
    values = dict(SAMPLE)
    del values["kms_key_arn"]
    with pytest.raises(TemplateError, match="kms_key_arn"):
        render_json(TEMPLATE, ASL_DIR, **values)


def test_value_inserted_without_tojson_is_rejected(tmp_path: Path) -> None:
    """What |tojson prevents: a raw value with a quote breaks the JSON and render_json says where."""
    (tmp_path / "raw.json.j2").write_text('{"Comment": "{{ value }}"}\n')
    with pytest.raises(TemplateError, match="malformed JSON"):
        render_json("raw.json.j2", tmp_path, value='say "hi"')


# --- executions on moto's Step Functions interpreter ---------------------------------------------


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Step Functions client on moto with the interpreter switched on."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name=REGION)


def execute(sfn: Any, definition: dict[str, Any], request: Any, name: str) -> dict[str, Any]:
    """Run one execution to its end and return describe_execution plus the history."""
    arn = sfn.create_state_machine(name=f"sm-{name}", definition=json.dumps(definition), roleArn=SFN_ROLE)[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(request))
    deadline = time.monotonic() + 20
    while True:
        result = sfn.describe_execution(executionArn=execution["executionArn"])
        if result["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    result["history"] = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    return result


def entered_states(result: dict[str, Any]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in result["history"] if "stateEnteredEventDetails" in e]


def with_sync_emulated(doc: dict[str, Any], describe_name: str | None = None) -> dict[str, Any]:
    """Replace only TrainModel by what .sync does: createTrainingJob, then DescribeTrainingJob.

    The create step keeps the rendered Parameters; the describe step keeps the rendered
    ResultSelector, ResultPath, Catch and Next. Retry is left out: its waits are real seconds.
    ``describe_name`` makes the describe step look up a job that does not exist (a failed job).
    """
    doc = copy.deepcopy(doc)
    task = doc["States"]["TrainModel"]
    create = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob",
        "Parameters": task["Parameters"],
        "ResultPath": "$.created",
        "Next": "DescribeTrainingJob",
    }
    name_expr = "States.ArrayGetItem(States.StringSplit($.created.TrainingJobArn, '/'), 1)"
    describe = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob",
        "Parameters": {"TrainingJobName": describe_name} if describe_name else {"TrainingJobName.$": name_expr},
        "ResultSelector": task["ResultSelector"],
        "ResultPath": task["ResultPath"],
        "Catch": task["Catch"],
        "Next": task["Next"],
    }
    doc["States"]["TrainModel"] = create
    doc["States"]["DescribeTrainingJob"] = describe
    return doc


@pytest.mark.parametrize(
    ("request_body", "fail_state"),
    [
        ({"hyperparameters": "max_depth=5"}, "RejectHyperparameters"),
        ({"hyperparameters": ["max_depth"]}, "RejectHyperparameters"),
        ({"hyperparameters": None}, "RejectHyperparameters"),
        ({"instance_type": "m5.large"}, "RejectInstanceType"),
        ({"instance_type": 5}, "RejectInstanceType"),
        ({"instance_count": "2"}, "RejectInstanceCount"),
        ({"instance_count": 0}, "RejectInstanceCount"),
        ({"train_prefix": "/data/train/"}, "RejectTrainPrefix"),
        ({"train_prefix": "data/train"}, "RejectTrainPrefix"),
        ({"train_prefix": ""}, "RejectTrainPrefix"),
        ({"validation_prefix": 3}, "RejectValidationPrefix"),
    ],
)
def test_malformed_request_fails_with_a_clear_cause(sfn: Any, request_body: dict[str, Any], fail_state: str) -> None:
    result = execute(sfn, render(), request_body, "bad-request")
    assert result["status"] == "FAILED"
    assert result["error"] == "InvalidTrainingRequest"
    assert result["cause"] == render()["States"][fail_state]["Cause"]
    assert entered_states(result) == ["ValidateRequest", fail_state]


def test_moto_cannot_run_the_sync_task(sfn: Any) -> None:
    """Records the emulator's limit: stock moto 5.2.5 has no .sync support for SageMaker.

    Everything before the Task runs; the Task fails before moto records it as entered, with an
    uncatchable States.Runtime error (so neither Retry nor Catch is exercised here). If this
    starts failing, moto gained support and the emulated copy below can go.
    """
    result = execute(sfn, render(), {}, "sync-limit")
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Runtime"
    assert "Unsupported sync callback" in result["cause"]
    assert entered_states(result) == [
        "ValidateRequest",
        "PrepareRequest",
        "MergeSettings",
        "MergeHyperparameters",
    ]


def test_valid_request_trains_with_merged_settings_and_outputs_deploy_input(sfn: Any) -> None:
    request = {
        "hyperparameters": {"max_depth": "7", "eta": "0.2"},
        "instance_type": "ml.m5.xlarge",
        "instance_count": 2,
        "train_prefix": "data/2024/train/",
        "ignored_field": "unknown fields are ignored",
    }
    result = execute(sfn, with_sync_emulated(render()), request, "run-0001")
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))

    job_name = f"mlp-demo-{hashlib.md5(b'run-0001').hexdigest()}-0"
    assert SAGEMAKER_NAME.match(job_name)
    output = json.loads(result["output"])
    assert output == {
        "training_job_name": job_name,
        "model_data_url": f"s3://mlp-demo-shared-artifacts/models/{job_name}/output/model.tar.gz",
        "image_uri": SAMPLE["image_uri"],
    }

    job = boto3.client("sagemaker", region_name=REGION).describe_training_job(TrainingJobName=job_name)
    assert job["HyperParameters"] == {
        "max_depth": "7",
        "num_round": "100",
        "objective": "binary:logistic",
        "eta": "0.2",
    }
    assert job["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 30,
        "VolumeKmsKeyId": SAMPLE["kms_key_arn"],
    }
    uris = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert uris == {
        "train": "s3://mlp-demo-shared-artifacts/data/2024/train/",
        "validation": "s3://mlp-demo-shared-artifacts/data/validation/",
    }
    assert job["OutputDataConfig"]["KmsKeyId"] == SAMPLE["kms_key_arn"]
    assert job["RoleArn"] == SAMPLE["sagemaker_role_arn"]


def test_empty_request_uses_every_default(sfn: Any) -> None:
    result = execute(sfn, with_sync_emulated(render()), {}, "defaults")
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    job_name = json.loads(result["output"])["training_job_name"]
    job = boto3.client("sagemaker", region_name=REGION).describe_training_job(TrainingJobName=job_name)
    assert job["HyperParameters"] == SAMPLE["default_hyperparameters"]
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert job["ResourceConfig"]["InstanceCount"] == 1


def test_failed_training_ends_in_fail_state_with_readable_cause(sfn: Any) -> None:
    result = execute(sfn, with_sync_emulated(render(), describe_name="missing-job"), {}, "fails")
    assert result["status"] == "FAILED"
    assert result["error"] == "TrainingJobFailed"
    run_id = hashlib.md5(b"fails").hexdigest()
    assert result["cause"].startswith(f"SageMaker training for run {run_id} failed with ")
    assert "Could not find training job" in result["cause"]
    assert entered_states(result)[-1] == "TrainingFailed"
