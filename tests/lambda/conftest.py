"""Fixtures for the deployer Lambda: moto where it can, model-checked stubs where it cannot.

Every client the deployer builds goes through ``deployer._client``, which the ``aws`` fixture
replaces with an ``ApiRecorder``: each call is validated against the real botocore service model
(``validate_parameters`` plus the ``max``/enum/pattern limits botocore leaves to the service) and
logged as the IAM action it needs. At teardown every logged action must be in
``permissions.REQUIRED_ACTIONS``.

Behind the recorder:
- S3, KMS, Application Auto Scaling and CloudWatch alarms are moto 5.2.5 (deregistering a scalable
  target also deletes its policies, as documented; moto keeps them).
- CodePipeline job results are recorded by ``RecordingCodePipeline``.
- SageMaker is moto wrapped by ``SageMakerWithEndpointStates``: moto endpoints are InService at
  once and moto lacks UpdateEndpoint. The wrapper emulates UpdateEndpoint (Updating with a pending
  deployment, the documented guardrail and autoscaling rules), lets a test complete or auto-roll
  back the update, and ``force`` sets what DescribeEndpoint reports. Every description is
  validated against the DescribeEndpoint output shape (its DataCaptureConfig summary is rebuilt
  from the config with the fields the real API returns; moto omits some).
- sagemaker-runtime InvokeEndpoint is ``SageMakerRuntimeStub`` (scripted answers).
- CloudWatch DescribeAlarmHistory (not in moto) is kept by ``CloudWatchWithHistory``, which records a
  history item whenever a test changes an alarm's state.

The boto3 clients behind moto are built once per session (``moto_client``); moto resets its state
at every ``mock_aws`` start, so tests stay isolated.
"""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.model import Shape
from botocore.response import StreamingBody
from botocore.validate import validate_parameters
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lambda_src"))

import deployer
import permissions

REGION = "eu-west-1"
PREFIX = "mlp-demo"
ENDPOINT = "mlp-demo-endpoint"
BUCKET = "mlp-demo-shared-artifacts"
ARTIFACT_KEY = "mlp-demo-pipeline/TrainOutpu/AbCdEf1"
SMOKE_KEY = "data/validation/validation.csv"
CAPTURE_URI = f"s3://{BUCKET}/mlp-demo-pipeline/data-capture"
ALARMS = ("mlp-demo-endpoint-invocation-5xx", "mlp-demo-endpoint-model-latency")
ROLE_ARN = "arn:aws:iam::333333333333:role/mlp-demo-sagemaker-model"
JOB_ID = "11111111-2222-3333-4444-555555555555"
TRAINING_OUTPUT = {
    "training_job_name": "mlp-demo-444bcb3a3fcf8389296c49467f27e1d6-0",
    "model_data_url": (f"s3://{BUCKET}/models/mlp-demo-444bcb3a3fcf8389296c49467f27e1d6-0/output/model.tar.gz"),
    "image_uri": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
}
VALIDATION_CSV = "".join(f"{i % 2},0.{i}1,-0.{i}2,0.{i}3,0.{i}4\n" for i in range(1, 9))
ENVIRONMENT = {
    "NAME_PREFIX": PREFIX,
    "SAGEMAKER_EXECUTION_ROLE_ARN": ROLE_ARN,
    "ENDPOINT_NAME": ENDPOINT,
    "ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
    "ENDPOINT_INSTANCE_COUNT": "1",
    "SMOKE_TEST_S3_URI": f"s3://{BUCKET}/{SMOKE_KEY}",
    "DATA_CAPTURE_S3_URI": CAPTURE_URI,
    "ROLLBACK_ALARM_NAMES": ",".join(ALARMS),
    "LOG_LEVEL": "DEBUG",
}
OPTIONAL_VARIABLES = (
    "SMOKE_TEST_ROWS",
    "SMOKE_TEST_EXPECT",
    "SMOKE_TEST_TIMEOUT_SECONDS",
    "DEPLOYMENT_STRATEGY",
    "CANARY_PERCENT",
    "LINEAR_STEP_PERCENT",
    "DEPLOYMENT_WAIT_SECONDS",
    "DEPLOYMENT_TERMINATION_WAIT_SECONDS",
    "DEPLOYMENT_TIMEOUT_SECONDS",
    "AUTOSCALING_ENABLED",
    "AUTOSCALING_MIN",
    "AUTOSCALING_MAX",
    "AUTOSCALING_TARGET_INVOCATIONS",
    "DATA_CAPTURE_PERCENT",
)
# botocore service name -> IAM service prefix (CloudWatch signs as "monitoring", the runtime as "sagemaker").
IAM_PREFIX = {
    "s3": "s3",
    "sagemaker": "sagemaker",
    "sagemaker-runtime": "sagemaker",
    "application-autoscaling": "application-autoscaling",
    "cloudwatch": "cloudwatch",
    "codepipeline": "codepipeline",
}


