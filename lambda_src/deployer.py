"""Deploys the trained model to the production SageMaker endpoint for a CodePipeline Invoke action.

CodePipeline gives the action about 20 minutes per invocation and a Lambda at most 15, while an
endpoint takes longer to create or update. So the first invocation only starts the change and
returns a continuation token; CodePipeline invokes again with the token until the endpoint is
InService (success), failed or rolled back (failure). Every path reports to CodePipeline, or the
pipeline would wait until the action times out.

Serving like production adds four things around that loop:

- the endpoint config captures a sample of requests and responses to S3, encrypted with the
  pipeline key (``DATA_CAPTURE_*``);
- updates of a live endpoint use SageMaker deployment guardrails: a blue/green update with canary or
  linear traffic shifting, rolled back by SageMaker itself when a CloudWatch alarm fires
  (``DEPLOYMENT_*``, ``ROLLBACK_ALARM_NAMES``); a rolled-back update fails the job, naming the alarm;
- once the endpoint serves the new config it must answer a few validation rows with well-formed
  predictions (``SMOKE_TEST_*``) before the job succeeds; otherwise the endpoint is returned to the
  previous config (waiting with continuation tokens again) and the job fails;
- after that, Application Auto Scaling tracks invocations per instance (``AUTOSCALING_*``). It can
  only be registered here: Terraform cannot register a target for an endpoint this Lambda creates.

Names are derived from the training job name and the endpoint settings, never from time, so a
repeated invocation for the same job finds what the first one created instead of duplicating it.
Only resources whose names start with NAME_PREFIX are created, updated or deleted.

The environment contract is ``Settings.from_env``; the AWS actions used are listed in
``permissions.py``. Stdlib and boto3 only: runs on the python3.12 Lambda runtime without a layer.

Lambda timeout: at least 120 s. The invocation that runs the smoke test may spend up to
2 attempts x (5 s connect + SMOKE_TEST_TIMEOUT_SECONDS, at most 30 s) = 70 s in InvokeEndpoint and
then still has to return the endpoint or register autoscaling and report to CodePipeline.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import sys
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOG = logging.getLogger("deployer")

MAX_NAME = 63  # SageMaker model, endpoint config and endpoint names
NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_ARTIFACT_BYTES = 5 * 1024 * 1024  # the artifact holds one small JSON document
MAX_JSON_BYTES = 256 * 1024  # Step Functions output is limited to 256 KiB
MAX_FAILURE_MESSAGE = 5000  # PutJobFailureResult limit
MAX_SUMMARY = 2048  # PutJobSuccessResult executionDetails.summary limit
MAX_TOKEN = 2048  # PutJobSuccessResult continuationToken limit
MAX_TOKEN_NOTE = 1000  # the smoke test failure carried through the rollback wait
MAX_EXCERPT = 200  # characters of an endpoint response quoted in a failure
PREFERRED_OUTPUT_FILE = "output.json"
IN_PROGRESS = {"Creating", "Updating", "SystemUpdating", "RollingBack"}
VARIANT_NAME = "AllTraffic"

SMOKE_MAX_BYTES = 64 * 1024  # read only the head of the validation file
SMOKE_MAX_RESPONSE = 64 * 1024
SMOKE_CONTENT_TYPE = "text/csv"
EXPECTATIONS = ("probability", "number")
STRATEGIES = ("CANARY", "LINEAR", "ALL_AT_ONCE")
MAX_ALARMS = 10  # AutoRollbackConfig.Alarms

SCALING_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"
SCALE_IN_COOLDOWN = 300  # scale in slowly: a dip in traffic is often followed by a burst
SCALE_OUT_COOLDOWN = 60

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


class DeployError(Exception):
    """A failure to report to CodePipeline as the job's failure message."""


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmokeTest:
    """Where the validation rows are and what a healthy answer looks like."""

    bucket: str
    key: str
    rows: int
    expect: str
    timeout: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Rollout:
    """Deployment guardrails for updates of a live endpoint."""

    strategy: str
    canary_percent: int
    linear_step_percent: int
    wait_seconds: int
    termination_wait_seconds: int
    timeout_seconds: int
    alarm_names: tuple[str, ...]


@dataclass(frozen=True)
class Scaling:
    """Target tracking on invocations per instance; ``enabled=False`` removes a registered target."""

    enabled: bool
    min_capacity: int
    max_capacity: int
    target_invocations: float


@dataclass(frozen=True)
class Capture:
    """Data capture of requests and responses; absent from Settings when the percentage is 0."""

    percent: int
    destination: str


@dataclass(frozen=True)
class Settings:
    """The environment contract, checked once per invocation so a bad variable fails the job clearly."""

    name_prefix: str
    role_arn: str
    endpoint_name: str
    instance_type: str
    instance_count: int
    kms_key_arn: str
    smoke: SmokeTest | None
    rollout: Rollout
    scaling: Scaling
    capture: Capture | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        missing = [
            key
            for key in (
                "NAME_PREFIX",
                "SAGEMAKER_EXECUTION_ROLE_ARN",
                "ENDPOINT_NAME",
                "ENDPOINT_INSTANCE_TYPE",
                "ENDPOINT_INSTANCE_COUNT",
                "KMS_KEY_ARN",
            )
            if not env.get(key)
        ]
        if missing:
            raise DeployError(f"deployer misconfigured: missing environment variables {missing}")
        prefix = env["NAME_PREFIX"]
        if not NAME_RE.match(prefix) or len(prefix) > 20:
            raise DeployError(f"NAME_PREFIX {prefix!r} must be 1-20 of [a-zA-Z0-9-]")
        endpoint = env["ENDPOINT_NAME"]
        if not _owned(endpoint, prefix) or not NAME_RE.match(endpoint) or len(endpoint) > MAX_NAME:
            raise DeployError(f"ENDPOINT_NAME {endpoint!r} must be a valid SageMaker name starting with {prefix}-")
        try:
            count = int(env["ENDPOINT_INSTANCE_COUNT"])
        except ValueError:
            count = 0
        if count < 1:
            raise DeployError("ENDPOINT_INSTANCE_COUNT must be an integer >= 1")
        role = env["SAGEMAKER_EXECUTION_ROLE_ARN"]
        if not role.startswith("arn:") or ":role/" not in role:
            raise DeployError("SAGEMAKER_EXECUTION_ROLE_ARN must be an IAM role ARN")
        kms_key = env["KMS_KEY_ARN"]
        if not re.fullmatch(r"arn:[a-z-]+:kms:[a-z0-9-]+:\d{12}:key/[a-zA-Z0-9-]+", kms_key):
            raise DeployError("KMS_KEY_ARN must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>)")
        return cls(
            name_prefix=prefix,
            role_arn=role,
            endpoint_name=endpoint,
            instance_type=env["ENDPOINT_INSTANCE_TYPE"],
            instance_count=count,
            kms_key_arn=kms_key,
            smoke=_smoke_from_env(env),
            rollout=_rollout_from_env(env),
            scaling=_scaling_from_env(env, count),
            capture=_capture_from_env(env),
        )


