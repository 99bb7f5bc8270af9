"""Fixtures for the deployer Lambda: moto for S3/KMS/SageMaker, a recorder for CodePipeline.

Two things moto 5.2.5 cannot do are replaced here, in the open:
- CodePipeline job results (put_job_success_result / put_job_failure_result) are recorded by
  ``RecordingCodePipeline``, which also validates each call against the real botocore API model.
- SageMaker endpoints are InService as soon as they are created and ``update_endpoint`` is not
  implemented. ``SageMakerWithEndpointStates`` wraps the moto client: ``update_endpoint`` switches
  the endpoint to the new config and marks it Updating, and ``force`` sets the status (and
  optionally config and failure reason) that ``describe_endpoint`` reports.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.validate import validate_parameters
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lambda_src"))

import deployer

REGION = "eu-west-1"
PREFIX = "mlp-demo"
ENDPOINT = "mlp-demo-endpoint"
BUCKET = "mlp-demo-shared-artifacts"
ARTIFACT_KEY = "mlp-demo-pipeline/TrainOutpu/AbCdEf1"
ROLE_ARN = "arn:aws:iam::333333333333:role/mlp-demo-sagemaker-model"
JOB_ID = "11111111-2222-3333-4444-555555555555"
TRAINING_OUTPUT = {
    "training_job_name": "mlp-demo-444bcb3a3fcf8389296c49467f27e1d6-0",
    "model_data_url": (f"s3://{BUCKET}/models/mlp-demo-444bcb3a3fcf8389296c49467f27e1d6-0/output/model.tar.gz"),
    "image_uri": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
}


class RecordingCodePipeline:
    """Stands in for the CodePipeline client: records job results and checks them against the API."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._model = boto3.client("codepipeline", region_name=REGION).meta.service_model

    def _record(self, operation: str, api_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        validate_parameters(kwargs, self._model.operation_model(api_name).input_shape)
        self.calls.append((operation, kwargs))
        return {}

    def put_job_success_result(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("put_job_success_result", "PutJobSuccessResult", kwargs)

    def put_job_failure_result(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("put_job_failure_result", "PutJobFailureResult", kwargs)


@dataclass
class SageMakerWithEndpointStates:
    """The moto SageMaker client plus the endpoint status transitions moto does not model."""

    client: Any
    forced: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

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

    def describe_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_endpoint", kwargs))
        response = self.client.describe_endpoint(**kwargs)
        return {**response, **self.forced.get(kwargs["EndpointName"], {})}

    def update_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        """Not in moto: the new config shows as pending while the endpoint is Updating."""
        self.calls.append(("update_endpoint", kwargs))
        name = kwargs["EndpointName"]
        current = self.describe_endpoint(EndpointName=name)
        assert current["EndpointStatus"] == "InService", "AWS rejects updates unless InService"
        self.forced[name] = {
            "EndpointStatus": "Updating",
            "PendingDeploymentSummary": {"EndpointConfigName": kwargs["EndpointConfigName"]},
        }
        return {"EndpointArn": current["EndpointArn"]}

    def mutating_calls(self) -> list[str]:
        return [name for name, _ in self.calls if name.split("_")[0] in {"create", "update", "delete"}]


@dataclass
class Aws:
    """Everything a deployer test touches; constants ride along so tests need not import conftest."""

    s3: Any
    sagemaker: SageMakerWithEndpointStates
    codepipeline: RecordingCodePipeline
    kms_key_arn: str
    prefix: str = PREFIX
    endpoint: str = ENDPOINT
    bucket: str = BUCKET
    role_arn: str = ROLE_ARN
    job_id: str = JOB_ID
    training_output: dict[str, str] = field(default_factory=lambda: dict(TRAINING_OUTPUT))

    def put_artifact(self, body: bytes, key: str = ARTIFACT_KEY) -> None:
        """Store the artifact the way CodePipeline does in the shared bucket: KMS-encrypted."""
        self.s3.put_object(
            Bucket=BUCKET, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_arn
        )

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
    """moto with the bucket, the key and the deployer's environment; deployer clients rerouted."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        kms_key_arn = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        env = Aws(
            s3=s3,
            sagemaker=SageMakerWithEndpointStates(boto3.client("sagemaker", region_name=REGION)),
            codepipeline=RecordingCodePipeline(),
            kms_key_arn=kms_key_arn,
        )
        for name, value in {
            "NAME_PREFIX": PREFIX,
            "SAGEMAKER_EXECUTION_ROLE_ARN": ROLE_ARN,
            "ENDPOINT_NAME": ENDPOINT,
            "ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
            "ENDPOINT_INSTANCE_COUNT": "1",
            "KMS_KEY_ARN": kms_key_arn,
            "LOG_LEVEL": "DEBUG",
        }.items():
            monkeypatch.setenv(name, value)

        def client(service: str) -> Any:
            if service == "codepipeline":
                return env.codepipeline
            if service == "sagemaker":
                return env.sagemaker
            return boto3.client(service, region_name=REGION)

        monkeypatch.setattr(deployer, "_client", client)
        yield env