# --- the real API model -----------------------------------------------------------------------------


@cache
def service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


@cache
def operation_names(service: str) -> dict[str, str]:
    """boto3 method name -> API operation name, e.g. ``put_scaling_policy`` -> ``PutScalingPolicy``."""
    return {xform_name(name): name for name in service_model(service).operation_names}


def limit_problems(value: Any, shape: Shape, path: str) -> list[str]:
    """The constraints botocore's validator leaves to the service: max, enum, pattern, list/map sizes."""
    meta, kind = shape.metadata, shape.type_name
    problems: list[str] = []
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                problems += limit_problems(value[name], member, f"{path}.{name}")
    elif kind in {"list", "map"} and isinstance(value, list | dict):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} items, at most {meta['max']} allowed")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            inner = shape.value if kind == "map" else shape.member
            problems += limit_problems(item, inner, f"{path}[{key!r}]")
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} characters, at most {meta['max']} allowed")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        try:
            pattern = re.compile(meta["pattern"]) if "pattern" in meta else None
        except re.error:  # Java-only syntax such as \p{ASCII}; the other checks still apply
            pattern = None
        if pattern is not None and not pattern.search(value):
            problems.append(f"{path}: {value!r} does not match {meta['pattern']}")
    elif kind in {"integer", "long", "float", "double"} and isinstance(value, int | float):
        problems += [f"{path}: {value} is above the maximum {meta['max']}"] if value > meta.get("max", value) else []
    return problems


def check_against(shape: Shape, params: dict[str, Any], what: str) -> None:
    """Raise if ``params`` is not valid for ``shape``, including the limits botocore does not check."""
    validate_parameters(params, shape)
    problems = limit_problems(params, shape, what)
    assert not problems, "\n".join(problems)


def check_request(service: str, operation: str, params: dict[str, Any]) -> None:
    check_against(service_model(service).operation_model(operation).input_shape, params, operation)


def check_response(service: str, operation: str, response: dict[str, Any]) -> None:
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    check_against(service_model(service).operation_model(operation).output_shape, body, f"{operation} response")


@cache
def moto_client(service: str) -> Any:
    """One boto3 client per service for the whole session: building clients is the slowest part of a
    test, and moto serves any client while a mock is active (its state is reset at every mock start)."""
    return boto3.client(service, region_name=REGION)


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


# --- the recorder at the deployer's client seam ---------------------------------------------------


class ApiRecorder:
    """A client as the deployer sees it: every API call is model-checked and logged as an IAM action."""

    def __init__(self, service: str, target: Any, log: list[str]) -> None:
        self._service, self._target, self._log = service, target, log

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        operation = operation_names(self._service).get(name)
        if operation is None:
            return attribute

        def call(**kwargs: Any) -> Any:
            check_request(self._service, operation, kwargs)
            self._log.append(f"{IAM_PREFIX[self._service]}:{operation}")
            return attribute(**kwargs)

        return call