def _value(env: Mapping[str, str], key: str) -> str:
    """An unset and an empty variable both mean "use the default" (Terraform renders empty strings)."""
    return (env.get(key) or "").strip()


def _integer(env: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = _value(env, key)
    if not raw:
        return default
    try:
        number = int(raw)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise DeployError(f"{key} must be an integer from {low} to {high}, got {raw!r}")
    return number


def _choice(env: Mapping[str, str], key: str, default: str, choices: Sequence[str], upper: bool) -> str:
    raw = _value(env, key) or default
    value = raw.upper() if upper else raw.lower()
    if value not in choices:
        raise DeployError(f"{key} must be one of {'|'.join(choices)}, got {raw!r}")
    return value


def _s3_uri(key: str, raw: str) -> tuple[str, str]:
    """``s3://bucket/path`` with a non-empty path; the bucket name follows the S3 naming rules."""
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(\S+)", raw)
    if not match or len(raw) > 512:
        raise DeployError(f"{key} must be an s3://bucket/key URI of at most 512 characters, got {raw!r}")
    return match.group(1), match.group(2)


def _smoke_from_env(env: Mapping[str, str]) -> SmokeTest | None:
    rows = _integer(env, "SMOKE_TEST_ROWS", 5, 0, 100)
    expect = _choice(env, "SMOKE_TEST_EXPECT", "probability", EXPECTATIONS, upper=False)
    timeout = _integer(env, "SMOKE_TEST_TIMEOUT_SECONDS", 10, 1, 30)
    if rows == 0:
        return None  # explicitly switched off; logged as a warning on every deployment
    raw = _value(env, "SMOKE_TEST_S3_URI")
    if not raw:
        raise DeployError("SMOKE_TEST_S3_URI is required (the validation CSV); set SMOKE_TEST_ROWS=0 to skip")
    bucket, key = _s3_uri("SMOKE_TEST_S3_URI", raw)
    if key.endswith("/"):
        raise DeployError(f"SMOKE_TEST_S3_URI must name a CSV object, not a prefix: {raw!r}")
    return SmokeTest(bucket=bucket, key=key, rows=rows, expect=expect, timeout=timeout)


def _rollout_from_env(env: Mapping[str, str]) -> Rollout:
    names = [name.strip() for name in _value(env, "ROLLBACK_ALARM_NAMES").split(",") if name.strip()]
    if not names:
        raise DeployError("ROLLBACK_ALARM_NAMES is required: comma-separated CloudWatch alarm names")
    if len(names) > MAX_ALARMS or len(set(names)) != len(names) or any(len(n) > 255 for n in names):
        raise DeployError(f"ROLLBACK_ALARM_NAMES must be 1-{MAX_ALARMS} distinct names of at most 255 characters")
    return Rollout(
        strategy=_choice(env, "DEPLOYMENT_STRATEGY", "CANARY", STRATEGIES, upper=True),
        canary_percent=_integer(env, "CANARY_PERCENT", 10, 1, 50),
        linear_step_percent=_integer(env, "LINEAR_STEP_PERCENT", 25, 10, 50),
        wait_seconds=_integer(env, "DEPLOYMENT_WAIT_SECONDS", 300, 0, 3600),
        termination_wait_seconds=_integer(env, "DEPLOYMENT_TERMINATION_WAIT_SECONDS", 300, 0, 3600),
        timeout_seconds=_integer(env, "DEPLOYMENT_TIMEOUT_SECONDS", 3600, 600, 28800),
        alarm_names=tuple(names),
    )


def _scaling_from_env(env: Mapping[str, str], count: int) -> Scaling:
    raw_enabled = _value(env, "AUTOSCALING_ENABLED").lower() or "true"
    if raw_enabled not in {"true", "false"}:
        raise DeployError(f"AUTOSCALING_ENABLED must be true or false, got {raw_enabled!r}")
    low = _integer(env, "AUTOSCALING_MIN", count, 1, 1000)
    high = _integer(env, "AUTOSCALING_MAX", 2 * count, 1, 1000)
    if not low <= count <= high:
        raise DeployError(
            f"AUTOSCALING_MIN ({low}) <= ENDPOINT_INSTANCE_COUNT ({count}) <= AUTOSCALING_MAX ({high}) must hold"
        )
    raw_target = _value(env, "AUTOSCALING_TARGET_INVOCATIONS") or "70"
    try:
        target = float(raw_target)
    except ValueError:
        target = math.nan
    if not (math.isfinite(target) and 0 < target <= 1_000_000):
        raise DeployError(f"AUTOSCALING_TARGET_INVOCATIONS must be a number > 0, got {raw_target!r}")
    return Scaling(enabled=raw_enabled == "true", min_capacity=low, max_capacity=high, target_invocations=target)


def _capture_from_env(env: Mapping[str, str]) -> Capture | None:
    percent = _integer(env, "DATA_CAPTURE_PERCENT", 20, 0, 100)
    if percent == 0:
        return None
    raw = _value(env, "DATA_CAPTURE_S3_URI")
    if not raw:
        raise DeployError("DATA_CAPTURE_S3_URI is required while DATA_CAPTURE_PERCENT > 0 (set it to 0 to disable)")
    _s3_uri("DATA_CAPTURE_S3_URI", raw)
    return Capture(percent=percent, destination=raw.rstrip("/"))


@dataclass(frozen=True)
class TrainingResult:
    """The state machine's output, as written by the Step Functions action to its output artifact."""

    training_job_name: str
    model_data_url: str
    image_uri: str


# --- logging --------------------------------------------------------------------------------------


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, so CloudWatch Logs Insights can filter on fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"level": record.levelname, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _configure_logging() -> None:
    """Own handler, no propagation: the runtime's root handler would print each line again."""
    handlers = [h for h in LOG.handlers if isinstance(h.formatter, _JsonFormatter)]
    if not handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_JsonFormatter())
        LOG.addHandler(handler)
        LOG.propagate = False
        handlers = [handler]
    for handler in handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is not sys.stdout:
            # stdout may have been replaced since (tests capture it); not setStream(), which flushes the
            # old stream, and a test harness may have closed that one already
            handler.stream = sys.stdout
    LOG.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


