"""The values of the call list's placeholders for one pipeline, read from the manifests and the configuration.

Why separate from the call list: calls.py says *what* a run does; this says *which* deployed names that means.
Each resource is found by the name the configuration derives for it (``mlpipe.core.names``) or by what the
manifests connect (the key the dead-letter queue is encrypted with, the key a log group uses), and its ARN comes
from the manifest's provider account. A value that cannot be found is an ``Unresolvable``, kept in place of the
value: only the calls that use it become UNDECIDABLE.

Names that exist only at run time are fixed examples of the real shapes: the run id is 32 hex characters (the ASL
hashes the execution name), the training job is ``<prefix>-<run id>-<retry>``, and the deployer names the model
after the job and the endpoint config after the model plus a hash.
"""

from __future__ import annotations

from collections.abc import Callable

from mlpipe.core.config import PipelineSpec
from mlpipe.core.names import FOUNDATION_STACK
from mlpipe.gate.access.inventory import Inventory, Resource, Unresolvable

Values = dict[str, "str | Unresolvable"]

RUN_ID = "3f2a9c1e5b7d4f608a1b2c3d4e5f6a7b"
EXECUTION_ID = "0c7e1d2a-3b4c-4d5e-8f90-a1b2c3d4e5f6"
CONFIG_HASH = "1a2b3c4d"
OUTSIDER_ROLE = "administrator-not-named-by-mlpipe"
XGBOOST_REGISTRY = "aws-owned"
# Placeholder -> the PipelineNames field naming that role.
ROLE_NAMES = {
    "pipeline_role": "pipeline_role",
    "trigger_role": "trigger_role",
    "training_xacct_role": "training_cross_account_role",
    "state_machine_role": "state_machine_role",
    "training_sagemaker_role": "training_sagemaker_role",
    "production_xacct_role": "production_cross_account_role",
    "deployer_role": "deployer_role",
    "production_sagemaker_role": "production_sagemaker_role",
}


def foreign_account(inventory: Inventory) -> str:
    """An account id outside the three configured ones."""
    taken = {a.account_id for a in inventory.config.accounts.values()}
    return next(f"9999999999{n:02d}" for n in range(99, -1, -1) if f"9999999999{n:02d}" not in taken)


def outsiders(inventory: Inventory) -> dict[str, str]:
    """Roles no pipeline names, one per configured account and one in a foreign account."""
    config = inventory.config
    accounts = {key: a.account_id for key, a in config.accounts.items()} | {"foreign": foreign_account(inventory)}
    return {
        f"outsider_{key}": f"arn:{config.partition}:iam::{acct}:role/{OUTSIDER_ROLE}" for key, acct in accounts.items()
    }


def platform_values(inventory: Inventory) -> Values:
    """What every pipeline shares: accounts, region, the foundation's keys and bucket, the roles nobody names."""
    config = inventory.config
    values: Values = {
        "region": config.region,
        "partition": config.partition,
        "foreign_account": foreign_account(inventory),
        "xgboost_registry": XGBOOST_REGISTRY,
        **{f"{key}_account": account.account_id for key, account in config.accounts.items()},
        **outsiders(inventory),
        "other_key": f"arn:{config.partition}:kms:{config.region}:{config.shared.account_id}:key/not-a-pipeline-key",
    }
    _put(values, "training_logs_key", lambda: inventory.foundation_output("training_logs_key_arn"))
    _put(values, "production_logs_key", lambda: inventory.foundation_output("production_logs_key_arn"))
    _put(
        values,
        "access_log_bucket",
        lambda: f"arn:{config.partition}:s3:::{inventory.foundation_output('access_log_bucket')}",
    )
    return values


