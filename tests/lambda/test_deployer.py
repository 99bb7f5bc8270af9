"""Behaviour of lambda_src/deployer.py against moto (S3, KMS, SageMaker) and a recorded CodePipeline.

Endpoint statuses other than moto's immediate InService are forced explicitly with
``aws.sagemaker.force(...)``; ``update_endpoint`` (missing in moto) is emulated by the conftest.
The serving features (smoke test, guardrails, autoscaling, data capture) are in test_serving.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import deployer
import pytest
from botocore.exceptions import ClientError

NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def first_run(aws: Any) -> dict[str, Any]:
    """Store the training output, run the first invocation, return the token it reported."""
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    operation, kwargs = aws.codepipeline.calls[-1]
    assert operation == "put_job_success_result", kwargs
    return json.loads(kwargs["continuationToken"])


def success_summary(aws: Any, config: str) -> str:
    """What a finished deployment reports with the fixture's defaults (one instance, autoscaling 1-2)."""
    return (
        f"endpoint {aws.endpoint} is InService with {config}; smoke test passed (5 rows); "
        "autoscaling 1-2 instances at 70 invocations per instance"
    )


def failure_message(aws: Any) -> str:
    assert len(aws.codepipeline.calls) == 1, aws.codepipeline.calls
    operation, kwargs = aws.codepipeline.calls[0]
    assert operation == "put_job_failure_result"
    assert kwargs["jobId"] == aws.job_id
    assert kwargs["failureDetails"]["type"] == "JobFailed"
    return kwargs["failureDetails"]["message"]