def _log(level: int, message: str, **fields: Any) -> None:
    LOG.log(level, message, extra={"fields": fields})


# --- helpers --------------------------------------------------------------------------------------


def _client(service: str, config: Config | None = None) -> Any:
    """One place that builds clients, so tests can substitute them (and record every call)."""
    return boto3.client(service, config=config or _BOTO_CONFIG)


class Clients:
    """The deployer's AWS clients, built on first use so a misconfigured run touches no service."""

    @cached_property
    def sagemaker(self) -> Any:
        return _client("sagemaker")

    @cached_property
    def s3(self) -> Any:
        return _client("s3")

    @cached_property
    def autoscaling(self) -> Any:
        return _client("application-autoscaling")

    @cached_property
    def cloudwatch(self) -> Any:
        return _client("cloudwatch")

    def runtime(self, timeout: int) -> Any:
        """Short timeouts and one retry: the smoke test must fit the Lambda's own timeout."""
        config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=timeout)
        return _client("sagemaker-runtime", config)


def _owned(name: str, prefix: str) -> bool:
    return name.startswith(f"{prefix}-")


def _short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _excerpt(data: bytes | str | None, limit: int = MAX_EXCERPT) -> str:
    """A bounded, single-line quotation of what the endpoint said."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data or "")
    return json.dumps(text[:limit]) + ("..." if len(text) > limit else "")


def resource_name(prefix: str, base: str, suffix: str = "") -> str:
    """``<prefix>-<base><suffix>`` as a valid SageMaker name of at most 63 characters.

    ``base`` loses a leading ``<prefix>-`` (training job names already carry it) and characters
    SageMaker rejects. When too long, it is shortened and a hash of the full name is added, so two
    different long names never collapse into one.
    """
    cleaned = re.sub(r"[^a-zA-Z0-9-]+", "-", base).strip("-")
    if _owned(cleaned, prefix):
        cleaned = cleaned[len(prefix) + 1 :]
    name = f"{prefix}-{cleaned}{suffix}" if cleaned else f"{prefix}{suffix}"
    if len(name) > MAX_NAME:
        digest = _short_hash(name)
        keep = MAX_NAME - len(prefix) - len(suffix) - len(digest) - 2
        name = f"{prefix}-{cleaned[:keep].rstrip('-')}-{digest}{suffix}"
    if not NAME_RE.match(name):
        raise DeployError(f"cannot derive a valid SageMaker name from {base!r}")
    return name


def _is_not_found(error: ClientError) -> bool:
    """SageMaker reports a missing model, config or endpoint as a ValidationException."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in {"ValidationException", "ResourceNotFound"} and (
        "Could not find" in message or "does not exist" in message
    )


# --- reading the input artifact -------------------------------------------------------------------


def _parse_job(event: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(event, dict) or not isinstance(event.get("CodePipeline.job"), dict):
        raise ValueError("event is not a CodePipeline job event (no 'CodePipeline.job')")
    job = event["CodePipeline.job"]
    job_id = job.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise ValueError("CodePipeline job event has no job id")
    data = job.get("data")
    return job_id, data if isinstance(data, dict) else {}


def _artifact_location(data: dict[str, Any]) -> tuple[str, str]:
    artifacts = data.get("inputArtifacts")
    if not isinstance(artifacts, list) or len(artifacts) != 1:
        raise DeployError("expected exactly one input artifact (the training step's output)")
    try:
        s3 = artifacts[0]["location"]["s3Location"]
        bucket, key = s3["bucketName"], s3["objectKey"]
    except (KeyError, TypeError) as exc:
        raise DeployError("input artifact has no S3 location (bucketName/objectKey)") from exc
    if not (isinstance(bucket, str) and bucket and isinstance(key, str) and key):
        raise DeployError("input artifact S3 location is empty")
    return bucket, key


def _json_from_artifact(body: bytes, where: str) -> Any:
    """The artifact is a zip holding the state machine output; a bare JSON file is accepted too.

    The Step Functions action's documentation does not name the file it writes, so this takes
    ``output.json`` if present, else the only JSON file, else the only file.
    """
    if not zipfile.is_zipfile(io.BytesIO(body)):
        return _loads(body, where)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        files = [i for i in archive.infolist() if not i.is_dir()]
        chosen = [i for i in files if i.filename.rsplit("/", 1)[-1] == PREFERRED_OUTPUT_FILE]
        if not chosen:
            chosen = [i for i in files if i.filename.lower().endswith(".json")]
        if not chosen and len(files) == 1:
            chosen = files
        if len(chosen) != 1:
            names = [i.filename for i in files][:20]
            raise DeployError(f"{where}: expected one JSON file in the artifact, found {names}")
        info = chosen[0]
        if info.file_size > MAX_JSON_BYTES:
            raise DeployError(f"{where}: {info.filename} is {info.file_size} bytes, too large")
        return _loads(archive.read(info), f"{where}:{info.filename}")


def _loads(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeployError(f"{where}: not valid JSON ({exc})") from exc


def read_training_result(s3: Any, bucket: str, key: str) -> TrainingResult:
    """Fetch the artifact with the Lambda's own role (not the job's artifact credentials)."""
    where = f"s3://{bucket}/{key}"
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise DeployError(f"cannot read input artifact {where}: {code}") from exc
    if obj.get("ContentLength", 0) > MAX_ARTIFACT_BYTES:
        raise DeployError(f"input artifact {where} is larger than {MAX_ARTIFACT_BYTES} bytes")
    document = _json_from_artifact(obj["Body"].read(MAX_ARTIFACT_BYTES + 1), where)
    if not isinstance(document, dict):
        raise DeployError(f"{where}: training output must be a JSON object")
    values = {k: document.get(k) for k in ("training_job_name", "model_data_url", "image_uri")}
    bad = [k for k, v in values.items() if not isinstance(v, str) or not v]
    if bad:
        raise DeployError(f"{where}: training output lacks string fields {bad}")
    if not NAME_RE.match(values["training_job_name"]) or len(values["training_job_name"]) > MAX_NAME:
        raise DeployError(f"{where}: invalid training_job_name {values['training_job_name']!r}")
    if not values["model_data_url"].startswith("s3://"):
        raise DeployError(f"{where}: model_data_url must be an s3:// URL")
    if re.search(r"\s", values["image_uri"]):
        raise DeployError(f"{where}: image_uri must not contain whitespace")
    return TrainingResult(**values)


# --- SageMaker model and endpoint config ----------------------------------------------------------


def ensure_model(sm: Any, settings: Settings, result: TrainingResult) -> str:
    """Create the model once; a model of that name pointing at other artifacts is an error."""
    name = resource_name(settings.name_prefix, result.training_job_name)
    try:
        existing = sm.describe_model(ModelName=name)
    except ClientError as exc:
        if not _is_not_found(exc):
            raise
    else:
        url = existing.get("PrimaryContainer", {}).get("ModelDataUrl")
        if url != result.model_data_url:
            raise DeployError(f"model {name} exists with other artifacts ({url}); not reusing it")
        _log(logging.INFO, "model exists, reusing", model=name)
        return name
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=settings.role_arn,
        PrimaryContainer={"Image": result.image_uri, "ModelDataUrl": result.model_data_url},
        EnableNetworkIsolation=True,
    )
    _log(logging.INFO, "model created", model=name, model_data_url=result.model_data_url)
    return name


def data_capture_config(settings: Settings) -> dict[str, Any] | None:
    """Inputs and outputs of a sample of requests, written to S3 encrypted with the pipeline key."""
    if settings.capture is None:
        return None
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": settings.capture.percent,
        "DestinationS3Uri": settings.capture.destination,
        "KmsKeyId": settings.kms_key_arn,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": [SMOKE_CONTENT_TYPE]},
    }


