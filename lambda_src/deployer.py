"""Deploys the trained model to the production SageMaker endpoint for a CodePipeline Invoke action.

CodePipeline gives the action about 20 minutes per invocation and a Lambda at most 15, while an
endpoint takes longer to create or update. So the first invocation only starts the change and
returns a continuation token; CodePipeline invokes again with the token until the endpoint is
InService (success), failed or rolled back (failure). Every path reports to CodePipeline, or the
pipeline would wait until the action times out.

Names are derived from the training job name and the endpoint settings, never from time, so a
repeated invocation for the same job finds what the first one created instead of duplicating it.
Only resources whose names start with NAME_PREFIX are created, updated or deleted.

Environment: NAME_PREFIX, SAGEMAKER_EXECUTION_ROLE_ARN, ENDPOINT_NAME, ENDPOINT_INSTANCE_TYPE,
ENDPOINT_INSTANCE_COUNT, KMS_KEY_ARN, optional LOG_LEVEL (default INFO).
Stdlib and boto3 only: runs on the python3.12 Lambda runtime without a layer.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

LOG = logging.getLogger("deployer")

MAX_NAME = 63  # SageMaker model, endpoint config and endpoint names
NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_ARTIFACT_BYTES = 5 * 1024 * 1024  # the artifact holds one small JSON document
MAX_JSON_BYTES = 256 * 1024  # Step Functions output is limited to 256 KiB
MAX_FAILURE_MESSAGE = 5000  # PutJobFailureResult limit
MAX_SUMMARY = 2048  # PutJobSuccessResult executionDetails.summary limit
PREFERRED_OUTPUT_FILE = "output.json"
IN_PROGRESS = {"Creating", "Updating", "SystemUpdating", "RollingBack"}
VARIANT_NAME = "AllTraffic"

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


class DeployError(Exception):
    """A failure to report to CodePipeline as the job's failure message."""


@dataclass(frozen=True)
class Settings:
    """The environment contract, checked once per invocation so a bad variable fails the job clearly."""

    name_prefix: str
    role_arn: str
    endpoint_name: str
    instance_type: str
    instance_count: int
    kms_key_arn: str

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
        return cls(
            name_prefix=prefix,
            role_arn=role,
            endpoint_name=endpoint,
            instance_type=env["ENDPOINT_INSTANCE_TYPE"],
            instance_count=count,
            kms_key_arn=env["KMS_KEY_ARN"],
        )


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
            handler.setStream(sys.stdout)  # stdout may have been replaced since (tests capture it)
    LOG.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


def _log(level: int, message: str, **fields: Any) -> None:
    LOG.log(level, message, extra={"fields": fields})


# --- helpers --------------------------------------------------------------------------------------


def _client(service: str) -> Any:
    """One place that builds clients, so tests can substitute the CodePipeline one."""
    return boto3.client(service, config=_BOTO_CONFIG)


def _owned(name: str, prefix: str) -> bool:
    return name.startswith(f"{prefix}-")


def _short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


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


# --- SageMaker ------------------------------------------------------------------------------------


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


def ensure_endpoint_config(sm: Any, settings: Settings, model_name: str) -> str:
    """Config names hash the settings, so changing instance type or count makes a new config."""
    fingerprint = _short_hash(
        json.dumps([model_name, settings.instance_type, settings.instance_count, settings.kms_key_arn])
    )
    name = resource_name(settings.name_prefix, model_name, f"-{fingerprint}")
    try:
        sm.describe_endpoint_config(EndpointConfigName=name)
    except ClientError as exc:
        if not _is_not_found(exc):
            raise
    else:
        _log(logging.INFO, "endpoint config exists, reusing", config=name)
        return name
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model_name,
                "InitialInstanceCount": settings.instance_count,
                "InstanceType": settings.instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
        KmsKeyId=settings.kms_key_arn,
    )
    _log(logging.INFO, "endpoint config created", config=name, model=model_name)
    return name


def _describe_endpoint(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return sm.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if _is_not_found(exc):
            return None
        raise


def start_deployment(sm: Any, settings: Settings, config: str) -> str | None:
    """Create or update the endpoint to ``config``; return the config it replaces, if any."""
    endpoint = _describe_endpoint(sm, settings.endpoint_name)
    if endpoint is None:
        sm.create_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=config)
        _log(logging.INFO, "endpoint creation started", endpoint=settings.endpoint_name, config=config)
        return None
    status = endpoint["EndpointStatus"]
    current = endpoint.get("EndpointConfigName")
    pending = endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
    if current == config:
        _log(logging.INFO, "endpoint already uses this config", endpoint=settings.endpoint_name)
        return None
    if pending == config:
        _log(logging.INFO, "update to this config already running", endpoint=settings.endpoint_name)
        return current
    if status != "InService":
        raise DeployError(
            f"endpoint {settings.endpoint_name} is {status} with config {current}; it can only be "
            "updated when InService" + (" (delete it to let the next run recreate it)" if status == "Failed" else "")
        )
    sm.update_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=config)
    _log(
        logging.INFO,
        "endpoint update started",
        endpoint=settings.endpoint_name,
        config=config,
        previous_config=current,
    )
    return current