def make_old_deployment(aws: Any) -> str:
    """An endpoint already serving an earlier model, as a previous pipeline run leaves it."""
    sm = aws.sagemaker.client
    sm.create_model(
        ModelName="mlp-demo-oldjob",
        ExecutionRoleArn=aws.role_arn,
        PrimaryContainer={"Image": aws.training_output["image_uri"], "ModelDataUrl": "s3://b/old.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="mlp-demo-oldjob-cfg",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "mlp-demo-oldjob",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName=aws.endpoint, EndpointConfigName="mlp-demo-oldjob-cfg")
    return "mlp-demo-oldjob-cfg"


# --- first invocation ------------------------------------------------------------------------------


def test_first_invocation_creates_model_config_endpoint_and_returns_token(aws: Any) -> None:
    token = first_run(aws)
    sm = aws.sagemaker.client
    model_name = aws.training_output["training_job_name"]  # already starts with the prefix

    model = sm.describe_model(ModelName=model_name)
    assert model["ExecutionRoleArn"] == aws.role_arn
    assert model["PrimaryContainer"]["Image"] == aws.training_output["image_uri"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == aws.training_output["model_data_url"]
    # moto does not echo EnableNetworkIsolation, so check the request itself.
    [create_model] = [kwargs for name, kwargs in aws.sagemaker.calls if name == "create_model"]
    assert create_model["EnableNetworkIsolation"] is True

    endpoint = sm.describe_endpoint(EndpointName=aws.endpoint)
    config_name = endpoint["EndpointConfigName"]
    assert config_name.startswith(f"{model_name}-") and NAME_RE.match(config_name)
    config = sm.describe_endpoint_config(EndpointConfigName=config_name)
    assert config["KmsKeyId"] == aws.kms_key_arn
    [variant] = config["ProductionVariants"]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        model_name,
        "ml.m5.large",
        1,
    )

    assert token == {"endpoint": aws.endpoint, "config": config_name, "previous_config": None}
    assert aws.codepipeline.calls == [
        (
            "put_job_success_result",
            {
                "jobId": aws.job_id,
                "executionDetails": {"summary": f"deploying {model_name} to {aws.endpoint} with {config_name}"},
                "continuationToken": json.dumps(token, sort_keys=True),
            },
        )
    ]
    assert aws.sagemaker.mutating_calls() == [
        "create_model",
        "create_endpoint_config",
        "create_endpoint",
    ]


def test_duplicate_first_invocation_creates_nothing_new(aws: Any) -> None:
    token = first_run(aws)
    aws.sagemaker.calls.clear()
    deployer.handler(aws.event(), None)

    assert aws.sagemaker.mutating_calls() == []
    sm = aws.sagemaker.client
    assert len(sm.list_models()["Models"]) == 1
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1
    assert len(sm.list_endpoints()["Endpoints"]) == 1
    assert aws.codepipeline.calls[0] == aws.codepipeline.calls[1]
    assert json.loads(aws.codepipeline.calls[1][1]["continuationToken"]) == token


def test_existing_endpoint_is_updated_not_recreated(aws: Any) -> None:
    old_config = make_old_deployment(aws)
    token = first_run(aws)

    assert aws.sagemaker.mutating_calls() == ["create_model", "create_endpoint_config", "update_endpoint"]
    assert token["previous_config"] == old_config
    [update] = aws.sagemaker.updates
    assert (update["EndpointName"], update["EndpointConfigName"]) == (aws.endpoint, token["config"])
    assert "DeploymentConfig" in update  # the guardrails themselves are covered in test_serving.py


def test_duplicate_invocation_during_update_does_not_update_again(aws: Any) -> None:
    make_old_deployment(aws)
    first_token = first_run(aws)
    deployer.handler(aws.event(), None)

    assert aws.sagemaker.mutating_calls().count("update_endpoint") == 1
    assert json.loads(aws.codepipeline.calls[1][1]["continuationToken"]) == first_token


def test_changed_instance_settings_make_a_new_config(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first = first_run(aws)
    monkeypatch.setenv("ENDPOINT_INSTANCE_COUNT", "2")
    second = first_run(aws)
    assert second["config"] != first["config"]
    assert second["previous_config"] == first["config"]
    config = aws.sagemaker.client.describe_endpoint_config(EndpointConfigName=second["config"])
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2


def test_endpoint_busy_with_another_deployment_fails(aws: Any) -> None:
    make_old_deployment(aws)
    aws.sagemaker.force(aws.endpoint, "Updating")
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    message = failure_message(aws)
    assert message.startswith(f"endpoint {aws.endpoint} is Updating with config mlp-demo-oldjob-cfg")
    assert "update_endpoint" not in aws.sagemaker.mutating_calls()


def test_model_with_same_name_but_other_artifacts_is_not_reused(aws: Any) -> None:
    aws.sagemaker.client.create_model(
        ModelName=aws.training_output["training_job_name"],
        ExecutionRoleArn=aws.role_arn,
        PrimaryContainer={"Image": "x", "ModelDataUrl": "s3://elsewhere/model.tar.gz"},
    )
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    assert "exists with other artifacts (s3://elsewhere/model.tar.gz)" in failure_message(aws)
    assert aws.sagemaker.mutating_calls() == []


# --- re-invocations with the continuation token ----------------------------------------------------


def test_follow_up_in_service_reports_success_and_ends_waiting(aws: Any) -> None:
    token = first_run(aws)
    aws.codepipeline.calls.clear()
    deployer.handler(aws.event(json.dumps(token)), None)  # moto: InService right after creation
    assert aws.codepipeline.calls == [
        (
            "put_job_success_result",
            {"jobId": aws.job_id, "executionDetails": {"summary": success_summary(aws, token["config"])}},
        )
    ]


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack"])
def test_follow_up_in_progress_keeps_the_same_token(aws: Any, status: str) -> None:
    token = first_run(aws)
    aws.codepipeline.calls.clear()
    aws.sagemaker.force(aws.endpoint, status)
    raw = json.dumps(token, sort_keys=True)
    deployer.handler(aws.event(raw), None)
    assert aws.codepipeline.calls == [
        (
            "put_job_success_result",
            {
                "jobId": aws.job_id,
                "executionDetails": {"summary": f"endpoint {aws.endpoint} is {status}"},
                "continuationToken": raw,
            },
        )
    ]


def test_failed_endpoint_reports_failure_with_reason(aws: Any) -> None:
    token = first_run(aws)
    aws.codepipeline.calls.clear()
    reason = ("The primary container for production variant AllTraffic did not pass the ping health check. " * 20)[
        :1024  # the longest FailureReason DescribeEndpoint returns
    ]
    aws.sagemaker.force(aws.endpoint, "Failed", reason=reason)
    deployer.handler(aws.event(json.dumps(token)), None)
    assert failure_message(aws) == f"endpoint {aws.endpoint} is Failed: {reason}"


def test_overlong_failure_message_is_cut_to_the_api_limit(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def verbose(*args: Any) -> Any:
        raise deployer.DeployError("x" * 6000)

    monkeypatch.setattr(deployer, "ensure_model", verbose)
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    assert failure_message(aws) == "x" * 5000


def test_update_then_success_deletes_the_previous_config(aws: Any) -> None:
    old_config = make_old_deployment(aws)
    token = first_run(aws)
    aws.codepipeline.calls.clear()

    deployer.handler(aws.event(json.dumps(token)), None)  # still Updating (set by update_endpoint)
    assert "continuationToken" in aws.codepipeline.calls[-1][1]

    aws.sagemaker.force(aws.endpoint, "InService", config=token["config"])
    deployer.handler(aws.event(json.dumps(token)), None)
    assert aws.codepipeline.calls[-1] == (
        "put_job_success_result",
        {"jobId": aws.job_id, "executionDetails": {"summary": success_summary(aws, token["config"])}},
    )
    configs = {c["EndpointConfigName"] for c in aws.sagemaker.client.list_endpoint_configs()["EndpointConfigs"]}
    assert configs == {token["config"]}
    assert ("delete_endpoint_config", {"EndpointConfigName": old_config}) in aws.sagemaker.calls


def test_rolled_back_update_reports_failure(aws: Any) -> None:
    old_config = make_old_deployment(aws)
    token = first_run(aws)
    aws.codepipeline.calls.clear()
    aws.sagemaker.force(aws.endpoint, "InService", config=old_config, reason="Deployment failed")
    deployer.handler(aws.event(json.dumps(token)), None)
    assert failure_message(aws) == (
        f"update of endpoint {aws.endpoint} to {token['config']} was rolled back; it still serves {old_config}: "
        f"none of the rollback alarms {list(aws.alarms)} is or was in ALARM during the deployment; "
        "SageMaker says: Deployment failed"
    )
    assert "delete_endpoint_config" not in aws.sagemaker.mutating_calls()


def test_token_for_unmanaged_config_is_refused(aws: Any) -> None:
    token = {"endpoint": aws.endpoint, "config": "someone-elses-config", "previous_config": None}
    deployer.handler(aws.event(json.dumps(token)), None)
    assert failure_message(aws) == "continuation token names a config this deployer does not manage"


def test_previous_config_outside_prefix_is_never_deleted(aws: Any) -> None:
    token = first_run(aws)
    token["previous_config"] = "other-team-config"
    aws.sagemaker.calls.clear()
    deployer.handler(aws.event(json.dumps(token)), None)
    assert aws.sagemaker.mutating_calls() == []
    assert "continuationToken" not in aws.codepipeline.calls[-1][1]


def test_garbled_token_reports_failure(aws: Any) -> None:
    deployer.handler(aws.event("not json"), None)
    assert failure_message(aws) == "continuation token is not JSON"


# --- malformed input -------------------------------------------------------------------------------


def test_missing_artifact_reports_failure(aws: Any) -> None:
    deployer.handler(aws.event(key="does/not/exist"), None)
    assert failure_message(aws) == f"cannot read input artifact s3://{aws.bucket}/does/not/exist: NoSuchKey"
    assert aws.sagemaker.mutating_calls() == []


def test_event_without_artifacts_reports_failure(aws: Any) -> None:
    event = aws.event()
    del event["CodePipeline.job"]["data"]["inputArtifacts"]
    deployer.handler(event, None)
    assert failure_message(aws) == "expected exactly one input artifact (the training step's output)"


def test_event_without_job_id_raises_and_reports_nothing(aws: Any) -> None:
    """There is no job to fail; raising marks the invocation failed in Lambda's own metrics."""
    with pytest.raises(ValueError, match="not a CodePipeline job event"):
        deployer.handler({"detail": "not from CodePipeline"}, None)
    assert aws.codepipeline.calls == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"a.json": {"x": 1}, "b.json": {"y": 2}},
            "expected one JSON file in the artifact, found ['a.json', 'b.json']",
        ),
        ({"output.json": b"{not json"}, "output.json: not valid JSON"),
        ({"output.json": ["a", "list"]}, "training output must be a JSON object"),
        ({"output.json": {"training_job_name": "x"}}, "lacks string fields ['model_data_url', 'image_uri']"),
    ],
)
def test_malformed_artifact_reports_failure(aws: Any, files: dict[str, Any], expected: str) -> None:
    aws.put_artifact(aws.zipped(files))
    deployer.handler(aws.event(), None)
    assert expected in failure_message(aws)
    assert aws.sagemaker.mutating_calls() == []