def ensure_endpoint_config(sm: Any, settings: Settings, model_name: str) -> str:
    """Config names hash the settings, so changing instances or data capture makes a new config.

    With data capture off the hash input is what it was before capture existed, so configs created
    by earlier versions keep their names.
    """
    parts: list[Any] = [model_name, settings.instance_type, settings.instance_count, settings.kms_key_arn]
    if settings.capture is not None:
        parts.append(["capture", settings.capture.percent, settings.capture.destination])
    name = resource_name(settings.name_prefix, model_name, f"-{_short_hash(json.dumps(parts))}")
    try:
        sm.describe_endpoint_config(EndpointConfigName=name)
    except ClientError as exc:
        if not _is_not_found(exc):
            raise
    else:
        _log(logging.INFO, "endpoint config exists, reusing", config=name)
        return name
    request: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model_name,
                "InitialInstanceCount": settings.instance_count,
                "InstanceType": settings.instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
        "KmsKeyId": settings.kms_key_arn,
    }
    capture = data_capture_config(settings)
    if capture is not None:
        request["DataCaptureConfig"] = capture
    sm.create_endpoint_config(**request)
    _log(logging.INFO, "endpoint config created", config=name, model=model_name, data_capture=capture is not None)
    return name


def _describe_endpoint(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return sm.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if _is_not_found(exc):
            return None
        raise


def _describe_config(sm: Any, name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    try:
        return sm.describe_endpoint_config(EndpointConfigName=name)
    except ClientError as exc:
        if _is_not_found(exc):
            return None
        raise


def _variant(description: Mapping[str, Any] | None) -> dict[str, Any]:
    """The production variant this deployer manages (configs from elsewhere may name it differently)."""
    variants = list((description or {}).get("ProductionVariants") or [])
    named = [v for v in variants if v.get("VariantName") == VARIANT_NAME]
    return (named or variants or [{}])[0]


# --- deployment guardrails ------------------------------------------------------------------------


def _canary_instances(fleet: int, percent: int) -> int | None:
    """A canary must be at most half of the new fleet (TrafficRoutingConfig.CanarySize)."""
    if fleet < 2:
        return None
    return min(max(1, math.ceil(fleet * percent / 100)), fleet // 2)


def _linear_instances(fleet: int, percent: int) -> int | None:
    """A linear step must be 10-50 % of the new fleet (TrafficRoutingConfig.LinearStepSize)."""
    low, high = math.ceil(fleet / 10), fleet // 2
    if low > high:
        return None
    return min(max(math.floor(fleet * percent / 100 + 0.5), low), high)


def deployment_config(rollout: Rollout, fleet: int) -> dict[str, Any]:
    """``UpdateEndpoint.DeploymentConfig``: blue/green with the configured traffic shifting.

    Sizes are sent as instance counts computed from the percentages, so the service-side rules on
    the share of the fleet are checked here, not left to SageMaker's rounding. A fleet too small
    for a canary or a linear step (one instance) shifts all at once; the baking period and the
    alarm rollback still apply.
    """
    routing: dict[str, Any] = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": rollout.wait_seconds}
    steps = 1
    if rollout.strategy == "CANARY":
        size = _canary_instances(fleet, rollout.canary_percent)
        if size is not None:
            routing.update(Type="CANARY", CanarySize={"Type": "INSTANCE_COUNT", "Value": size})
    elif rollout.strategy == "LINEAR":
        size = _linear_instances(fleet, rollout.linear_step_percent)
        if size is not None:
            routing.update(Type="LINEAR", LinearStepSize={"Type": "INSTANCE_COUNT", "Value": size})
            steps = math.ceil(fleet / size)
    if routing["Type"] != rollout.strategy:
        _log(
            logging.WARNING,
            "fleet too small for the traffic shifting strategy, shifting all at once",
            strategy=rollout.strategy,
            fleet=fleet,
        )
    waiting = steps * rollout.wait_seconds + rollout.termination_wait_seconds
    if rollout.timeout_seconds <= waiting:
        raise DeployError(
            f"DEPLOYMENT_TIMEOUT_SECONDS ({rollout.timeout_seconds}) must exceed the deployment's waiting time "
            f"({steps} x DEPLOYMENT_WAIT_SECONDS + DEPLOYMENT_TERMINATION_WAIT_SECONDS = {waiting})"
        )
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": rollout.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": rollout.timeout_seconds,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in rollout.alarm_names]},
    }