class RecordingCodePipeline:
    """Stands in for the CodePipeline client: records job results and checks them against the API."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._model = service_model("codepipeline")

    def _record(self, operation: str, api_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        validate_parameters(kwargs, self._model.operation_model(api_name).input_shape)
        self.calls.append((operation, kwargs))
        return {}

    def put_job_success_result(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("put_job_success_result", "PutJobSuccessResult", kwargs)

    def put_job_failure_result(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("put_job_failure_result", "PutJobFailureResult", kwargs)


# --- SageMaker ------------------------------------------------------------------------------------


@dataclass
class SageMakerWithEndpointStates:
    """The moto SageMaker client plus the endpoint status transitions moto does not model."""

    client: Any
    autoscaling: Any  # a moto client, to apply Application Auto Scaling's rule on instance types
    forced: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def recorded(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)

        return recorded

    def force(self, endpoint: str, status: str, config: str | None = None, reason: str | None = None) -> None:
        """Make describe_endpoint report ``status`` (and ``config``/``reason``) for ``endpoint``."""
        override: dict[str, Any] = {"EndpointStatus": status}
        if config is not None:
            override["EndpointConfigName"] = config
        if reason is not None:
            override["FailureReason"] = reason
        self.forced[endpoint] = override

    def state(self, endpoint: str) -> dict[str, Any] | None:
        """What DescribeEndpoint reports, without recording a call (``None``: no such endpoint)."""
        try:
            response = self.client.describe_endpoint(EndpointName=endpoint)
        except ClientError:
            return None
        described = {**response, **self.forced.get(endpoint, {})}
        described.pop("DataCaptureConfig", None)  # moto's summary lacks fields the real API always returns
        config = self.client.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        capture = config.get("DataCaptureConfig")
        if capture:
            described["DataCaptureConfig"] = {
                "EnableCapture": capture.get("EnableCapture", True),
                "CaptureStatus": "Started",
                "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
                "DestinationS3Uri": capture["DestinationS3Uri"],
                "KmsKeyId": capture.get("KmsKeyId", ""),
            }
        check_response("sagemaker", "DescribeEndpoint", described)
        return described

    def describe_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_endpoint", kwargs))
        self.client.describe_endpoint(**kwargs)  # moto raises the real error for a missing endpoint
        described = self.state(kwargs["EndpointName"])
        assert described is not None
        return described

    def _initial_count(self, config: str) -> int:
        variants = self.client.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        return int(variants[0]["InitialInstanceCount"])

    def update_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        """Not in moto: the new config shows as pending while the endpoint is Updating.

        Applies the documented rules the model cannot express: only InService endpoints update;
        guardrails need the same variant name; a canary is at most 50 % and a linear step 10-50 % of
        the new fleet; the timeout exceeds the waiting; and an update changing the instance type of
        a variant registered with Application Auto Scaling fails.
        """
        self.calls.append(("update_endpoint", kwargs))
        name, target = kwargs["EndpointName"], kwargs["EndpointConfigName"]
        current = self.state(name)
        assert current is not None, f"no endpoint {name}"
        assert current["EndpointStatus"] == "InService", "AWS rejects updates unless InService"
        old = self.client.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
        new = self.client.describe_endpoint_config(EndpointConfigName=target)  # moto raises if missing
        old_variant, new_variant = old["ProductionVariants"][0], new["ProductionVariants"][0]
        if old_variant["VariantName"] != new_variant["VariantName"]:
            raise client_error("ValidationException", "variant names must match for a guarded update", "UpdateEndpoint")
        resource = f"endpoint/{name}/variant/{new_variant['VariantName']}"
        registered = self.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
        if registered["ScalableTargets"] and old_variant["InstanceType"] != new_variant["InstanceType"]:
            raise client_error(
                "ValidationException",
                "The variant is registered with Application Auto Scaling; deregister it to change the instance type",
                "UpdateEndpoint",
            )
        fleet = new_variant["InitialInstanceCount"]
        if kwargs.get("RetainAllVariantProperties"):
            fleet = current["ProductionVariants"][0]["DesiredInstanceCount"]
        policy = kwargs.get("DeploymentConfig", {}).get("BlueGreenUpdatePolicy")
        if policy:
            check_guardrail_rules(policy, fleet)
        self.updates.append(kwargs)
        self.forced[name] = {
            "EndpointStatus": "Updating",
            "EndpointConfigName": current["EndpointConfigName"],
            "ProductionVariants": current["ProductionVariants"],
            "PendingDeploymentSummary": {"EndpointConfigName": target, "StartTime": datetime.now(UTC)},
        }
        return {"EndpointArn": current["EndpointArn"]}

    def complete_update(self, endpoint: str) -> None:
        """The pending deployment finished: the endpoint serves it."""
        pending = self.forced[endpoint]["PendingDeploymentSummary"]["EndpointConfigName"]
        request = self.updates[-1]
        count = self._initial_count(pending)
        if request.get("RetainAllVariantProperties"):
            count = self.forced[endpoint]["ProductionVariants"][0]["DesiredInstanceCount"]
        self.forced[endpoint] = {
            "EndpointStatus": "InService",
            "EndpointConfigName": pending,
            "ProductionVariants": [
                {"VariantName": "AllTraffic", "CurrentInstanceCount": count, "DesiredInstanceCount": count}
            ],
        }
        if "DeploymentConfig" in request:
            self.forced[endpoint]["LastDeploymentConfig"] = request["DeploymentConfig"]

    def auto_rollback(self, endpoint: str, reason: str | None = None) -> None:
        """An alarm fired during the update: SageMaker returned all traffic to the old fleet."""
        described = self.state(endpoint)
        assert described is not None
        self.forced[endpoint] = {
            "EndpointStatus": "InService",
            "EndpointConfigName": described["EndpointConfigName"],
            "ProductionVariants": described["ProductionVariants"],
            "LastDeploymentConfig": self.updates[-1]["DeploymentConfig"],
        }
        if reason is not None:
            self.forced[endpoint]["FailureReason"] = reason

    def scale_to(self, endpoint: str, count: int) -> None:
        """What Application Auto Scaling does to an InService endpoint between deployments."""
        described = self.state(endpoint)
        assert described is not None
        variant = {"VariantName": "AllTraffic", "CurrentInstanceCount": count, "DesiredInstanceCount": count}
        self.forced[endpoint] = {**self.forced.get(endpoint, {}), "ProductionVariants": [variant]}

    def mutating_calls(self) -> list[str]:
        return [name for name, _ in self.calls if name.split("_")[0] in {"create", "update", "delete"}]


def check_guardrail_rules(policy: dict[str, Any], fleet: int) -> None:
    """TrafficRoutingConfig's documented limits relative to the fleet (not expressible in the model)."""
    routing = policy["TrafficRoutingConfiguration"]
    for key, low, high in (("CanarySize", 0, 50), ("LinearStepSize", 10, 50)):
        size = routing.get(key)
        if size is None:
            continue
        share = size["Value"] * 100 / fleet if size["Type"] == "INSTANCE_COUNT" else size["Value"]
        if not low <= share <= high or (low == 0 and share == 0):
            raise client_error("ValidationException", f"{key} is {share:g}% of {fleet} instances", "UpdateEndpoint")
    steps = 1
    if "LinearStepSize" in routing:
        steps = -(-fleet // routing["LinearStepSize"]["Value"])
    waiting = steps * routing["WaitIntervalInSeconds"] + policy.get("TerminationWaitInSeconds", 0)
    if policy.get("MaximumExecutionTimeoutInSeconds", 28800) <= waiting:
        raise client_error("ValidationException", "timeout must exceed the waiting time", "UpdateEndpoint")


@dataclass
class SageMakerRuntimeStub:
    """InvokeEndpoint with scripted answers; by default one healthy probability per CSV row."""

    sagemaker: SageMakerWithEndpointStates
    answers: list[Any] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, body: bytes | str, content_type: str = "text/csv") -> None:
        self.answers.append((body.encode() if isinstance(body, str) else body, content_type))

    def fail_with(self, error: Exception) -> None:
        self.answers.append(error)

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        name = kwargs["EndpointName"]
        if self.sagemaker.state(name) is None:
            raise client_error(
                "ValidationError", f"Endpoint {name} of account 333333333333 not found.", "InvokeEndpoint"
            )
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        if answer is None:
            rows = [line for line in kwargs["Body"].decode().split("\n") if line]
            answer = ("\n".join("0.25" for _ in rows).encode(), "text/csv")
        body, content_type = answer
        return {
            "Body": StreamingBody(io.BytesIO(body), len(body)),
            "ContentType": content_type,
            "InvokedProductionVariant": "AllTraffic",
        }