def test_invalid_training_values_report_failure(aws: Any) -> None:
    bad = {**aws.training_output, "training_job_name": "bad_name!", "model_data_url": "https://x"}
    aws.put_artifact(aws.zipped({"output.json": bad}))
    deployer.handler(aws.event(), None)
    assert "invalid training_job_name 'bad_name!'" in failure_message(aws)


@pytest.mark.parametrize(
    "artifact",
    [
        pytest.param("zip-other-name", id="single file with another name"),
        pytest.param("zip-nested", id="output.json in a folder next to other files"),
        pytest.param("bare-json", id="not zipped"),
    ],
)
def test_artifact_layouts_that_are_tolerated(aws: Any, artifact: str) -> None:
    output = aws.training_output
    body = {
        "zip-other-name": aws.zipped({"execution-output.json": output}),
        "zip-nested": aws.zipped({"out/output.json": output, "README.txt": b"x"}),
        "bare-json": json.dumps(output).encode(),
    }[artifact]
    aws.put_artifact(body)
    deployer.handler(aws.event(), None)
    assert aws.codepipeline.calls[0][0] == "put_job_success_result"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ENDPOINT_NAME", "prod-endpoint", "ENDPOINT_NAME 'prod-endpoint' must be a valid SageMaker name"),
        ("ENDPOINT_INSTANCE_COUNT", "zero", "ENDPOINT_INSTANCE_COUNT must be an integer >= 1"),
        ("KMS_KEY_ARN", "", "missing environment variables ['KMS_KEY_ARN']"),
        ("SAGEMAKER_EXECUTION_ROLE_ARN", "role", "SAGEMAKER_EXECUTION_ROLE_ARN must be an IAM role ARN"),
        ("SMOKE_TEST_S3_URI", "", "SMOKE_TEST_S3_URI is required (the validation CSV)"),
        ("ROLLBACK_ALARM_NAMES", " , ", "ROLLBACK_ALARM_NAMES is required"),
    ],
)
def test_misconfiguration_reports_failure_before_touching_aws(
    aws: Any, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    assert expected in failure_message(aws)
    assert aws.sagemaker.calls == []
    assert {call.split(":")[0] for call in aws.api_calls} == {"codepipeline"}


def test_aws_error_reports_failure_with_operation_and_code(aws: Any) -> None:
    def denied(**kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to sagemaker:CreateModel"}},
            "CreateModel",
        )

    aws.sagemaker.create_model = denied
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    assert failure_message(aws) == (
        "CreateModel failed: AccessDeniedException: not authorized to sagemaker:CreateModel"
    )


def test_unexpected_error_still_fails_the_job(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(deployer, "ensure_model", broken)
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    assert failure_message(aws) == "deployer error: RuntimeError: boom"


def test_job_already_closed_is_not_reported_again(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A duplicate invocation after CodePipeline closed the job must not turn success into failure."""

    def closed(**kwargs: Any) -> Any:
        aws.codepipeline.calls.append(("put_job_success_result", kwargs))
        raise ClientError({"Error": {"Code": "InvalidJobStateException", "Message": "closed"}}, "PutJobSuccessResult")

    monkeypatch.setattr(aws.codepipeline, "put_job_success_result", closed)
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    assert [name for name, _ in aws.codepipeline.calls] == ["put_job_success_result"]


def test_logs_are_json_lines_without_credentials(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    token = first_run(aws)
    deployer.handler(aws.event(json.dumps(token)), None)
    lines = capsys.readouterr().out.splitlines()
    assert lines
    entries = [json.loads(line) for line in lines]
    assert {"job received", "model created", "endpoint creation started", "reported success"} <= {
        e["message"] for e in entries
    }
    assert all(e.get("job_id") == aws.job_id for e in entries if e["message"] == "job received")
    assert "must-never-be-logged" not in "\n".join(lines)


# --- names -----------------------------------------------------------------------------------------


def test_resource_name_keeps_prefix_once() -> None:
    assert deployer.resource_name("mlp-demo", "mlp-demo-abc-0") == "mlp-demo-abc-0"
    assert deployer.resource_name("mlp-demo", "abc", "-1234") == "mlp-demo-abc-1234"


def test_resource_name_sanitises_and_shortens_with_a_hash() -> None:
    long_a = deployer.resource_name("mlp-demo", "job_" + "a" * 80, "-cfg")
    long_b = deployer.resource_name("mlp-demo", "job_" + "a" * 79 + "b", "-cfg")
    for name in (long_a, long_b):
        assert len(name) <= 63 and NAME_RE.match(name)
        assert name.startswith("mlp-demo-job-aaa") and name.endswith("-cfg")
    assert long_a != long_b