# --- autoscaling ----------------------------------------------------------------------------------


def _scaling_resource(settings: Settings) -> str:
    return f"endpoint/{settings.endpoint_name}/variant/{VARIANT_NAME}"


def _scaling_policy_name(settings: Settings) -> str:
    return f"{settings.endpoint_name}-invocations-per-instance"


def _scalable_target(aws: Clients, settings: Settings) -> dict[str, Any] | None:
    targets = aws.autoscaling.describe_scalable_targets(
        ServiceNamespace=SCALING_NAMESPACE,
        ResourceIds=[_scaling_resource(settings)],
        ScalableDimension=SCALABLE_DIMENSION,
    ).get("ScalableTargets", [])
    return targets[0] if targets else None


def _deregister_scaling(aws: Clients, settings: Settings) -> None:
    """Deregistering also deletes the target's scaling policies."""
    aws.autoscaling.deregister_scalable_target(
        ServiceNamespace=SCALING_NAMESPACE, ResourceId=_scaling_resource(settings), ScalableDimension=SCALABLE_DIMENSION
    )
    _log(logging.INFO, "autoscaling target deregistered", resource=_scaling_resource(settings))


def ensure_autoscaling(aws: Clients, settings: Settings) -> str:
    """Register the variant and its target tracking policy; both calls are upserts.

    RegisterScalableTarget on an existing target updates min/max and moves the current capacity
    into the new range; PutScalingPolicy with the same name replaces the policy. So every
    deployment can call both without describing first. Returns a phrase for the job summary.
    """
    scaling = settings.scaling
    if not scaling.enabled:
        if _scalable_target(aws, settings) is not None:
            _deregister_scaling(aws, settings)
            return "autoscaling removed"
        return "autoscaling off"
    target = {
        "ServiceNamespace": SCALING_NAMESPACE,
        "ResourceId": _scaling_resource(settings),
        "ScalableDimension": SCALABLE_DIMENSION,
    }
    aws.autoscaling.register_scalable_target(
        **target, MinCapacity=scaling.min_capacity, MaxCapacity=scaling.max_capacity
    )
    aws.autoscaling.put_scaling_policy(
        **target,
        PolicyName=_scaling_policy_name(settings),
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": scaling.target_invocations,
            "PredefinedMetricSpecification": {"PredefinedMetricType": SCALING_METRIC},
            "ScaleInCooldown": SCALE_IN_COOLDOWN,
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN,
        },
    )
    _log(
        logging.INFO,
        "autoscaling registered",
        resource=target["ResourceId"],
        min=scaling.min_capacity,
        max=scaling.max_capacity,
        target_invocations=scaling.target_invocations,
    )
    return (
        f"autoscaling {scaling.min_capacity}-{scaling.max_capacity} instances "
        f"at {scaling.target_invocations:g} invocations per instance"
    )


# --- starting and reverting deployments -----------------------------------------------------------


def update_request(
    aws: Clients, settings: Settings, endpoint: Mapping[str, Any], target: str, guarded: bool
) -> dict[str, Any]:
    """The UpdateEndpoint request for moving ``endpoint`` to config ``target``.

    Application Auto Scaling rejects an update that changes the instance type of a registered
    variant, so the target is deregistered first in that case (registered again once the endpoint
    serves). Otherwise the instance count the scaler reached is kept (RetainAllVariantProperties),
    except for data capture, which must come from the new config. ``guarded`` adds the blue/green
    traffic shifting with alarm rollback; returning to a known config shifts all at once.
    """
    target_variant = _variant(_describe_config(aws.sagemaker, target))
    if not target_variant.get("InstanceType"):
        raise DeployError(f"endpoint config {target} does not exist or has no production variant")
    current_variant = _variant(_describe_config(aws.sagemaker, endpoint.get("EndpointConfigName")))
    registered = _scalable_target(aws, settings) is not None
    type_changes = current_variant.get("InstanceType") != target_variant["InstanceType"]
    request: dict[str, Any] = {"EndpointName": settings.endpoint_name, "EndpointConfigName": target}
    fleet = int(target_variant.get("InitialInstanceCount") or settings.instance_count)
    if registered and not type_changes:
        request["RetainAllVariantProperties"] = True
        request["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": "DataCaptureConfig"}]
        desired = _variant(endpoint).get("DesiredInstanceCount")
        if isinstance(desired, int) and desired >= 1:
            fleet = desired
    if guarded:
        request["DeploymentConfig"] = deployment_config(settings.rollout, fleet)  # may refuse: nothing changed yet
    if registered and type_changes:
        _deregister_scaling(aws, settings)
    return request


def _start_time(endpoint: Mapping[str, Any] | None) -> int:
    """When the running deployment started: bounds the alarm history searched after a rollback."""
    for when in (
        (endpoint or {}).get("PendingDeploymentSummary", {}).get("StartTime"),
        (endpoint or {}).get("LastModifiedTime"),
    ):
        if isinstance(when, datetime):
            return int(when.timestamp())
    return int(time.time())


def start_deployment(aws: Clients, settings: Settings, config: str) -> tuple[str | None, int]:
    """Create or update the endpoint to ``config``; return the config it replaces and the start time."""
    sm = aws.sagemaker
    endpoint = _describe_endpoint(sm, settings.endpoint_name)
    if endpoint is None:
        sm.create_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=config)
        _log(logging.INFO, "endpoint creation started", endpoint=settings.endpoint_name, config=config)
        return None, 0
    status = endpoint["EndpointStatus"]
    current = endpoint.get("EndpointConfigName")
    pending = endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
    if current == config:
        _log(logging.INFO, "endpoint already uses this config", endpoint=settings.endpoint_name)
        return None, 0
    if pending == config:
        _log(logging.INFO, "update to this config already running", endpoint=settings.endpoint_name)
        return current, _start_time(endpoint)
    if status != "InService":
        raise DeployError(
            f"endpoint {settings.endpoint_name} is {status} with config {current}; it can only be "
            "updated when InService" + (" (delete it to let the next run recreate it)" if status == "Failed" else "")
        )
    request = update_request(aws, settings, endpoint, config, guarded=True)
    try:
        sm.update_endpoint(**request)
    except ClientError:
        _restore_autoscaling(aws, settings)  # the update may have deregistered it; the old fleet keeps serving
        raise
    _log(
        logging.INFO,
        "endpoint update started",
        endpoint=settings.endpoint_name,
        config=config,
        previous_config=current,
        deployment=request["DeploymentConfig"],
        retain_instance_count=request.get("RetainAllVariantProperties", False),
    )
    return current, _start_time(_describe_endpoint(sm, settings.endpoint_name))