def pipeline_values(inventory: Inventory, spec: PipelineSpec) -> Values:
    """Every placeholder of calls.py for one pipeline."""
    stack, names, inv = spec.name, spec.names, inventory
    values = platform_values(inventory)
    if stack == FOUNDATION_STACK or stack not in inv.manifests:
        missing = Unresolvable(f"no manifest for pipeline stack {stack!r}")
        for name in (*ROLE_NAMES, *_PIPELINE_PLACEHOLDERS):
            values[name] = missing
        return values

    def named(rtype: str, attribute: str, value: str) -> Callable[[], Resource]:
        return lambda: inv.find(stack, rtype, attribute, value)

    def arn(find: Callable[[], Resource], attribute: str = "arn") -> Callable[[], str]:
        return lambda: inv.attribute(find(), attribute)

    for placeholder, field_name in ROLE_NAMES.items():
        _put(values, placeholder, arn(named("aws_iam_role", "name", getattr(names, field_name))))
    bucket = named("aws_s3_bucket", "bucket", names.artifact_bucket)
    _put(values, "bucket", arn(bucket))
    _put(values, "artifact_prefix", lambda: names.artifact_prefix)
    _put(values, "train_object", lambda: _object(inv, stack, names.artifact_bucket, "data/train/"))
    _put(values, "validation_object", lambda: _object(inv, stack, names.artifact_bucket, "data/validation/"))

    def key_of(find: Callable[[], Resource], attribute: str) -> Callable[[], str]:
        """The ARN of the key a resource's attribute refers to."""
        return lambda: inv.attribute(inv.referenced(stack, find().attributes.get(attribute)), "arn")

    _put(values, "key", key_of(named("aws_kms_alias", "name", names.artifact_key_alias), "target_key_id"))
    queue = named("aws_sqs_queue", "name", names.deployer_queue)
    _put(values, "dlq", arn(queue))
    _put(values, "deployer_key", key_of(queue, "kms_master_key_id"))
    _put(values, "repository", arn(named("aws_codecommit_repository", "repository_name", names.repository)))
    _put(values, "codepipeline", arn(named("aws_codepipeline", "name", names.pipeline)))
    machine = named("aws_sfn_state_machine", "name", names.state_machine)
    _put(values, "state_machine", arn(machine))
    _put(values, "state_machine_name", arn(machine, "name"))
    function = named("aws_lambda_function", "function_name", names.deployer_function)
    _put(values, "deployer_function", arn(function))
    topic = named("aws_sns_topic", "name", names.notification_topic)
    _put(values, "notification_topic", arn(topic))
    _put(values, "run_rule", arn(named("aws_cloudwatch_event_rule", "name", names.notification_rule)))
    _put(values, "approval_rule", lambda: _other_rule(inv, stack, topic(), names.notification_rule))
    _put(values, "errors_alarm", arn(named("aws_cloudwatch_metric_alarm", "alarm_name", names.alarm_5xx)))
    _put(values, "latency_alarm", arn(named("aws_cloudwatch_metric_alarm", "alarm_name", names.alarm_latency)))
    _put(values, "smoke_test_object", lambda: _s3_arn(inv, _environment(inv, function(), "SMOKE_TEST_S3_URI")))
    _put(values, "data_capture", lambda: _s3_arn(inv, _environment(inv, function(), "DATA_CAPTURE_S3_URI")))
    for placeholder, log_group, key in (
        ("state_machine_log_group", names.state_machine_log_group, "training_logs_key"),
        ("deployer_log_group", names.deployer_log_group, "production_logs_key"),
    ):
        group = named("aws_cloudwatch_log_group", "name", log_group)
        _put(values, placeholder, arn(group))
        _put(values, key, lambda group=group: inv.resolve(stack, str(group().attributes.get("kms_key_id", ""))))
    _put(values, "access_log_bucket", lambda: _bucket_logging(inv, stack, names.artifact_bucket)[0])
    _put(values, "access_log_prefix", lambda: _bucket_logging(inv, stack, names.artifact_bucket)[1])
    _put(values, "xgboost_repository", lambda: _xgboost_repository(inv, stack))
    job = f"{names.training_job_prefix}-{RUN_ID}-0"
    _put(values, "training_job", lambda: job)
    _put(values, "execution", lambda: f"{names.base}-{EXECUTION_ID}")
    _put(values, "endpoint", lambda: _environment(inv, function(), "ENDPOINT_NAME"))
    _put(values, "model", lambda: _model_name(_environment(inv, function(), "NAME_PREFIX"), job))
    _put(
        values,
        "endpoint_config",
        lambda: f"{_model_name(_environment(inv, function(), 'NAME_PREFIX'), job)}-{CONFIG_HASH}",
    )
    return values


