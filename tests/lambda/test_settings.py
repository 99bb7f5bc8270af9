"""The deployer's environment contract (``Settings.from_env``): defaults, switches and clear errors."""

from __future__ import annotations

import deployer
import pytest

KMS = "arn:aws:kms:eu-west-1:333333333333:key/0f0e0d0c-1111-2222-3333-444455556666"
BASE = {
    "NAME_PREFIX": "mlp-demo",
    "SAGEMAKER_EXECUTION_ROLE_ARN": "arn:aws:iam::333333333333:role/mlp-demo-sagemaker-model",
    "ENDPOINT_NAME": "mlp-demo-endpoint",
    "ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
    "ENDPOINT_INSTANCE_COUNT": "2",
    "KMS_KEY_ARN": KMS,
    "SMOKE_TEST_S3_URI": "s3://mlp-demo-shared-artifacts/data/validation/validation.csv",
    "DATA_CAPTURE_S3_URI": "s3://mlp-demo-shared-artifacts/mlp-demo-pipeline/data-capture/",
    "ROLLBACK_ALARM_NAMES": " mlp-demo-endpoint-5xx , mlp-demo-endpoint-latency ",
}


def settings(**changes: str | None) -> deployer.Settings:
    env = {**BASE, **changes}
    return deployer.Settings.from_env({k: v for k, v in env.items() if v is not None})


def test_defaults() -> None:
    loaded = settings()
    assert loaded.smoke == deployer.SmokeTest(
        bucket="mlp-demo-shared-artifacts",
        key="data/validation/validation.csv",
        rows=5,
        expect="probability",
        timeout=10,
    )
    assert loaded.rollout == deployer.Rollout(
        strategy="CANARY",
        canary_percent=10,
        linear_step_percent=25,
        wait_seconds=300,
        termination_wait_seconds=300,
        timeout_seconds=3600,
        alarm_names=("mlp-demo-endpoint-5xx", "mlp-demo-endpoint-latency"),
    )
    assert loaded.scaling == deployer.Scaling(enabled=True, min_capacity=2, max_capacity=4, target_invocations=70.0)
    assert loaded.capture == deployer.Capture(
        percent=20, destination="s3://mlp-demo-shared-artifacts/mlp-demo-pipeline/data-capture"
    )


def test_empty_values_mean_defaults_and_choices_ignore_case() -> None:
    loaded = settings(DEPLOYMENT_STRATEGY="linear", SMOKE_TEST_EXPECT="NUMBER", CANARY_PERCENT="", AUTOSCALING_MAX=" ")
    assert (loaded.rollout.strategy, loaded.smoke and loaded.smoke.expect) == ("LINEAR", "number")
    assert (loaded.rollout.canary_percent, loaded.scaling.max_capacity) == (10, 4)


def test_zero_switches_smoke_test_and_capture_off_without_their_uris() -> None:
    loaded = settings(SMOKE_TEST_ROWS="0", SMOKE_TEST_S3_URI=None, DATA_CAPTURE_PERCENT="0", DATA_CAPTURE_S3_URI=None)
    assert (loaded.smoke, loaded.capture) == (None, None)