def _delete_config(sm: Any, settings: Settings, config: str | None, keep: str) -> None:
    """Remove the replaced config; a failure here must not fail a deployment that succeeded."""
    if not config or config == keep or not _owned(config, settings.name_prefix):
        return
    try:
        sm.delete_endpoint_config(EndpointConfigName=config)
        _log(logging.INFO, "previous endpoint config deleted", config=config)
    except ClientError as exc:
        _log(logging.WARNING, "previous endpoint config not deleted", config=config, error=str(exc))


# --- smoke test -----------------------------------------------------------------------------------


def load_smoke_rows(s3: Any, smoke: SmokeTest) -> list[str]:
    """The first rows of the validation CSV (label first, no header) without their label column.

    Only the head of the object is read (a ranged GET); a row cut by the range is dropped.
    """
    try:
        obj = s3.get_object(Bucket=smoke.bucket, Key=smoke.key, Range=f"bytes=0-{SMOKE_MAX_BYTES - 1}")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise DeployError(f"cannot read smoke test data {smoke.uri}: {code}") from exc
    raw = obj["Body"].read(SMOKE_MAX_BYTES)
    total = re.search(r"/(\d+)$", obj.get("ContentRange") or "")
    truncated = int(total.group(1)) > len(raw) if total else len(raw) >= SMOKE_MAX_BYTES
    try:
        lines = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise DeployError(f"smoke test data {smoke.uri} is not UTF-8 text") from exc
    if truncated:
        lines = lines[:-1]
    rows: list[str] = []
    for number, line in enumerate(lines, start=1):
        fields = line.strip().split(",")
        if fields == [""]:
            continue
        if len(fields) < 2:
            raise DeployError(f"smoke test data {smoke.uri} line {number} has no feature columns after the label")
        rows.append(",".join(fields[1:]))
        if len(rows) == smoke.rows:
            break
    if not rows:
        raise DeployError(f"smoke test data {smoke.uri} has no rows")
    return rows