# --- Application Auto Scaling ---------------------------------------------------------------------


@dataclass
class AutoScalingAsDocumented:
    """moto Application Auto Scaling, except that deregistering a target deletes its scaling policies.

    That is what the API documents ("Deregistering a scalable target deletes the scaling policies and
    the scheduled actions that are associated with it"); moto 5.2.5 keeps the policies.
    """

    client: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def deregister_scalable_target(self, **kwargs: Any) -> dict[str, Any]:
        response = self.client.deregister_scalable_target(**kwargs)
        policies = self.client.describe_scaling_policies(
            ServiceNamespace=kwargs["ServiceNamespace"], ResourceId=kwargs["ResourceId"]
        )["ScalingPolicies"]
        for policy in policies:
            if policy["ScalableDimension"] == kwargs["ScalableDimension"]:
                self.client.delete_scaling_policy(
                    PolicyName=policy["PolicyName"],
                    ServiceNamespace=kwargs["ServiceNamespace"],
                    ResourceId=kwargs["ResourceId"],
                    ScalableDimension=kwargs["ScalableDimension"],
                )
        return response


# --- CloudWatch -----------------------------------------------------------------------------------


@dataclass
class CloudWatchWithHistory:
    """moto CloudWatch plus DescribeAlarmHistory, which moto lacks: state changes made here are kept."""

    client: Any
    history: list[dict[str, Any]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def set_state(self, alarm: str, state: str, reason: str, when: datetime | None = None) -> None:
        old = self.client.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"]
        self.client.set_alarm_state(AlarmName=alarm, StateValue=state, StateReason=reason)
        data = {
            "version": "1.0",
            "oldState": {"stateValue": old},
            "newState": {"stateValue": state, "stateReason": reason},
        }
        self.history.append(
            {
                "AlarmName": alarm,
                "AlarmType": "MetricAlarm",
                "Timestamp": when or datetime.now(UTC),
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old} to {state}",
                "HistoryData": json.dumps(data),
            }
        )

    def describe_alarm_history(self, **kwargs: Any) -> dict[str, Any]:
        items = [
            item
            for item in self.history
            if item["AlarmName"] == kwargs.get("AlarmName", item["AlarmName"])
            and item["HistoryItemType"] == kwargs.get("HistoryItemType", item["HistoryItemType"])
            and kwargs.get("StartDate", item["Timestamp"])
            <= item["Timestamp"]
            <= kwargs.get("EndDate", item["Timestamp"])
        ]
        items.sort(key=lambda item: item["Timestamp"], reverse=kwargs.get("ScanBy") != "TimestampAscending")
        response = {"AlarmHistoryItems": items[: kwargs.get("MaxRecords", 50)]}
        check_response("cloudwatch", "DescribeAlarmHistory", response)
        return response