def test_autoscaling_values_and_switch() -> None:
    loaded = settings(AUTOSCALING_MIN="1", AUTOSCALING_MAX="8", AUTOSCALING_TARGET_INVOCATIONS="250.5")
    assert loaded.scaling == deployer.Scaling(enabled=True, min_capacity=1, max_capacity=8, target_invocations=250.5)
    assert settings(AUTOSCALING_ENABLED="False").scaling.enabled is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SMOKE_TEST_S3_URI": None}, "SMOKE_TEST_S3_URI is required (the validation CSV); set SMOKE_TEST_ROWS=0"),
        ({"SMOKE_TEST_S3_URI": "https://example.com/v.csv"}, "SMOKE_TEST_S3_URI must be an s3://bucket/key URI"),
        ({"SMOKE_TEST_S3_URI": "s3://bucket/validation/"}, "must name a CSV object, not a prefix"),
        ({"SMOKE_TEST_ROWS": "101"}, "SMOKE_TEST_ROWS must be an integer from 0 to 100, got '101'"),
        ({"SMOKE_TEST_ROWS": "five"}, "SMOKE_TEST_ROWS must be an integer from 0 to 100, got 'five'"),
        ({"SMOKE_TEST_EXPECT": "label"}, "SMOKE_TEST_EXPECT must be one of probability|number, got 'label'"),
        ({"SMOKE_TEST_TIMEOUT_SECONDS": "31"}, "SMOKE_TEST_TIMEOUT_SECONDS must be an integer from 1 to 30"),
        ({"DEPLOYMENT_STRATEGY": "ROLLING"}, "DEPLOYMENT_STRATEGY must be one of CANARY|LINEAR|ALL_AT_ONCE"),
        ({"CANARY_PERCENT": "51"}, "CANARY_PERCENT must be an integer from 1 to 50"),
        ({"LINEAR_STEP_PERCENT": "5"}, "LINEAR_STEP_PERCENT must be an integer from 10 to 50"),
        ({"DEPLOYMENT_WAIT_SECONDS": "3601"}, "DEPLOYMENT_WAIT_SECONDS must be an integer from 0 to 3600"),
        (
            {"DEPLOYMENT_TERMINATION_WAIT_SECONDS": "-1"},
            "DEPLOYMENT_TERMINATION_WAIT_SECONDS must be an integer from 0",
        ),
        ({"DEPLOYMENT_TIMEOUT_SECONDS": "599"}, "DEPLOYMENT_TIMEOUT_SECONDS must be an integer from 600 to 28800"),
        ({"ROLLBACK_ALARM_NAMES": None}, "ROLLBACK_ALARM_NAMES is required: comma-separated CloudWatch alarm names"),
        ({"ROLLBACK_ALARM_NAMES": ",".join(f"a{i}" for i in range(11))}, "ROLLBACK_ALARM_NAMES must be 1-10 distinct"),
        ({"ROLLBACK_ALARM_NAMES": "a,b,a"}, "ROLLBACK_ALARM_NAMES must be 1-10 distinct"),
        ({"ROLLBACK_ALARM_NAMES": "x" * 256}, "names of at most 255 characters"),
        ({"AUTOSCALING_ENABLED": "yes"}, "AUTOSCALING_ENABLED must be true or false, got 'yes'"),
        (
            {"AUTOSCALING_MIN": "3"},
            "AUTOSCALING_MIN (3) <= ENDPOINT_INSTANCE_COUNT (2) <= AUTOSCALING_MAX (4) must hold",
        ),
        (
            {"AUTOSCALING_MAX": "1"},
            "AUTOSCALING_MIN (2) <= ENDPOINT_INSTANCE_COUNT (2) <= AUTOSCALING_MAX (1) must hold",
        ),
        ({"AUTOSCALING_MIN": "0"}, "AUTOSCALING_MIN must be an integer from 1 to 1000"),
        ({"AUTOSCALING_TARGET_INVOCATIONS": "0"}, "AUTOSCALING_TARGET_INVOCATIONS must be a number > 0, got '0'"),
        ({"AUTOSCALING_TARGET_INVOCATIONS": "nan"}, "AUTOSCALING_TARGET_INVOCATIONS must be a number > 0, got 'nan'"),
        ({"DATA_CAPTURE_PERCENT": "101"}, "DATA_CAPTURE_PERCENT must be an integer from 0 to 100"),
        ({"DATA_CAPTURE_S3_URI": None}, "DATA_CAPTURE_S3_URI is required while DATA_CAPTURE_PERCENT > 0"),
        ({"DATA_CAPTURE_S3_URI": "s3://Bad_Bucket/x"}, "DATA_CAPTURE_S3_URI must be an s3://bucket/key URI"),
        ({"DATA_CAPTURE_S3_URI": "s3://bucket-only"}, "DATA_CAPTURE_S3_URI must be an s3://bucket/key URI"),
        ({"KMS_KEY_ARN": "alias/pipeline"}, "KMS_KEY_ARN must be a KMS key ARN"),
    ],
)
def test_bad_values_are_refused_clearly(changes: dict[str, str | None], message: str) -> None:
    with pytest.raises(deployer.DeployError) as caught:
        settings(**changes)
    assert message in str(caught.value)
