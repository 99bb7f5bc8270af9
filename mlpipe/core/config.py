"""Load and validate the user's configuration file, once, at the edge.

One file declares the accounts, region, tags and state backend once, project-level defaults, and
a list of pipelines (``[[pipelines]]``). Everything downstream receives a frozen ``ProjectConfig``
and never re-validates. Every rule failure names the exact field (``pipelines[1].deploy.
endpoint_instance_count``), the value and the rule, all at once, and nothing is written.

Strings are data, never code: every pattern is matched against the *whole* value
(``re.fullmatch``: ``$`` would accept a trailing newline), values AWS would reject anyway are
rejected here with AWS's own rule, and the rest reach Terraform as escaped literals
(``mlpipe.core.hcl``).
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlpipe.core.errors import ConfigError
from mlpipe.core.names import FOUNDATION_STACK, FoundationNames, PipelineNames, named_fields

ACCOUNT_KEYS = ("shared", "training", "production")
# Tags the tool sets on every resource itself; a user tag must not silently replace them.
RESERVED_TAG_KEYS = ("ManagedBy", "Account", "Stack")
MAX_TAGS_PER_RESOURCE = 50  # AWS's limit, the tool's own tags included

# Region names of the commercial, GovCloud and China partitions (a literal list keeps validation
# free of SDK version drift).
KNOWN_REGIONS = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
        "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7", "ca-central-1",
        "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
        "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1",
        "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "us-gov-east-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1",
    }
)  # fmt: skip

ACCOUNT_ID = re.compile(r"[0-9]{12}")
# The prefix starts every S3, IAM, CodeCommit and SageMaker name the tool derives.
NAME_PREFIX = re.compile(r"[a-z][a-z0-9-]{1,18}[a-z0-9]")
# No hyphen: `<prefix>-<name>-*` must never match another pipeline's names (see mlpipe.core.names).
PIPELINE_NAME = re.compile(r"[a-z][a-z0-9]{0,15}")
IAM_ROLE_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")
IAM_ROLE_ARN = re.compile(
    r"arn:(aws|aws-cn|aws-us-gov):iam::([0-9]{12}):role/((?:[A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64})"
)
INSTANCE_TYPE = re.compile(r"ml\.[a-z][a-z0-9-]*\.(?:[0-9]*x)?(?:large|medium|small|xlarge|metal)")
XGBOOST_VERSION = re.compile(r"[0-9]+\.[0-9]+-[0-9]+")
HYPERPARAMETER_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,256}")
MAX_HYPERPARAMETER_VALUE = 2500  # SageMaker CreateTrainingJob
MAX_HYPERPARAMETERS = 100
EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
STATE_KEY_PREFIX = re.compile(r"[A-Za-z0-9!_.*'()-]+(?:/[A-Za-z0-9!_.*'()-]+)*")
KMS_KEY_ID = re.compile(
    r"alias/[A-Za-z0-9/_-]{1,250}|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(?:key|alias)/[A-Za-z0-9/_-]+"
)

TRAINING_KEYS = {
    "instance_type", "instance_count", "volume_size_gb", "max_runtime_seconds", "xgboost_version", "hyperparameters",
}  # fmt: skip
DEPLOY_KEYS = {"endpoint_instance_type", "endpoint_instance_count"}
SERVING_KEYS = {
    "smoke_test_data", "smoke_test_rows", "smoke_test_expect", "rollout", "canary_percent", "linear_step_percent",
    "bake_seconds", "autoscaling", "autoscaling_min", "autoscaling_max", "target_invocations_per_instance",
    "data_capture_percent", "alarm_5xx_errors", "alarm_latency_ms",
}  # fmt: skip
S3_KEY = re.compile(r"[A-Za-z0-9!_.*'()-]+(?:/[A-Za-z0-9!_.*'()-]+)*")
INSTANCE_TYPE_RULE = "not a SageMaker instance type (ml.<family>.<size>, e.g. ml.m5.large)"


def partition_of(region: str) -> str:
    """The ARN partition a region belongs to (ARNs are built from it, never hard-coded)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class Account:
    """One AWS account and the role Terraform assumes into it."""

    key: str
    account_id: str
    deploy_role_arn: str