def _delete_config(sm: Any, settings: Settings, config: str | None, keep: str) -> None:
    """Remove the replaced config; a failure here must not fail a deployment that succeeded."""
    if not config or config == keep or not _owned(config, settings.name_prefix):
        return
    try:
        sm.delete_endpoint_config(EndpointConfigName=config)
        _log(logging.INFO, "previous endpoint config deleted", config=config)
    except ClientError as exc:
        _log(logging.WARNING, "previous endpoint config not deleted", config=config, error=str(exc))


# --- CodePipeline ---------------------------------------------------------------------------------


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


def _succeed(cp: Any, job_id: str, summary: str, token: dict[str, Any] | None = None) -> None:
    kwargs: dict[str, Any] = {"jobId": job_id, "executionDetails": {"summary": summary[:MAX_SUMMARY]}}
    if token is not None:
        kwargs["continuationToken"] = json.dumps(token, sort_keys=True)
    if _report(cp, "put_job_success_result", **kwargs):
        _log(logging.INFO, "reported success", job_id=job_id, summary=summary, waiting=token is not None)


def _fail(cp: Any, job_id: str, message: str) -> None:
    details = {"type": "JobFailed", "message": message[:MAX_FAILURE_MESSAGE]}
    if _report(cp, "put_job_failure_result", jobId=job_id, failureDetails=details):
        _log(logging.ERROR, "reported failure", job_id=job_id, failure=message)


def _read_token(raw: Any, settings: Settings) -> dict[str, Any]:
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
        previous = None  # never delete a config this deployer does not own
    return {"endpoint": token["endpoint"], "config": token["config"], "previous_config": previous}


def first_invocation(cp: Any, s3: Any, sm: Any, settings: Settings, job_id: str, data: dict[str, Any]) -> None:
    bucket, key = _artifact_location(data)
    result = read_training_result(s3, bucket, key)
    _log(logging.INFO, "training output read", training_job_name=result.training_job_name)
    model = ensure_model(sm, settings, result)
    config = ensure_endpoint_config(sm, settings, model)
    previous = start_deployment(sm, settings, config)
    token = {"endpoint": settings.endpoint_name, "config": config, "previous_config": previous}
    _succeed(cp, job_id, f"deploying {model} to {settings.endpoint_name} with {config}", token)


def follow_up(cp: Any, sm: Any, settings: Settings, job_id: str, raw_token: Any) -> None:
    token = _read_token(raw_token, settings)
    endpoint = _describe_endpoint(sm, token["endpoint"])
    if endpoint is None:
        raise DeployError(f"endpoint {token['endpoint']} disappeared during deployment")
    status = endpoint["EndpointStatus"]
    current = endpoint.get("EndpointConfigName")
    reason = endpoint.get("FailureReason") or "no reason given"
    _log(logging.INFO, "endpoint status", endpoint=token["endpoint"], status=status, config=current)
    if status in IN_PROGRESS:
        _succeed(cp, job_id, f"endpoint {token['endpoint']} is {status}", token)
    elif status == "InService" and current == token["config"]:
        _delete_config(sm, settings, token["previous_config"], keep=current)
        _succeed(cp, job_id, f"endpoint {token['endpoint']} is InService with {current}")
    elif status == "InService":
        _fail(
            cp,
            job_id,
            f"update of endpoint {token['endpoint']} to {token['config']} was rolled back; "
            f"it still serves {current}: {reason}",
        )
    else:
        _fail(cp, job_id, f"endpoint {token['endpoint']} is {status}: {reason}")


def handler(event: dict[str, Any], context: Any) -> None:
    """Lambda entry point. Never logs the event: it carries temporary artifact credentials."""
    _configure_logging()
    job_id, data = _parse_job(event)  # without a job id there is nothing to report to
    cp = _client("codepipeline")
    _log(logging.INFO, "job received", job_id=job_id, follow_up="continuationToken" in data)
    try:
        settings = Settings.from_env(os.environ)
        sm = _client("sagemaker")
        if "continuationToken" in data:
            follow_up(cp, sm, settings, job_id, data["continuationToken"])
        else:
            first_invocation(cp, _client("s3"), sm, settings, job_id, data)
    except DeployError as exc:
        _fail(cp, job_id, str(exc))
    except ClientError as exc:
        LOG.exception("AWS call failed", extra={"fields": {"job_id": job_id}})
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "AWS call")
        _fail(cp, job_id, f"{operation} failed: {error.get('Code')}: {error.get('Message')}")
    except Exception as exc:  # the job must be failed whatever went wrong
        LOG.exception("unexpected error", extra={"fields": {"job_id": job_id}})
        _fail(cp, job_id, f"deployer error: {type(exc).__name__}: {exc}")
