"""Serving like production: data capture, smoke test, deployment guardrails, rollbacks, autoscaling.

moto backs S3, KMS, SageMaker (models, configs, endpoints), Application Auto Scaling and CloudWatch
alarms; UpdateEndpoint, InvokeEndpoint and DescribeAlarmHistory are conftest stubs checked against
the botocore model. ``aws.sagemaker.complete_update`` / ``auto_rollback`` play SageMaker's part,
``aws.start`` / ``aws.poll`` / ``aws.deploy`` CodePipeline's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import deployer
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

SCALING = {
    "ServiceNamespace": "sagemaker",
    "ResourceIds": ["endpoint/mlp-demo-endpoint/variant/AllTraffic"],
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}
FIRST_FIVE_ROWS = (
    "0.11,-0.12,0.13,0.14\n0.21,-0.22,0.23,0.24\n0.31,-0.32,0.33,0.34\n0.41,-0.42,0.43,0.44\n0.51,-0.52,0.53,0.54\n"
)


def failure(call: tuple[str, dict[str, Any]]) -> str:
    operation, kwargs = call
    assert operation == "put_job_failure_result", kwargs
    return kwargs["failureDetails"]["message"]


def served_config(aws: Any) -> str:
    return aws.sagemaker.state(aws.endpoint)["EndpointConfigName"]


def scaling_state(aws: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    targets = aws.autoscaling.describe_scalable_targets(**SCALING)["ScalableTargets"]
    policies = aws.autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=SCALING["ResourceIds"][0]
    )["ScalingPolicies"]
    return targets, policies


# --- data capture ---------------------------------------------------------------------------------


def test_endpoint_config_captures_inputs_and_outputs_to_the_pipeline_bucket(aws: Any) -> None:
    config = aws.deploy()
    capture = aws.sagemaker.client.describe_endpoint_config(EndpointConfigName=config)["DataCaptureConfig"]
    assert capture == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 20,
        "DestinationS3Uri": aws.capture_uri,
        "KmsKeyId": aws.kms_key_arn,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
    }
    described = aws.sagemaker.state(aws.endpoint)["DataCaptureConfig"]
    assert (described["CurrentSamplingPercentage"], described["KmsKeyId"]) == (20, aws.kms_key_arn)


def test_capture_percentage_is_configurable(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_CAPTURE_PERCENT", "100")
    config = aws.deploy()
    capture = aws.sagemaker.client.describe_endpoint_config(EndpointConfigName=config)["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 100


def test_zero_percent_turns_capture_off_and_keeps_the_former_config_name(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_CAPTURE_PERCENT", "0")
    monkeypatch.delenv("DATA_CAPTURE_S3_URI")
    config = aws.deploy()
    assert not aws.sagemaker.client.describe_endpoint_config(EndpointConfigName=config).get("DataCaptureConfig")
    assert "DataCaptureConfig" not in aws.sagemaker.state(aws.endpoint)
    [create] = [kwargs for name, kwargs in aws.sagemaker.calls if name == "create_endpoint_config"]
    assert "DataCaptureConfig" not in create
    model = aws.training_output["training_job_name"]
    legacy = json.dumps([model, "ml.m5.large", 1, aws.kms_key_arn])  # the hash input before data capture existed
    assert config == deployer.resource_name(aws.prefix, model, f"-{deployer._short_hash(legacy)}")


def test_changing_capture_settings_deploys_a_new_config(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first = aws.deploy()
    monkeypatch.setenv("DATA_CAPTURE_PERCENT", "50")
    token = aws.start()
    assert token["config"] != first and token["previous_config"] == first
    [update] = aws.sagemaker.updates
    assert update["EndpointConfigName"] == token["config"]
    # the scaler's instance count is kept, but the capture settings must come from the new config
    assert update["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DataCaptureConfig"}]


# --- smoke test -----------------------------------------------------------------------------------


def test_smoke_test_sends_validation_rows_without_labels_before_success(aws: Any) -> None:
    token = aws.start()
    assert aws.runtime.calls == []  # creating the endpoint is not serving yet
    operation, kwargs = aws.poll(token)
    [call] = aws.runtime.calls
    assert call == {
        "EndpointName": aws.endpoint,
        "ContentType": "text/csv",
        "Accept": "text/csv",
        "Body": FIRST_FIVE_ROWS.encode(),
    }
    assert operation == "put_job_success_result"
    assert "smoke test passed (5 rows)" in kwargs["executionDetails"]["summary"]
    runtime_config = aws.client_configs["sagemaker-runtime"]
    assert (runtime_config.read_timeout, runtime_config.retries["max_attempts"]) == (10, 2)


def test_row_count_and_timeout_are_configurable(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOKE_TEST_ROWS", "2")
    monkeypatch.setenv("SMOKE_TEST_TIMEOUT_SECONDS", "25")
    aws.deploy()
    assert aws.runtime.calls[0]["Body"] == b"0.11,-0.12,0.13,0.14\n0.21,-0.22,0.23,0.24\n"
    assert aws.client_configs["sagemaker-runtime"].read_timeout == 25


@pytest.mark.parametrize(
    ("answer", "content_type", "expect"),
    [
        ("0.1\n0.2\n0.3\n0.4\n0.5\n", "text/csv", "probability"),
        ("0.1,0.2,0.3,0.4,0.5", "text/csv", "probability"),
        (json.dumps({"predictions": [{"score": 0.1}, {"score": 0.9}, {"score": 0}, {"score": 1}, {"score": 0.5}]}),
         "application/json", "probability"),
        ("[0.1, 0.2, 0.3, 0.4, 0.5]", "application/json", "probability"),
        ("12.5\n-3\n0\n1e3\n7\n", "text/csv", "number"),
    ],
)  # fmt: skip
def test_well_formed_predictions_pass(
    aws: Any, monkeypatch: pytest.MonkeyPatch, answer: str, content_type: str, expect: str
) -> None:
    monkeypatch.setenv("SMOKE_TEST_EXPECT", expect)
    aws.runtime.answer(answer, content_type)
    aws.deploy()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("0.1\n0.2\n0.3\n", "expected 5 predictions (one per row), got 3"),
        ("0.1\n0.2\nNaN\n0.4\n0.5\n", 'prediction 3 is not a finite number: "NaN"'),
        ("0.1\n0.2\n0.3\n0.4\nyes\n", 'prediction 5 is not a finite number: "yes"'),
        ("0.1\n0.2\n0.3\n1.7\n0.5\n", "prediction 4 (1.7) is not a probability in [0, 1]"),
    ],
)
def test_malformed_predictions_fail_the_first_deployment_without_rollback(aws: Any, answer: str, problem: str) -> None:
    token = aws.start()
    aws.runtime.answer(answer)
    message = failure(aws.poll(token))
    assert message == (
        f"smoke test of endpoint {aws.endpoint} with {token['config']} failed: {problem}; "
        f"response excerpt: {json.dumps(answer)}; "
        f"there is no previous endpoint config to return to, it keeps serving {token['config']}"
    )
    assert aws.sagemaker.updates == []
    assert scaling_state(aws) == ([], [])  # never scale a model that failed its smoke test


def test_probability_check_can_be_relaxed_to_numbers(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    token = aws.start()
    aws.runtime.answer("3\n4\n5\n6\n7\n")
    assert "is not a probability" in failure(aws.poll(token))
    monkeypatch.setenv("SMOKE_TEST_EXPECT", "number")
    aws.runtime.answer("3\n4\n5\n6\n7\n")
    assert aws.poll(token)[0] == "put_job_success_result"


def test_failed_smoke_test_returns_the_endpoint_to_the_previous_config(aws: Any) -> None:
    first = aws.deploy()
    token = aws.start(run=2)
    aws.sagemaker.complete_update(aws.endpoint)
    aws.runtime.answer("<html>502 Bad Gateway</html>" + "x" * 500, "text/html")

    operation, kwargs = aws.poll(token)
    assert operation == "put_job_success_result"
    assert kwargs["executionDetails"]["summary"] == f"smoke test failed, returning {aws.endpoint} to {first}"
    waiting = json.loads(kwargs["continuationToken"])
    assert (waiting["phase"], waiting["config"], waiting["previous_config"]) == ("rollback", token["config"], first)
    going_back = aws.sagemaker.updates[-1]
    assert going_back == {
        "EndpointName": aws.endpoint,
        "EndpointConfigName": first,
        "RetainAllVariantProperties": True,
        "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DataCaptureConfig"}],
    }  # no guardrails: back to a known config at once

    _, still = aws.poll(waiting)  # still Updating: keep waiting with the same token
    assert (still["executionDetails"]["summary"], still["continuationToken"]) == (
        f"endpoint {aws.endpoint} is Updating",
        kwargs["continuationToken"],
    )
    aws.sagemaker.complete_update(aws.endpoint)
    message = failure(aws.poll(waiting))
    excerpt = json.dumps(("<html>502 Bad Gateway</html>" + "x" * 500)[:200]) + "..."
    assert message == (
        f"smoke test of endpoint {aws.endpoint} with {token['config']} failed: "
        f"expected 5 predictions (one per row), got 1; response excerpt: {excerpt}; "
        f"the endpoint was returned to {first}"
    )
    assert served_config(aws) == first
    configs = {c["EndpointConfigName"] for c in aws.sagemaker.client.list_endpoint_configs()["EndpointConfigs"]}
    assert first in configs  # the config we returned to is never deleted
    targets, policies = scaling_state(aws)
    assert len(targets) == 1 and len(policies) == 1  # the fleet we returned to still scales


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            ClientError(
                {
                    "Error": {"Code": "ModelError", "Message": "Received server error (500) from primary"},
                    "OriginalMessage": "XGBoostError: feature_names mismatch",
                },
                "InvokeEndpoint",
            ),
            'InvokeEndpoint failed: ModelError: "XGBoostError: feature_names mismatch"',
        ),
        (
            ReadTimeoutError(endpoint_url="https://runtime.sagemaker.eu-west-1.amazonaws.com"),
            'InvokeEndpoint failed: ReadTimeoutError: "Read timeout on endpoint URL: '
            '\\"https://runtime.sagemaker.eu-west-1.amazonaws.com\\""',
        ),
    ],
)
def test_invocation_errors_and_timeouts_fail_the_smoke_test(aws: Any, error: Exception, said: str) -> None:
    first = aws.deploy()
    token = aws.start(run=2)
    aws.sagemaker.complete_update(aws.endpoint)
    aws.runtime.fail_with(error)
    waiting = json.loads(aws.poll(token)[1]["continuationToken"])
    aws.sagemaker.complete_update(aws.endpoint)
    message = failure(aws.poll(waiting))
    assert message.startswith(f"smoke test of endpoint {aws.endpoint} with {token['config']} failed: {said}; ")
    assert message.endswith(f"the endpoint was returned to {first}")


def test_a_failed_return_to_the_previous_config_is_reported(aws: Any) -> None:
    first = aws.deploy()
    token = aws.start(run=2)
    aws.sagemaker.complete_update(aws.endpoint)
    aws.runtime.answer("oops")
    waiting = json.loads(aws.poll(token)[1]["continuationToken"])
    aws.sagemaker.force(aws.endpoint, "Failed", config=first, reason="Insufficient capacity for ml.m5.large")
    message = failure(aws.poll(waiting))
    assert message.endswith(f"returning to {first} failed, endpoint is Failed: Insufficient capacity for ml.m5.large")
    assert message.startswith(f"smoke test of endpoint {aws.endpoint} with {token['config']} failed: ")


def test_unreadable_validation_data_fails_before_the_endpoint_changes(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMOKE_TEST_S3_URI", f"s3://{aws.bucket}/data/validation/missing.csv")
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    [call] = aws.codepipeline.calls
    assert failure(call) == f"cannot read smoke test data s3://{aws.bucket}/data/validation/missing.csv: NoSuchKey"
    assert aws.sagemaker.mutating_calls() == []


def test_validation_data_without_features_is_refused(aws: Any) -> None:
    aws.put_validation_data("1\n0\n")
    aws.put_artifact(aws.zipped({"output.json": aws.training_output}))
    deployer.handler(aws.event(), None)
    [call] = aws.codepipeline.calls
    assert "line 1 has no feature columns after the label" in failure(call)


def test_only_the_head_of_a_large_validation_file_is_read(aws: Any) -> None:
    row = "1," + ",".join(["0.123456789"] * 40) + "\n"  # 481 bytes: the 64 KiB range cuts a row
    aws.put_validation_data(row * 1000)
    smoke = deployer.SmokeTest(bucket=aws.bucket, key=aws.smoke_key, rows=100, expect="probability", timeout=10)
    rows = deployer.load_smoke_rows(aws.s3, smoke)
    assert len(rows) == 100 and set(rows) == {row[2:-1]}
    smoke = deployer.SmokeTest(bucket=aws.bucket, key=aws.smoke_key, rows=1000, expect="probability", timeout=10)
    rows = deployer.load_smoke_rows(aws.s3, smoke)
    assert len(rows) == 64 * 1024 // len(row) and set(rows) == {row[2:-1]}  # the cut row is dropped


def test_smoke_test_can_be_switched_off_explicitly(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOKE_TEST_ROWS", "0")
    monkeypatch.delenv("SMOKE_TEST_S3_URI")
    token = aws.start()
    operation, kwargs = aws.poll(token)
    assert operation == "put_job_success_result" and "smoke test disabled" in kwargs["executionDetails"]["summary"]
    assert aws.runtime.calls == []


def test_rollback_token_stays_within_the_api_limit() -> None:
    token = deployer.Token(
        endpoint="e" * 63, config="c" * 63, previous_config="p" * 63, phase="rollback", started=1, note='"\n' * 3000
    )
    raw = token.encode()
    assert len(raw) <= 2048
    assert json.loads(raw)["note"].endswith("...")


# --- deployment guardrails ------------------------------------------------------------------------


def test_update_is_a_canary_blue_green_deployment_with_alarm_rollback(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENDPOINT_INSTANCE_COUNT", "4")
    aws.deploy()
    aws.start(run=2)
    [update] = aws.sagemaker.updates
    assert update["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},  # 10 % of 4, rounded up
            },
            "TerminationWaitInSeconds": 300,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in aws.alarms]},
    }


def test_linear_shifting_with_configured_step_and_waits(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ENDPOINT_INSTANCE_COUNT": "10",
        "DEPLOYMENT_STRATEGY": "linear",
        "LINEAR_STEP_PERCENT": "20",
        "DEPLOYMENT_WAIT_SECONDS": "120",
        "DEPLOYMENT_TERMINATION_WAIT_SECONDS": "60",
        "DEPLOYMENT_TIMEOUT_SECONDS": "1800",
    }.items():
        monkeypatch.setenv(name, value)
    aws.deploy()
    aws.start(run=2)
    policy = aws.sagemaker.updates[0]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy == {
        "TrafficRoutingConfiguration": {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": 120,
            "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 2},
        },
        "TerminationWaitInSeconds": 60,
        "MaximumExecutionTimeoutInSeconds": 1800,
    }


def test_a_single_instance_cannot_host_a_canary_so_traffic_shifts_at_once(aws: Any) -> None:
    aws.deploy()
    aws.start(run=2)
    routing = aws.sagemaker.updates[0]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}
    assert "AutoRollbackConfiguration" in aws.sagemaker.updates[0]["DeploymentConfig"]


@pytest.mark.parametrize("strategy", ["CANARY", "LINEAR", "ALL_AT_ONCE"])
@pytest.mark.parametrize("percent", [1, 10, 25, 50])
def test_deployment_configs_satisfy_the_api_model_for_any_fleet(api_model: Any, strategy: str, percent: int) -> None:
    for fleet in range(1, 41):
        rollout = deployer.Rollout(
            strategy=strategy,
            canary_percent=percent,
            linear_step_percent=max(percent, 10),
            wait_seconds=2400,  # 10 linear steps + the final bake stay under the 28800 s maximum
            termination_wait_seconds=3600,
            timeout_seconds=28800,
            alarm_names=tuple(f"alarm-{i}" for i in range(10)),
        )
        config = deployer.deployment_config(rollout, fleet)
        api_model.check_request("sagemaker", "UpdateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c",
                                                                "DeploymentConfig": config})  # fmt: skip
        api_model.guardrail_rules(config["BlueGreenUpdatePolicy"], fleet)
        shifted = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"]
        assert shifted == strategy or (fleet == 1 and shifted == "ALL_AT_ONCE")


def test_model_check_catches_what_botocore_lets_through(api_model: Any) -> None:
    """The stubs' checks must be able to fail: botocore alone only checks minimums."""
    bad = {
        "EndpointName": "e" * 64,
        "EndpointConfigName": "c",
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "SLOW", "WaitIntervalInSeconds": 3601}},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"a{i}"} for i in range(11)]},
        },
    }
    with pytest.raises(AssertionError) as caught:
        api_model.check_request("sagemaker", "UpdateEndpoint", bad)
    for expected in (
        "UpdateEndpoint.EndpointName: 64 characters, at most 63 allowed",
        "TrafficRoutingConfiguration.Type: 'SLOW' is not one of",
        "TrafficRoutingConfiguration.WaitIntervalInSeconds: 3601 is above the maximum 3600",
        "AutoRollbackConfiguration.Alarms: 11 items, at most 10 allowed",
    ):
        assert expected in str(caught.value)
    with pytest.raises(ClientError, match="CanarySize is 75% of 4 instances"):
        api_model.guardrail_rules(
            {"TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 0,
                                             "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 3}}},
            4,
        )  # fmt: skip


def test_timeout_shorter_than_the_waiting_fails_before_updating(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    aws.deploy()
    monkeypatch.setenv("DEPLOYMENT_TIMEOUT_SECONDS", "600")
    monkeypatch.setenv("ENDPOINT_INSTANCE_TYPE", "ml.c5.xlarge")  # would deregister autoscaling
    aws.put_artifact(aws.zipped({"output.json": aws.output(2)}))
    aws.codepipeline.calls.clear()
    deployer.handler(aws.event(), None)
    [call] = aws.codepipeline.calls
    assert failure(call) == (
        "DEPLOYMENT_TIMEOUT_SECONDS (600) must exceed the deployment's waiting time "
        "(1 x DEPLOYMENT_WAIT_SECONDS + DEPLOYMENT_TERMINATION_WAIT_SECONDS = 600)"
    )
    assert aws.sagemaker.updates == []
    assert len(scaling_state(aws)[0]) == 1  # refused before anything changed


def test_a_rejected_update_leaves_the_old_fleet_scaling(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    aws.deploy()
    monkeypatch.setenv("ENDPOINT_INSTANCE_TYPE", "ml.c5.xlarge")

    def rejected(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": "ml.c5.xlarge"}}, "UpdateEndpoint")

    aws.sagemaker.update_endpoint = rejected
    aws.put_artifact(aws.zipped({"output.json": aws.output(2)}))
    aws.codepipeline.calls.clear()
    deployer.handler(aws.event(), None)
    [call] = aws.codepipeline.calls
    assert failure(call) == "UpdateEndpoint failed: ResourceLimitExceeded: ml.c5.xlarge"
    assert "application-autoscaling:DeregisterScalableTarget" in aws.api_calls
    targets, policies = scaling_state(aws)
    assert len(targets) == 1 and len(policies) == 1


# --- rollbacks by SageMaker -----------------------------------------------------------------------


def test_rollback_by_an_alarm_in_alarm_fails_the_job_naming_it(aws: Any) -> None:
    first = aws.deploy()
    token = aws.start(run=2)
    aws.cloudwatch.set_state(aws.alarms[0], "ALARM", "Threshold Crossed: 1 datapoint [4.0] was >= 1.0")
    aws.sagemaker.auto_rollback(aws.endpoint)
    message = failure(aws.poll(token))
    assert message == (
        f"update of endpoint {aws.endpoint} to {token['config']} was rolled back; it still serves {first}: "
        f"{aws.alarms[0]} is in ALARM (Threshold Crossed: 1 datapoint [4.0] was >= 1.0)"
    )
    assert "sagemaker:DeleteEndpointConfig" not in aws.api_calls
    assert served_config(aws) == first


def test_an_alarm_back_to_ok_is_found_in_its_history(aws: Any) -> None:
    aws.deploy()
    token = aws.start(run=2)
    aws.cloudwatch.set_state(aws.alarms[1], "ALARM", "Threshold Crossed: ModelLatency 812000 >= 500000")
    aws.cloudwatch.set_state(aws.alarms[1], "OK", "Threshold no longer crossed")
    aws.sagemaker.auto_rollback(aws.endpoint)
    message = failure(aws.poll(token))
    fired = aws.cloudwatch.history[-2]["Timestamp"].isoformat()
    assert message.endswith(
        f"{aws.alarms[1]} was in ALARM at {fired} (Threshold Crossed: ModelLatency 812000 >= 500000)"
    )
    assert "cloudwatch:DescribeAlarmHistory" in aws.api_calls


def test_alarms_that_fired_before_the_deployment_are_not_blamed(aws: Any) -> None:
    aws.deploy()
    token = aws.start(run=2)
    last_week = datetime.now(UTC) - timedelta(days=7)
    aws.cloudwatch.set_state(aws.alarms[0], "ALARM", "old incident", when=last_week)
    aws.cloudwatch.set_state(aws.alarms[0], "OK", "recovered", when=last_week + timedelta(hours=1))
    aws.sagemaker.auto_rollback(aws.endpoint)
    assert failure(aws.poll(token)).endswith(
        f"none of the rollback alarms {list(aws.alarms)} is or was in ALARM during the deployment"
    )


def test_an_alarm_named_by_sagemaker_needs_no_cloudwatch_lookup(aws: Any) -> None:
    aws.deploy()
    token = aws.start(run=2)
    reason = f"Deployment rolled back: alarm {aws.alarms[1]} in ALARM"
    aws.sagemaker.auto_rollback(aws.endpoint, reason=reason)
    message = failure(aws.poll(token))
    assert message.endswith(f"{aws.alarms[1]} is named by SageMaker; SageMaker says: {reason}")
    assert not [call for call in aws.api_calls if call.startswith("cloudwatch:")]


def test_a_rollback_is_reported_even_when_the_alarms_cannot_be_read(aws: Any) -> None:
    first = aws.deploy()
    token = aws.start(run=2)

    def denied(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeAlarms")

    aws.cloudwatch.describe_alarms = denied
    aws.sagemaker.auto_rollback(aws.endpoint)
    assert failure(aws.poll(token)) == (
        f"update of endpoint {aws.endpoint} to {token['config']} was rolled back; it still serves {first}: "
        f"the rollback alarms {list(aws.alarms)} could not be read (DescribeAlarms failed: AccessDenied: no)"
    )


def test_update_rollback_failed_is_a_failure(aws: Any) -> None:
    aws.deploy()
    token = aws.start(run=2)
    aws.sagemaker.force(aws.endpoint, "UpdateRollbackFailed", reason="mixed fleet")
    assert failure(aws.poll(token)) == f"endpoint {aws.endpoint} is UpdateRollbackFailed: mixed fleet"


# --- autoscaling ----------------------------------------------------------------------------------


def test_autoscaling_is_registered_after_the_smoke_test_and_is_idempotent(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = aws.start()
    assert scaling_state(aws) == ([], [])  # not while the endpoint is being created
    aws.poll(token)
    aws.deploy(run=2)
    targets, policies = scaling_state(aws)
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(1, 2)]
    [policy] = policies
    assert (policy["PolicyName"], policy["PolicyType"]) == (
        "mlp-demo-endpoint-invocations-per-instance",
        "TargetTrackingScaling",
    )
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 70.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
    }
    assert aws.api_calls.count("application-autoscaling:RegisterScalableTarget") == 2

    monkeypatch.setenv("AUTOSCALING_MAX", "5")
    monkeypatch.setenv("AUTOSCALING_TARGET_INVOCATIONS", "250")
    aws.deploy(run=3)
    targets, [policy] = scaling_state(aws)
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(1, 5)]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 250.0


def test_an_autoscaling_error_after_a_good_deployment_says_what_serves(aws: Any) -> None:
    token = aws.start()

    def denied(**kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "iam:CreateServiceLinkedRole"}},
            "RegisterScalableTarget",
        )

    aws.autoscaling.register_scalable_target = denied
    assert failure(aws.poll(token)) == (
        f"endpoint {aws.endpoint} serves {token['config']} and passed its smoke test, but autoscaling failed: "
        "RegisterScalableTarget failed: AccessDeniedException: iam:CreateServiceLinkedRole"
    )


def test_scaling_calls_are_upserts_in_the_api(api_model: Any) -> None:
    """Calling both on every deployment relies on the documented create-or-update semantics."""
    model = api_model.service_model("application-autoscaling")
    assert "Registers or updates a scalable target" in model.operation_model("RegisterScalableTarget").documentation
    assert "Creates or updates a scaling policy" in model.operation_model("PutScalingPolicy").documentation
    # and deregistering before an instance type change needs no DeleteScalingPolicy
    assert "deletes the scaling policies" in model.operation_model("DeregisterScalableTarget").documentation


def test_an_update_keeps_the_instance_count_the_scaler_reached(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENDPOINT_INSTANCE_COUNT", "2")
    monkeypatch.setenv("AUTOSCALING_MAX", "6")
    monkeypatch.setenv("CANARY_PERCENT", "50")
    aws.deploy()
    aws.sagemaker.scale_to(aws.endpoint, 6)
    aws.start(run=2)
    [update] = aws.sagemaker.updates
    assert update["RetainAllVariantProperties"] is True
    canary = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["CanarySize"]
    assert canary == {"Type": "INSTANCE_COUNT", "Value": 3}  # half of the 6 running, not of the 2 configured


def test_changing_the_instance_type_deregisters_first_then_registers_again(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.deploy()
    monkeypatch.setenv("ENDPOINT_INSTANCE_TYPE", "ml.c5.xlarge")
    token = aws.start(run=2)
    [update] = aws.sagemaker.updates  # the fake rejects a type change of a registered variant
    assert "RetainAllVariantProperties" not in update
    assert scaling_state(aws) == ([], [])
    assert aws.api_calls.index("application-autoscaling:DeregisterScalableTarget") < aws.api_calls.index(
        "sagemaker:UpdateEndpoint"
    )
    aws.sagemaker.complete_update(aws.endpoint)
    aws.poll(token)
    targets, policies = scaling_state(aws)
    assert len(targets) == 1 and len(policies) == 1


def test_rollback_after_an_instance_type_change_registers_autoscaling_again(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = aws.deploy()
    monkeypatch.setenv("ENDPOINT_INSTANCE_TYPE", "ml.c5.xlarge")
    token = aws.start(run=2)
    assert scaling_state(aws) == ([], [])  # deregistered for the type change
    aws.cloudwatch.set_state(aws.alarms[0], "ALARM", "Threshold Crossed")
    aws.sagemaker.auto_rollback(aws.endpoint)
    assert failure(aws.poll(token)).endswith(
        f"it still serves {first}: {aws.alarms[0]} is in ALARM (Threshold Crossed)"
    )
    targets, policies = scaling_state(aws)
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(1, 2)] and len(policies) == 1


def test_switching_autoscaling_off_removes_the_registration(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    aws.deploy()
    monkeypatch.setenv("AUTOSCALING_ENABLED", "false")
    token = aws.start(run=2)
    aws.sagemaker.complete_update(aws.endpoint)
    _, kwargs = aws.poll(token)
    assert kwargs["executionDetails"]["summary"].endswith("; autoscaling removed")
    assert scaling_state(aws) == ([], [])