# --- the environment a test runs in ---------------------------------------------------------------


@dataclass
class Aws:
    """Everything a deployer test touches; constants ride along so tests need not import conftest."""

    s3: Any
    sagemaker: SageMakerWithEndpointStates
    runtime: SageMakerRuntimeStub
    cloudwatch: CloudWatchWithHistory
    autoscaling: Any
    codepipeline: RecordingCodePipeline
    kms_key_arn: str
    api_calls: list[str] = field(default_factory=list)
    client_configs: dict[str, Any] = field(default_factory=dict)
    prefix: str = PREFIX
    endpoint: str = ENDPOINT
    bucket: str = BUCKET
    role_arn: str = ROLE_ARN
    job_id: str = JOB_ID
    smoke_key: str = SMOKE_KEY
    capture_uri: str = CAPTURE_URI
    alarms: tuple[str, ...] = ALARMS
    training_output: dict[str, str] = field(default_factory=lambda: dict(TRAINING_OUTPUT))

    def put_artifact(self, body: bytes, key: str = ARTIFACT_KEY) -> None:
        """Store the artifact the way CodePipeline does in the shared bucket: KMS-encrypted."""
        self.s3.put_object(
            Bucket=BUCKET, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_arn
        )

    def put_validation_data(self, body: bytes | str, key: str = SMOKE_KEY) -> None:
        self.s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=body.encode() if isinstance(body, str) else body,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self.kms_key_arn,
        )

    def output(self, run: int = 1) -> dict[str, str]:
        """The output of training run ``run`` (run 1 is ``training_output``)."""
        if run == 1:
            return self.training_output
        job = f"mlp-demo-run{run}-0"
        return {
            **self.training_output,
            "training_job_name": job,
            "model_data_url": f"s3://{BUCKET}/models/{job}.tar.gz",
        }

    def start(self, run: int = 1) -> dict[str, Any]:
        """The first invocation for training run ``run``; returns the continuation token it reported."""
        self.put_artifact(self.zipped({"output.json": self.output(run)}))
        self.codepipeline.calls.clear()
        deployer.handler(self.event(), None)
        [(operation, kwargs)] = self.codepipeline.calls
        assert operation == "put_job_success_result", kwargs
        return json.loads(kwargs["continuationToken"])

    def poll(self, token: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """One re-invocation with ``token``; returns the job result it reported."""
        self.codepipeline.calls.clear()
        deployer.handler(self.event(json.dumps(token)), None)
        [call] = self.codepipeline.calls
        return call

    def deploy(self, run: int = 1) -> str:
        """A whole successful deployment of training run ``run``; returns the config now served."""
        token = self.start(run)
        if token["previous_config"] is not None:
            self.sagemaker.complete_update(ENDPOINT)
        operation, kwargs = self.poll(token)
        assert operation == "put_job_success_result" and "continuationToken" not in kwargs, kwargs
        return token["config"]

    @staticmethod
    def zipped(files: dict[str, Any]) -> bytes:
        """A CodePipeline artifact: a zip of ``name -> JSON value`` (bytes are stored as they are)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content if isinstance(content, bytes) else json.dumps(content))
        return buffer.getvalue()

    @staticmethod
    def event(token: str | None = None, key: str = ARTIFACT_KEY) -> dict[str, Any]:
        """The event of the Lambda Invoke action, with the parts the deployer reads."""
        data: dict[str, Any] = {
            "actionConfiguration": {"configuration": {"FunctionName": "mlp-demo-deployer"}},
            "inputArtifacts": [
                {
                    "name": "TrainOutput",
                    "revision": None,
                    "location": {"type": "S3", "s3Location": {"bucketName": BUCKET, "objectKey": key}},
                }
            ],
            "outputArtifacts": [],
            "artifactCredentials": {
                "accessKeyId": "AKIAEXAMPLE",
                "secretAccessKey": "must-never-be-logged",
                "sessionToken": "must-never-be-logged",
            },
        }
        if token is not None:
            data["continuationToken"] = token
        return {"CodePipeline.job": {"id": JOB_ID, "accountId": "333333333333", "data": data}}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """moto with the bucket, key, validation data and alarms, the deployer's environment, clients rerouted."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in OPTIONAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        kms_key_arn = moto_client("kms").create_key()["KeyMetadata"]["Arn"]
        s3 = moto_client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        autoscaling = AutoScalingAsDocumented(moto_client("application-autoscaling"))
        cloudwatch = CloudWatchWithHistory(moto_client("cloudwatch"))
        for alarm, metric in zip(ALARMS, ("Invocation5XXErrors", "ModelLatency"), strict=True):
            cloudwatch.client.put_metric_alarm(
                AlarmName=alarm,
                Namespace="AWS/SageMaker",
                MetricName=metric,
                Dimensions=[
                    {"Name": "EndpointName", "Value": ENDPOINT},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
                Statistic="Average",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
            cloudwatch.client.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="created")
        sagemaker = SageMakerWithEndpointStates(moto_client("sagemaker"), autoscaling)
        env = Aws(
            s3=s3,
            sagemaker=sagemaker,
            runtime=SageMakerRuntimeStub(sagemaker),
            cloudwatch=cloudwatch,
            autoscaling=autoscaling,
            codepipeline=RecordingCodePipeline(),
            kms_key_arn=kms_key_arn,
        )
        env.put_validation_data(VALIDATION_CSV)
        for name, value in {**ENVIRONMENT, "KMS_KEY_ARN": kms_key_arn}.items():
            monkeypatch.setenv(name, value)
        targets = {
            "codepipeline": env.codepipeline,
            "sagemaker": env.sagemaker,
            "sagemaker-runtime": env.runtime,
            "cloudwatch": env.cloudwatch,
            "application-autoscaling": env.autoscaling,
            "s3": env.s3,
        }

        def client(service: str, config: Any = None) -> Any:
            env.client_configs[service] = config
            return ApiRecorder(service, targets[service], env.api_calls)

        monkeypatch.setattr(deployer, "_client", client)
        yield env
    unexpected = set(env.api_calls) - permissions.REQUIRED_ACTIONS
    assert not unexpected, f"the deployer made calls missing from permissions.REQUIRED_ACTIONS: {sorted(unexpected)}"


@pytest.fixture
def api_model() -> SimpleNamespace:
    """The model checks, for tests that validate requests the deployer builds without sending them."""
    return SimpleNamespace(
        check_request=check_request,
        limit_problems=limit_problems,
        guardrail_rules=check_guardrail_rules,
        service_model=service_model,
    )