_PIPELINE_PLACEHOLDERS = (
    "bucket",
    "artifact_prefix",
    "train_object",
    "validation_object",
    "key",
    "dlq",
    "deployer_key",
    "repository",
    "codepipeline",
    "state_machine",
    "state_machine_name",
    "deployer_function",
    "notification_topic",
    "run_rule",
    "approval_rule",
    "errors_alarm",
    "latency_alarm",
    "smoke_test_object",
    "data_capture",
    "state_machine_log_group",
    "deployer_log_group",
    "access_log_prefix",
    "xgboost_repository",
    "training_job",
    "execution",
    "endpoint",
    "model",
    "endpoint_config",
)


def _put(values: Values, name: str, derive: Callable[[], str]) -> None:
    try:
        values[name] = derive()
    except Unresolvable as exc:
        values[name] = exc


def _object(inv: Inventory, stack: str, bucket: str, prefix: str) -> str:
    """The key of the first object the stack uploads under ``prefix`` of its bucket (the ASL's default prefixes)."""
    keys = sorted(
        str(r.attributes["key"])
        for r in inv.resources(stack)
        if r.type == "aws_s3_object"
        and isinstance(r.attributes.get("key"), str)
        and str(r.attributes["key"]).startswith(prefix)
        and inv.resolve(stack, str(r.attributes.get("bucket", ""))) == bucket
    )
    if not keys:
        raise Unresolvable(f"stack {stack} uploads no object under s3://{bucket}/{prefix}")
    return keys[0]


def _bucket_logging(inv: Inventory, stack: str, bucket: str) -> tuple[str, str]:
    """The ARN of the bucket that receives ``bucket``'s access logs, and the key prefix of those logs."""
    for r in inv.resources(stack):
        if r.type == "aws_s3_bucket_logging" and inv.resolve(stack, str(r.attributes.get("bucket", ""))) == bucket:
            target = inv.resolve(stack, str(r.attributes.get("target_bucket", "")))
            return f"arn:{inv.config.partition}:s3:::{target}", str(r.attributes.get("target_prefix", ""))
    raise Unresolvable(f"stack {stack} configures no access logging for {bucket}")


def _xgboost_repository(inv: Inventory, stack: str) -> str:
    images = [r for r in inv.resources(stack) if r.address.startswith("data.aws_sagemaker_prebuilt_ecr_image.")]
    if len(images) != 1 or not isinstance(images[0].attributes.get("repository_name"), str):
        raise Unresolvable(
            f"stack {stack} has {len(images)} aws_sagemaker_prebuilt_ecr_image data sources (expected 1)"
        )
    return str(images[0].attributes["repository_name"])


def _other_rule(inv: Inventory, stack: str, topic: Resource, run_rule: str) -> str:
    """The one EventBridge rule besides the run notifications that targets the notifications topic (approvals)."""
    rules = []
    for target in inv.resources(stack):
        if target.type != "aws_cloudwatch_event_target":
            continue
        try:
            if inv.referenced(stack, target.attributes.get("arn")).address != topic.address:
                continue
            rule = inv.referenced(stack, target.attributes.get("rule"))
        except Unresolvable:
            continue
        if inv.attribute(rule, "name") != run_rule:
            rules.append(inv.attribute(rule, "arn"))
    if len(rules) != 1:
        raise Unresolvable(f"stack {stack} has {len(rules)} approval rules targeting {topic.address} (expected 1)")
    return rules[0]


def _s3_arn(inv: Inventory, uri: str) -> str:
    """``s3://bucket/key`` as the object's (or prefix's) ARN."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise Unresolvable(f"{uri!r} is not an s3://bucket/key URI")
    return f"arn:{inv.config.partition}:s3:::{bucket}/{key.rstrip('/')}"


def _environment(inv: Inventory, function: Resource, variable: str) -> str:
    env = function.attributes.get("environment")
    variables = env.get("variables") if isinstance(env, dict) else None
    value = variables.get(variable) if isinstance(variables, dict) else None
    if not isinstance(value, str):
        raise Unresolvable(f"{function.stack}: {function.address} sets no {variable}")
    return inv.resolve(function.stack, value)


def _model_name(prefix: str, job: str) -> str:
    """The deployer names the model ``<NAME_PREFIX>-<job without that prefix>`` (lambda_src/deployer.py)."""
    return f"{prefix}-{job.removeprefix(f'{prefix}-')}"


def placeholders() -> tuple[str, ...]:
    """Every placeholder a pipeline's values define (for documentation and tests)."""
    return tuple(sorted({*ROLE_NAMES, *_PIPELINE_PLACEHOLDERS}))