def _predictions(payload: bytes, content_type: str) -> list[Any] | str:
    """The predictions in a CSV/text or JSON answer, or what is wrong with the answer."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return "the response is not UTF-8 text"
    if "json" not in content_type.lower():
        return [token.strip() for token in re.split(r"[,\n]", text) if token.strip()]
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return "the response is not valid JSON"
    if isinstance(document, dict):
        document = document.get("predictions")
    if not isinstance(document, list):
        return "the JSON response is neither a list nor an object with a 'predictions' list"
    return [item.get("score") if isinstance(item, dict) else item for item in document]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def check_predictions(payload: bytes, content_type: str, rows: int, expect: str) -> str | None:
    """``None`` when the answer holds one finite number per row (each in [0, 1] for probabilities)."""
    if len(payload) > SMOKE_MAX_RESPONSE:
        return f"the response is larger than {SMOKE_MAX_RESPONSE} bytes"
    values = _predictions(payload, content_type)
    if isinstance(values, str):
        return values
    if len(values) != rows:
        return f"expected {rows} predictions (one per row), got {len(values)}"
    for position, value in enumerate(values, start=1):
        number = _number(value)
        if number is None:
            return f"prediction {position} is not a finite number: {_excerpt(str(value), 40)}"
        if expect == "probability" and not 0.0 <= number <= 1.0:
            return f"prediction {position} ({number:g}) is not a probability in [0, 1]"
    return None


def smoke_test(aws: Clients, settings: Settings) -> tuple[str | None, int]:
    """Invoke the endpoint with validation rows; return what is wrong (``None`` if healthy) and the row count."""
    smoke = settings.smoke
    if smoke is None:
        return None, 0
    try:
        rows = load_smoke_rows(aws.s3, smoke)
    except DeployError as exc:
        return f"the smoke test could not run: {exc}", 0
    body = ("\n".join(rows) + "\n").encode()
    try:
        response = aws.runtime(smoke.timeout).invoke_endpoint(
            EndpointName=settings.endpoint_name, ContentType=SMOKE_CONTENT_TYPE, Accept=SMOKE_CONTENT_TYPE, Body=body
        )
        payload = response["Body"].read(SMOKE_MAX_RESPONSE + 1)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        said = exc.response.get("OriginalMessage") or error.get("Message")
        return f"InvokeEndpoint failed: {error.get('Code')}: {_excerpt(said)}", len(rows)
    except BotoCoreError as exc:  # timeouts and connection errors
        return f"InvokeEndpoint failed: {type(exc).__name__}: {_excerpt(str(exc))}", len(rows)
    problem = check_predictions(payload, response.get("ContentType") or "", len(rows), smoke.expect)
    if problem is not None:
        return f"{problem}; response excerpt: {_excerpt(payload)}", len(rows)
    _log(logging.INFO, "smoke test passed", endpoint=settings.endpoint_name, rows=len(rows), expect=smoke.expect)
    return None, len(rows)


# --- why SageMaker rolled an update back ----------------------------------------------------------


def _alarms_in_alarm(aws: Clients, names: Sequence[str]) -> list[str]:
    alarms = aws.cloudwatch.describe_alarms(AlarmNames=list(names)).get("MetricAlarms", [])
    return [
        f"{alarm['AlarmName']} is in ALARM ({str(alarm.get('StateReason', ''))[:MAX_EXCERPT]})"
        for alarm in alarms
        if alarm.get("StateValue") == "ALARM"
    ]


def _alarms_fired_since(aws: Clients, names: Sequence[str], since: int) -> list[str]:
    """Alarms back to OK by now may still have fired during the deployment: read their history."""
    fired = []
    for name in names:
        items = aws.cloudwatch.describe_alarm_history(
            AlarmName=name,
            HistoryItemType="StateUpdate",
            StartDate=datetime.fromtimestamp(since, tz=UTC),
            ScanBy="TimestampDescending",
            MaxRecords=100,
        ).get("AlarmHistoryItems", [])
        for item in items:
            try:
                state = json.loads(item.get("HistoryData") or "{}").get("newState", {})
            except json.JSONDecodeError:
                state = {}
            if state.get("stateValue") == "ALARM" or "to ALARM" in str(item.get("HistorySummary", "")):
                when = item.get("Timestamp")
                at = when.isoformat() if isinstance(when, datetime) else str(when)
                fired.append(f"{name} was in ALARM at {at} ({str(state.get('stateReason', ''))[:MAX_EXCERPT]})")
                break
    return fired


def rollback_cause(aws: Clients, settings: Settings, endpoint: Mapping[str, Any], since: int) -> str:
    """Name the alarm behind an automatic rollback.

    After an alarm-triggered rollback DescribeEndpoint shows the endpoint InService with the old
    EndpointConfigName and no pending deployment; LastDeploymentConfig lists the alarms that were
    watched and FailureReason may explain. When FailureReason names no alarm, CloudWatch is asked
    which watched alarm is in ALARM now, then which went into ALARM since the deployment started.
    """
    watched = [
        str(alarm.get("AlarmName"))
        for alarm in endpoint.get("LastDeploymentConfig", {}).get("AutoRollbackConfiguration", {}).get("Alarms", [])
        if alarm.get("AlarmName")
    ] or list(settings.rollout.alarm_names)
    reason = str(endpoint.get("FailureReason") or "")
    causes = [f"{name} is named by SageMaker" for name in watched if name in reason]
    try:
        if not causes:
            causes = _alarms_in_alarm(aws, watched)
        if not causes and since > 0:
            causes = _alarms_fired_since(aws, watched, since)
    except ClientError as exc:  # the rollback itself must still be reported
        causes = [f"the rollback alarms {watched} could not be read ({_error_text(exc)})"]
    if not causes:
        causes = [f"none of the rollback alarms {watched} is or was in ALARM during the deployment"]
    return "; ".join(causes) + (f"; SageMaker says: {reason}" if reason else "")


# --- CodePipeline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """What one invocation tells the next: which deployment is being watched, and in which phase.

    ``deploy`` waits for the new config; ``rollback`` waits for the endpoint to return to
    ``previous_config`` after a failed smoke test, whose result rides along in ``note``.
    """

    endpoint: str
    config: str
    previous_config: str | None
    phase: str = "deploy"
    started: int = 0
    note: str = ""

    def encode(self) -> str:
        fields: dict[str, Any] = {
            "endpoint": self.endpoint,
            "config": self.config,
            "previous_config": self.previous_config,
        }
        if self.phase != "deploy":
            fields["phase"] = self.phase
        if self.started:
            fields["started"] = self.started
        note = self.note[:MAX_TOKEN_NOTE]
        while True:
            raw = json.dumps({**fields, **({"note": note} if note else {})}, sort_keys=True)
            if len(raw) <= MAX_TOKEN or not note:
                return raw
            keep = len(note) - (len(raw) - MAX_TOKEN) - 3  # dropping k characters shortens raw by >= k
            note = note[:keep] + "..." if keep > 0 else ""

    @classmethod
    def decode(cls, raw: Any, settings: Settings) -> Token:
        try:
            token = json.loads(raw)
        except (TypeError, json.JSONDecodeError) as exc:
            raise DeployError("continuation token is not JSON") from exc
        if not isinstance(token, dict):
            raise DeployError("continuation token is not a JSON object")
        previous = token.get("previous_config")
        if token.get("endpoint") != settings.endpoint_name:
            raise DeployError(f"continuation token is for endpoint {token.get('endpoint')!r}")
        if not isinstance(token.get("config"), str) or not _owned(token["config"], settings.name_prefix):
            raise DeployError("continuation token names a config this deployer does not manage")
        if previous is not None and not (isinstance(previous, str) and _owned(previous, settings.name_prefix)):
            previous = None  # never delete (or return to) a config this deployer does not own
        phase = token.get("phase", "deploy")
        if phase not in {"deploy", "rollback"} or (phase == "rollback" and previous is None):
            raise DeployError(f"continuation token has an invalid phase {phase!r}")
        started = token.get("started", 0)
        note = token.get("note", "")
        return cls(
            endpoint=token["endpoint"],
            config=token["config"],
            previous_config=previous,
            phase=phase,
            started=started if isinstance(started, int) and started > 0 else 0,
            note=note if isinstance(note, str) else "",
        )


def _report(cp: Any, operation: str, **kwargs: Any) -> bool:
    """Send a job result; a job already closed (a duplicate invocation) is logged, not retried."""
    try:
        getattr(cp, operation)(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in {"InvalidJobStateException", "JobNotFoundException"}:
            raise
        _log(logging.WARNING, "job already closed, result not recorded", job_id=kwargs["jobId"], code=code)
        return False
    return True


def _succeed(cp: Any, job_id: str, summary: str, token: Token | None = None) -> None:
    kwargs: dict[str, Any] = {"jobId": job_id, "executionDetails": {"summary": summary[:MAX_SUMMARY]}}
    if token is not None:
        kwargs["continuationToken"] = token.encode()
    if _report(cp, "put_job_success_result", **kwargs):
        _log(logging.INFO, "reported success", job_id=job_id, summary=summary, waiting=token is not None)


def _fail(cp: Any, job_id: str, message: str) -> None:
    details = {"type": "JobFailed", "message": message[:MAX_FAILURE_MESSAGE]}
    if _report(cp, "put_job_failure_result", jobId=job_id, failureDetails=details):
        _log(logging.ERROR, "reported failure", job_id=job_id, failure=message)


# --- the invocations ------------------------------------------------------------------------------


def first_invocation(cp: Any, aws: Clients, settings: Settings, job_id: str, data: dict[str, Any]) -> None:
    bucket, key = _artifact_location(data)
    result = read_training_result(aws.s3, bucket, key)
    _log(logging.INFO, "training output read", training_job_name=result.training_job_name)
    if settings.smoke is None:
        _log(logging.WARNING, "smoke test disabled (SMOKE_TEST_ROWS=0)", endpoint=settings.endpoint_name)
    else:
        load_smoke_rows(aws.s3, settings.smoke)  # unusable test data must fail before the endpoint changes
    model = ensure_model(aws.sagemaker, settings, result)
    config = ensure_endpoint_config(aws.sagemaker, settings, model)
    previous, started = start_deployment(aws, settings, config)
    token = Token(endpoint=settings.endpoint_name, config=config, previous_config=previous, started=started)
    _succeed(cp, job_id, f"deploying {model} to {settings.endpoint_name} with {config}", token)


def _serving(cp: Any, aws: Clients, settings: Settings, job_id: str, token: Token, endpoint: Mapping[str, Any]) -> None:
    """The endpoint serves the new config: smoke test, then autoscaling and cleanup, or go back."""
    failure, rows = smoke_test(aws, settings)
    if failure is None:
        try:
            scaling = ensure_autoscaling(aws, settings)
        except ClientError as exc:
            serving = f"endpoint {token.endpoint} serves {token.config} and passed its smoke test"
            _fail(cp, job_id, f"{serving}, but autoscaling failed: {_error_text(exc)}")
            return
        _delete_config(aws.sagemaker, settings, token.previous_config, keep=token.config)
        checked = f"smoke test passed ({rows} rows)" if settings.smoke else "smoke test disabled"
        _succeed(cp, job_id, f"endpoint {token.endpoint} is InService with {token.config}; {checked}; {scaling}")
        return
    what = f"smoke test of endpoint {token.endpoint} with {token.config} failed: {failure}"
    _log(logging.ERROR, "smoke test failed", endpoint=token.endpoint, config=token.config, failure=failure)
    if token.previous_config is None:
        _fail(cp, job_id, f"{what}; there is no previous endpoint config to return to, it keeps serving {token.config}")
        return
    try:
        request = update_request(aws, settings, endpoint, token.previous_config, guarded=False)
        aws.sagemaker.update_endpoint(**request)
    except (ClientError, DeployError) as exc:
        restored = _restore_autoscaling(aws, settings)
        _fail(cp, job_id, f"{what}; returning to {token.previous_config} failed: {_error_text(exc)}{restored}")
        return
    _log(
        logging.WARNING, "returning endpoint to previous config", endpoint=token.endpoint, config=token.previous_config
    )
    waiting = replace(token, phase="rollback", note=what)
    _succeed(cp, job_id, f"smoke test failed, returning {token.endpoint} to {token.previous_config}", waiting)


def _restore_autoscaling(aws: Clients, settings: Settings) -> str:
    """After a rollback the old fleet serves again and must scale as before.

    An update that changed the instance type deregistered the target, so register it again (an
    upsert otherwise). The job fails anyway; a problem here is added to its message, not raised.
    """
    try:
        ensure_autoscaling(aws, settings)
    except ClientError as exc:
        return f" (autoscaling not restored: {_error_text(exc)})"
    return ""


def _returned(
    cp: Any, aws: Clients, settings: Settings, job_id: str, token: Token, endpoint: Mapping[str, Any]
) -> None:
    """The return to the previous config after a failed smoke test has ended: the job fails either way."""
    status, current = endpoint["EndpointStatus"], endpoint.get("EndpointConfigName")
    reason = endpoint.get("FailureReason") or "no reason given"
    if status == "InService" and current == token.previous_config:
        restored = _restore_autoscaling(aws, settings)
        _fail(cp, job_id, f"{token.note}; the endpoint was returned to {token.previous_config}{restored}")
    elif status == "InService":
        _fail(cp, job_id, f"{token.note}; returning to {token.previous_config} did not complete, it serves {current}")
    else:
        _fail(cp, job_id, f"{token.note}; returning to {token.previous_config} failed, endpoint is {status}: {reason}")


def follow_up(cp: Any, aws: Clients, settings: Settings, job_id: str, raw_token: Any) -> None:
    token = Token.decode(raw_token, settings)
    endpoint = _describe_endpoint(aws.sagemaker, token.endpoint)
    if endpoint is None:
        raise DeployError(f"endpoint {token.endpoint} disappeared during deployment")
    status = endpoint["EndpointStatus"]
    current = endpoint.get("EndpointConfigName")
    reason = endpoint.get("FailureReason") or "no reason given"
    _log(logging.INFO, "endpoint status", endpoint=token.endpoint, status=status, config=current, phase=token.phase)
    if status in IN_PROGRESS:
        _succeed(cp, job_id, f"endpoint {token.endpoint} is {status}", token)
    elif token.phase == "rollback":
        _returned(cp, aws, settings, job_id, token, endpoint)
    elif status == "InService" and current == token.config:
        _serving(cp, aws, settings, job_id, token, endpoint)
    elif status == "InService":
        cause = rollback_cause(aws, settings, endpoint, token.started)
        restored = _restore_autoscaling(aws, settings)
        rolled_back = f"update of endpoint {token.endpoint} to {token.config} was rolled back"
        _fail(cp, job_id, f"{rolled_back}; it still serves {current}: {cause}{restored}")
    else:
        _fail(cp, job_id, f"endpoint {token.endpoint} is {status}: {reason}")


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{getattr(exc, 'operation_name', 'AWS call')} failed: {error.get('Code')}: {error.get('Message')}"
    return str(exc)


def handler(event: dict[str, Any], context: Any) -> None:
    """Lambda entry point. Never logs the event: it carries temporary artifact credentials."""
    _configure_logging()
    job_id, data = _parse_job(event)  # without a job id there is nothing to report to
    cp = _client("codepipeline")
    _log(logging.INFO, "job received", job_id=job_id, follow_up="continuationToken" in data)
    try:
        settings = Settings.from_env(os.environ)
        aws = Clients()
        if "continuationToken" in data:
            follow_up(cp, aws, settings, job_id, data["continuationToken"])
        else:
            first_invocation(cp, aws, settings, job_id, data)
    except DeployError as exc:
        _fail(cp, job_id, str(exc))
    except ClientError as exc:
        LOG.exception("AWS call failed", extra={"fields": {"job_id": job_id}})
        _fail(cp, job_id, _error_text(exc))
    except Exception as exc:  # the job must be failed whatever went wrong
        LOG.exception("unexpected error", extra={"fields": {"job_id": job_id}})
        _fail(cp, job_id, f"deployer error: {type(exc).__name__}: {exc}")