@dataclass(frozen=True)
class TrainingSettings:
    """Defaults for the training job; the training request in the repository may override them."""

    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_size_gb: int = 10
    max_runtime_seconds: int = 3600
    xgboost_version: str = "1.7-1"
    hyperparameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploySettings:
    """How the production endpoint is sized."""

    endpoint_instance_type: str = "ml.m5.large"
    endpoint_instance_count: int = 1


@dataclass(frozen=True)
class ServingSettings:
    """How a new model reaches traffic: smoke test, guarded rollout, autoscaling, data capture, alarms."""

    smoke_test_data: str = "data/validation/validation.csv"  # a key in the pipeline's own bucket
    smoke_test_rows: int = 5
    smoke_test_expect: Literal["probability", "number"] = "probability"
    rollout: Literal["canary", "linear", "all_at_once"] = "canary"
    canary_percent: int = 10
    linear_step_percent: int = 25
    bake_seconds: int = 300
    autoscaling: bool = True
    autoscaling_min: int = 1
    autoscaling_max: int = 2
    target_invocations_per_instance: int = 70
    data_capture_percent: int = 20
    alarm_5xx_errors: int = 5  # Invocation5XXErrors per minute that roll an update back
    alarm_latency_ms: int = 1000  # average ModelLatency per minute that rolls an update back


@dataclass(frozen=True)
class StateSettings:
    """Where Terraform keeps each stack's state: local files, or one S3 key per stack."""

    backend: Literal["local", "s3"] = "local"
    bucket: str = ""
    key_prefix: str = ""
    kms_key_id: str = ""

    def key_for(self, stack: str) -> str:
        return f"{self.key_prefix}/{stack}.tfstate"


@dataclass(frozen=True)
class PipelineSpec:
    """One model pipeline: its own branch, training and endpoint settings, and derived names."""

    name: str
    branch: str
    notification_emails: tuple[str, ...]
    training: TrainingSettings
    deploy: DeploySettings
    serving: ServingSettings
    names: PipelineNames


@dataclass(frozen=True)
class ProjectConfig:
    """The whole validated configuration: the platform, then its pipelines in file order."""

    source: Path
    name_prefix: str
    region: str
    target: Literal["aws", "emulator"]
    accounts: dict[str, Account]
    state: StateSettings
    tags: dict[str, str]
    pipelines: tuple[PipelineSpec, ...]
    foundation: FoundationNames

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    @property
    def shared(self) -> Account:
        return self.accounts["shared"]

    @property
    def training_account(self) -> Account:
        return self.accounts["training"]

    @property
    def production(self) -> Account:
        return self.accounts["production"]

    @property
    def uses_emulator(self) -> bool:
        return self.target == "emulator"

    @property
    def stacks(self) -> tuple[str, ...]:
        """Stack names in dependency order: the foundation first, then the pipelines."""
        return (FOUNDATION_STACK, *(p.name for p in self.pipelines))

    def pipeline(self, name: str) -> PipelineSpec:
        for spec in self.pipelines:
            if spec.name == name:
                return spec
        known = ", ".join(p.name for p in self.pipelines)
        raise ConfigError(f"{self.source}: no pipeline named {name!r}", f"pipelines in this file: {known}")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _control_characters(value: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in value if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")]


class _Reader:
    """Reads typed fields out of the parsed TOML, collecting every error before raising."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, where: str, value: Any, rule: str) -> None:
        self.errors.append(f"{where} = {value!r}: {rule}")

    def table(self, node: Any, where: str, required: bool = True) -> dict[str, Any]:
        if node is None:
            if required:
                self.errors.append(f"[{where}]: missing table")
            return {}
        if not isinstance(node, dict):
            self.fail(where, node, "must be a table")
            return {}
        return node

    def string(self, table: dict[str, Any], where: str, name: str, default: str | None = None) -> str:
        if name not in table:
            if default is None:
                self.errors.append(f"{where}.{name}: missing (required)")
                return ""
            return default
        value = table[name]
        if not isinstance(value, str):
            self.fail(f"{where}.{name}", value, "must be a string")
            return ""
        return value

    def matching(
        self, table: dict[str, Any], where: str, name: str, pattern: re.Pattern[str], rule: str, default: str | None
    ) -> str:
        value = self.string(table, where, name, default)
        if (value and not pattern.fullmatch(value)) or (value == "" and default is None and name in table):
            self.fail(f"{where}.{name}", value, rule)
        return value

    def integer(self, table: dict[str, Any], where: str, name: str, default: int, lo: int, hi: int) -> int:
        value = table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(f"{where}.{name}", value, f"must be an integer from {lo} to {hi}")
            return default
        return value

    def unknown_keys(
        self, table: dict[str, Any], where: str, allowed: set[str], hints: dict[str, str] | None = None
    ) -> None:
        for key in sorted(set(table) - allowed):
            rule = (hints or {}).get(key) or f"unknown key; allowed: {', '.join(sorted(allowed))}"
            self.fail(f"{where}.{key}" if where else key, table[key], rule)


# ---------------------------------------------------------------------------------------------
# Field rules
# ---------------------------------------------------------------------------------------------


def git_branch_problem(branch: str) -> str | None:
    """Why `branch` is not a branch name Git (`git check-ref-format --branch`) and CodeCommit accept."""
    if not 1 <= len(branch) <= 256:
        return "must be 1-256 characters (CodeCommit's limit)"
    if bad := _control_characters(branch) or [c for c in branch if c in " ~^:?*[\\\x7f"]:
        return f"contains {', '.join(sorted(set(map(str, bad))))}, which Git does not allow in a branch name"
    if branch.startswith(("/", "-")) or branch.endswith(("/", ".")) or "//" in branch:
        return "must not start with '/' or '-', end with '/' or '.', or contain '//'"
    if ".." in branch or "@{" in branch or branch == "@":
        return "must not contain '..' or '@{' and must not be '@'"
    for component in branch.split("/"):
        if component.startswith(".") or component.endswith(".lock"):
            return f"component {component!r} must not start with '.' or end with '.lock'"
    return None


def tag_problem(text: str, limit: int) -> str | None:
    """Why `text` is not a tag key/value AWS accepts: letters, digits, spaces and _ . : / = + - @."""
    if len(text) > limit:
        return f"at most {limit} characters"
    for char in text:
        category = unicodedata.category(char)
        if not (category[0] in "LNZ" or char in "_.:/=+-@"):
            return (
                f"character {char!r} (U+{ord(char):04X}) is not allowed; "
                "AWS tags allow letters, digits, spaces and _ . : / = + - @"
            )
    return None


def _read_tags(r: _Reader, node: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    table = r.table(node, "tags", required=False)
    for key, value in table.items():
        where = f"tags.{key}"
        problem = tag_problem(key, 128) if key else "empty key"
        if problem:
            r.fail(where, value, f"invalid tag key: {problem}")
        elif key.lower().startswith("aws:"):
            r.fail(where, value, "tag keys starting with 'aws:' are reserved by AWS")
        elif key in RESERVED_TAG_KEYS:
            r.fail(where, value, f"tag {key!r} is set by mlpipe on every resource; choose another key")
        elif not isinstance(value, str):
            r.fail(where, value, "tag values must be strings")
        elif problem := tag_problem(value, 256):
            r.fail(where, value, f"invalid tag value: {problem}")
        else:
            tags[key] = value
    if len(tags) > MAX_TAGS_PER_RESOURCE - len(RESERVED_TAG_KEYS):
        r.fail(
            "tags",
            f"{len(tags)} tags",
            f"AWS allows {MAX_TAGS_PER_RESOURCE} tags per resource and mlpipe sets {len(RESERVED_TAG_KEYS)} itself: "
            f"at most {MAX_TAGS_PER_RESOURCE - len(RESERVED_TAG_KEYS)}",
        )
    return dict(sorted(tags.items()))


def _read_accounts(r: _Reader, node: Any, region: str) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    table = r.table(node, "accounts")
    r.unknown_keys(table, "accounts", set(ACCOUNT_KEYS))
    partition = partition_of(region)
    for key in ACCOUNT_KEYS:
        where = f"accounts.{key}"
        entry = r.table(table.get(key), where) if table else {}
        if not entry:
            continue
        r.unknown_keys(entry, where, {"id", "deploy_role"})
        account_id = r.matching(entry, where, "id", ACCOUNT_ID, "must be exactly 12 digits, as a quoted string", None)
        role = r.string(entry, where, "deploy_role")
        role_arn = ""
        if role.startswith("arn:"):
            match = IAM_ROLE_ARN.fullmatch(role)
            if not match:
                r.fail(f"{where}.deploy_role", role, "not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)")
            elif match.group(2) != account_id:
                r.fail(f"{where}.deploy_role", role, f"role ARN must be in account {account_id}")
            elif region and match.group(1) != partition:
                r.fail(f"{where}.deploy_role", role, f"role ARN must be in partition {partition} (region {region})")
            role_arn = role
        elif role:
            if not IAM_ROLE_NAME.fullmatch(role):
                r.fail(f"{where}.deploy_role", role, "not a valid IAM role name (1-64 chars of A-Z a-z 0-9 _+=,.@-)")
            role_arn = f"arn:{partition}:iam::{account_id}:role/{role}"
        elif "deploy_role" in entry:
            r.fail(f"{where}.deploy_role", role, "must not be empty")
        accounts[key] = Account(key=key, account_id=account_id, deploy_role_arn=role_arn)
    ids = [a.account_id for a in accounts.values() if a.account_id]
    if len(ids) == 3 and len(set(ids)) != 3:
        r.fail("accounts.*.id", ids, "the shared, training and production accounts must be three distinct accounts")
    return accounts


def _read_state(r: _Reader, node: Any, prefix: str, target: str) -> StateSettings:
    table = r.table(node, "state", required=False)
    r.unknown_keys(
        table,
        "state",
        {"backend", "bucket", "key_prefix", "kms_key_id"},
        {"key": "renamed: state.key_prefix (each stack gets <key_prefix>/<stack>.tfstate)"},
    )
    backend = r.string(table, "state", "backend", "local")
    if backend == "s3":
        if target == "emulator":
            r.fail("state.backend", backend, 'the emulator target keeps local state; use "local"')
        return StateSettings(
            backend="s3",
            bucket=r.matching(table, "state", "bucket", BUCKET_NAME, "not a valid S3 bucket name", None),
            key_prefix=r.matching(table, "state", "key_prefix", STATE_KEY_PREFIX, "not a valid S3 key prefix", prefix),
            kms_key_id=r.matching(
                table, "state", "kms_key_id", KMS_KEY_ID, "not a KMS key ARN or alias/<name>", "alias/aws/s3"
            ),
        )
    if backend != "local":
        r.fail("state.backend", backend, 'must be "local" or "s3"')
    for key in ("bucket", "key_prefix", "kms_key_id"):
        if key in table:
            r.fail(f"state.{key}", table[key], 'only used with backend = "s3"')
    return StateSettings()


def _merged(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Pipeline settings over project defaults, table by table (hyper-parameters merge key by key)."""
    merged = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _where(key: str, overrides: dict[str, Any], pipeline_where: str, section: str) -> str:
    """Blame the place the value came from: the pipeline if it set it, else the defaults."""
    return f"{pipeline_where}.{section}" if key in overrides else f"defaults.{section}"


def _read_training(r: _Reader, defaults: dict[str, Any], overrides: dict[str, Any], where: str) -> TrainingSettings:
    allowed = {
        "instance_type",
        "instance_count",
        "volume_size_gb",
        "max_runtime_seconds",
        "xgboost_version",
        "hyperparameters",
    }
    r.unknown_keys(overrides, f"{where}.training", allowed)
    table = _merged(defaults, overrides)

    def at(key: str) -> str:
        return _where(key, overrides, where, "training")

    hyper_raw = table.get("hyperparameters", {})
    hyper: dict[str, str] = {}
    if not isinstance(hyper_raw, dict):
        r.fail(f"{at('hyperparameters')}.hyperparameters", hyper_raw, "must be a table")
    else:
        source = overrides.get("hyperparameters", {}) if isinstance(overrides.get("hyperparameters"), dict) else {}
        for key, value in hyper_raw.items():
            key_where = f"{where if key in source else 'defaults'}.training.hyperparameters.{key}"
            if not HYPERPARAMETER_KEY.fullmatch(key):
                r.fail(key_where, value, "invalid hyper-parameter name (1-256 of A-Z a-z 0-9 _ . : -)")
            elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
                r.fail(key_where, value, "must be a string or a number")
            else:
                text = str(value)
                if len(text) > MAX_HYPERPARAMETER_VALUE:
                    r.fail(key_where, f"{len(text)} characters", f"SageMaker allows at most {MAX_HYPERPARAMETER_VALUE}")
                elif bad := _control_characters(text):
                    r.fail(key_where, value, f"contains control characters ({', '.join(bad)}), which SageMaker rejects")
                else:
                    hyper[key] = text
        if len(hyper_raw) > MAX_HYPERPARAMETERS:
            r.fail(f"{where}.training.hyperparameters", f"{len(hyper_raw)} entries", f"at most {MAX_HYPERPARAMETERS}")
    instance_type = r.matching(
        table, at("instance_type"), "instance_type", INSTANCE_TYPE, INSTANCE_TYPE_RULE, "ml.m5.large"
    )
    xgboost = r.matching(
        table, at("xgboost_version"), "xgboost_version", XGBOOST_VERSION, "must look like 1.7-1", "1.7-1"
    )
    return TrainingSettings(
        instance_type=instance_type,
        instance_count=r.integer(table, at("instance_count"), "instance_count", 1, 1, 20),
        volume_size_gb=r.integer(table, at("volume_size_gb"), "volume_size_gb", 10, 1, 512),
        max_runtime_seconds=r.integer(table, at("max_runtime_seconds"), "max_runtime_seconds", 3600, 60, 432000),
        xgboost_version=xgboost,
        hyperparameters=dict(sorted(hyper.items())),
    )


def _read_deploy(r: _Reader, defaults: dict[str, Any], overrides: dict[str, Any], where: str) -> DeploySettings:
    r.unknown_keys(overrides, f"{where}.deploy", DEPLOY_KEYS)
    table = _merged(defaults, overrides)

    def at(key: str) -> str:
        return _where(key, overrides, where, "deploy")

    instance_type = r.matching(
        table, at("endpoint_instance_type"), "endpoint_instance_type", INSTANCE_TYPE, INSTANCE_TYPE_RULE, "ml.m5.large"
    )
    return DeploySettings(
        endpoint_instance_type=instance_type,
        endpoint_instance_count=r.integer(table, at("endpoint_instance_count"), "endpoint_instance_count", 1, 1, 10),
    )


def _read_serving(
    r: _Reader, defaults: dict[str, Any], overrides: dict[str, Any], where: str, deploy: DeploySettings
) -> ServingSettings:
    r.unknown_keys(overrides, f"{where}.serving", SERVING_KEYS)
    table = _merged(defaults, overrides)

    def at(key: str) -> str:
        return _where(key, overrides, where, "serving")

    def choice(key: str, options: tuple[str, ...], default: str) -> str:
        value = r.string(table, at(key), key, default)
        if value not in options:
            r.fail(f"{at(key)}.{key}", value, f"must be one of {', '.join(options)}")
            return default
        return value

    count = deploy.endpoint_instance_count
    autoscaling = table.get("autoscaling", True)
    if not isinstance(autoscaling, bool):
        r.fail(f"{at('autoscaling')}.autoscaling", autoscaling, "must be true or false")
        autoscaling = True
    low = r.integer(table, at("autoscaling_min"), "autoscaling_min", count, 1, 1000)
    high = r.integer(table, at("autoscaling_max"), "autoscaling_max", max(2 * count, low), 1, 1000)
    if not low <= count <= high:
        r.fail(
            f"{where}.serving.autoscaling_min/max",
            f"{low}..{high}",
            f"must include the endpoint instance count ({count}): autoscaling_min <= count <= autoscaling_max",
        )
    smoke_key = r.matching(
        table, at("smoke_test_data"), "smoke_test_data", S3_KEY,
        "an S3 key in the pipeline's own bucket (letters, digits, !_.*'()- and /), e.g. data/validation/validation.csv",
        "data/validation/validation.csv",
    )  # fmt: skip
    return ServingSettings(
        smoke_test_data=smoke_key,
        smoke_test_rows=r.integer(table, at("smoke_test_rows"), "smoke_test_rows", 5, 0, 100),
        smoke_test_expect=choice("smoke_test_expect", ("probability", "number"), "probability"),  # type: ignore[arg-type]
        rollout=choice("rollout", ("canary", "linear", "all_at_once"), "canary"),  # type: ignore[arg-type]
        canary_percent=r.integer(table, at("canary_percent"), "canary_percent", 10, 1, 50),
        linear_step_percent=r.integer(table, at("linear_step_percent"), "linear_step_percent", 25, 10, 50),
        bake_seconds=r.integer(table, at("bake_seconds"), "bake_seconds", 300, 0, 3600),
        autoscaling=autoscaling,
        autoscaling_min=low,
        autoscaling_max=high,
        target_invocations_per_instance=r.integer(
            table, at("target_invocations_per_instance"), "target_invocations_per_instance", 70, 1, 100000
        ),
        data_capture_percent=r.integer(table, at("data_capture_percent"), "data_capture_percent", 20, 0, 100),
        alarm_5xx_errors=r.integer(table, at("alarm_5xx_errors"), "alarm_5xx_errors", 5, 1, 100000),
        alarm_latency_ms=r.integer(table, at("alarm_latency_ms"), "alarm_latency_ms", 1000, 1, 600000),
    )


_OLD_SHAPE_HINTS = {
    "training": "move [training] to [defaults.training] (every pipeline) or [pipelines.training] (one pipeline)",
    "deploy": "move [deploy] to [defaults.deploy] (every pipeline) or [pipelines.deploy] (one pipeline)",
}
_PIPELINE_KEYS = {"name", "branch", "notification_emails", "training", "deploy", "serving"}
_DEFAULT_KEYS = {"branch", "notification_emails", "training", "deploy", "serving"}


def load_config(path: str | Path) -> ProjectConfig:
    """Parse and validate `path`; raise ConfigError listing every broken rule."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(
            f"configuration file {source} does not exist",
            "pass CONFIG=<file>; see config/example.toml and config/local.toml",
        )
    raw = source.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{source}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, offset {exc.start})",
            "save the file as UTF-8 (TOML requires it)",
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}", "fix the TOML syntax at that position") from exc
    return parse_config(data, source)


def _check_normal_form(r: _Reader, node: Any, where: str) -> None:
    """Every string and key must be in NFC: Terraform normalizes strings, so others would not read back."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and not unicodedata.is_normalized("NFC", key):
                r.fail(path, key, f"key {_NOT_NFC} {unicodedata.normalize('NFC', key)!r}: write it that way")
            _check_normal_form(r, value, path)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _check_normal_form(r, item, f"{where}[{index}]")
    elif isinstance(node, str) and not unicodedata.is_normalized("NFC", node):
        r.fail(where, node, f"{_NOT_NFC} {unicodedata.normalize('NFC', node)!r}: write it that way")


_NOT_NFC = "is not in Unicode normal form NFC; Terraform stores every string in NFC, so it would become"


def parse_config(data: dict[str, Any], source: Path) -> ProjectConfig:
    """Validate already-parsed TOML data (split out so tests can feed dicts)."""
    r = _Reader()
    _check_normal_form(r, data, "")
    r.unknown_keys(data, "", {"project", "accounts", "state", "tags", "defaults", "pipelines"}, _OLD_SHAPE_HINTS)

    project = r.table(data.get("project"), "project")
    r.unknown_keys(
        project,
        "project",
        {"name_prefix", "region", "target"},
        {
            "branch": "moved: set branch in [defaults] or per [[pipelines]] entry",
            "approval_email": "replaced: set notification_emails = [...] in [defaults] or per [[pipelines]] entry",
        },
    )
    prefix = r.matching(
        project, "project", "name_prefix", NAME_PREFIX,
        "3-20 chars of lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen "
        "(it starts every S3 bucket, IAM role, CodeCommit and SageMaker name)",
        None,
    )  # fmt: skip
    region = r.string(project, "project", "region")
    if region and region not in KNOWN_REGIONS:
        r.fail("project.region", region, "not an AWS region name (e.g. eu-west-1)")
        region = ""
    target = r.string(project, "project", "target", "aws")
    if target not in ("aws", "emulator"):
        r.fail("project.target", target, 'must be "aws" or "emulator"')

    accounts = _read_accounts(r, data.get("accounts"), region)
    state = _read_state(r, data.get("state"), prefix, target)
    tags = _read_tags(r, data.get("tags"))

    defaults = r.table(data.get("defaults"), "defaults", required=False)
    r.unknown_keys(defaults, "defaults", _DEFAULT_KEYS)
    default_training = r.table(defaults.get("training"), "defaults.training", required=False)
    default_deploy = r.table(defaults.get("deploy"), "defaults.deploy", required=False)
    # Unknown keys in defaults are reported once here, not once per pipeline.
    r.unknown_keys(default_training, "defaults.training", TRAINING_KEYS)
    r.unknown_keys(default_deploy, "defaults.deploy", DEPLOY_KEYS)

    def branch_of(table: dict[str, Any], where: str) -> str:
        value = r.string(table, where, "branch", "main")
        if problem := git_branch_problem(value):
            r.fail(f"{where}.branch", value, f"not a valid Git branch name: {problem}")
        return value

    def emails_of(table: dict[str, Any], where: str) -> tuple[str, ...]:
        values = table.get("notification_emails", [])
        if not isinstance(values, list):
            r.fail(f"{where}.notification_emails", values, "must be a list of e-mail addresses")
            return ()
        for index, value in enumerate(values):
            if not isinstance(value, str) or len(value) > 254 or not EMAIL.fullmatch(value):
                r.fail(f"{where}.notification_emails[{index}]", value, "not an e-mail address (ASCII local@domain.tld)")
        if len(set(values)) != len(values):
            r.fail(f"{where}.notification_emails", values, "duplicate addresses")
        return tuple(v for v in values if isinstance(v, str))

    default_branch = branch_of(defaults, "defaults")
    default_emails = emails_of(defaults, "defaults")
    default_serving = r.table(defaults.get("serving"), "defaults.serving", required=False)
    r.unknown_keys(default_serving, "defaults.serving", SERVING_KEYS)
    pipelines_raw = data.get("pipelines")
    specs: list[PipelineSpec] = []
    if not isinstance(pipelines_raw, list) or not pipelines_raw:
        r.fail(
            "pipelines",
            pipelines_raw,
            "declare at least one pipeline: a [[pipelines]] table with a name (see config/local.toml)",
        )
        pipelines_raw = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(pipelines_raw):
        where = f"pipelines[{index}]"
        if not isinstance(entry, dict):
            r.fail(where, entry, "must be a table ([[pipelines]])")
            continue
        r.unknown_keys(entry, where, _PIPELINE_KEYS)
        name = r.matching(
            entry, where, "name", PIPELINE_NAME,
            "1-16 lowercase letters and digits, starting with a letter; no hyphens, so that one pipeline's "
            "IAM wildcards (<prefix>-<name>-*) can never match another pipeline's resources",
            None,
        )  # fmt: skip
        if name == FOUNDATION_STACK:
            r.fail(f"{where}.name", name, f"{FOUNDATION_STACK!r} is the shared stack's name; choose another")
        elif name in seen:
            r.fail(f"{where}.name", name, f"duplicate: pipelines[{seen[name]}] already has this name")
        elif name:
            seen[name] = index
        training = _read_training(
            r, default_training, r.table(entry.get("training"), f"{where}.training", False), where
        )
        deploy = _read_deploy(r, default_deploy, r.table(entry.get("deploy"), f"{where}.deploy", False), where)
        branch = branch_of(entry, where) if "branch" in entry else default_branch
        emails = emails_of(entry, where) if "notification_emails" in entry else default_emails
        own_serving = r.table(entry.get("serving"), f"{where}.serving", False)
        serving = _read_serving(r, default_serving, own_serving, where, deploy)
        shared_id = accounts["shared"].account_id if "shared" in accounts else ""
        names = PipelineNames.derive(prefix, name, shared_id or "000000000000", region or "us-east-1")
        specs.append(PipelineSpec(name, branch, emails, training, deploy, serving, names))

    shared_id = accounts["shared"].account_id if "shared" in accounts else ""
    foundation = FoundationNames.derive(prefix, shared_id or "000000000000", region or "us-east-1")
    if prefix and not r.errors:
        _check_derived_names(r, prefix, foundation, specs)

    if r.errors:
        problems = list(dict.fromkeys(r.errors))  # a bad default is reported once, not once per pipeline
        listing = "\n  - ".join(problems)
        raise ConfigError(
            f"{source}: {len(problems)} problem(s) in the configuration "
            f"(pipelines are numbered from 0):\n  - {listing}",
            "edit the file; nothing was written",
        )
    return ProjectConfig(
        source=source,
        name_prefix=prefix,
        region=region,
        target=target,  # type: ignore[arg-type]
        accounts=accounts,
        state=state,
        tags=tags,
        pipelines=tuple(specs),
        foundation=foundation,
    )


def _check_derived_names(r: _Reader, prefix: str, foundation: FoundationNames, specs: list[PipelineSpec]) -> None:
    """Every derived name fits its service's limit and no two resources would get the same name."""
    owners: dict[tuple[str, str], str] = {}  # (kind of name, name) -> who derived it
    sources = [("project.name_prefix", prefix, "foundation", foundation)]
    sources += [(f"pipelines[{i}].name", s.name, f"pipelines[{i}]", s.names) for i, s in enumerate(specs)]
    for field_where, field_value, label, names in sources:
        for attr, value in named_fields(names).items():
            limit = names.LIMITS[attr]
            if len(value) > limit.length:
                r.fail(
                    field_where,
                    field_value,
                    f"the derived {limit.what} {value!r} ({attr}) is {len(value)} chars; AWS allows at most "
                    f"{limit.length}: shorten the pipeline name or the project name_prefix",
                )
            if (limit.what, value) in owners:
                r.fail(
                    field_where,
                    field_value,
                    f"the derived {limit.what} {value!r} collides with {owners[limit.what, value]}",
                )
            owners[limit.what, value] = f"{label} ({attr})"
