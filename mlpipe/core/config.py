"""Load and validate the user's configuration file, once, at the edge.

Everything downstream receives a frozen `PipelineConfig` and never re-validates. Each rule failure
names the field, the value and the rule, so the user can fix the file without reading code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlpipe.core.errors import ConfigError

ACCOUNT_KEYS = ("shared", "training", "production")

# Public commercial, GovCloud and China partitions' region names (botocore's endpoint data would
# also do, but a literal list keeps validation free of SDK version drift).
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

ACCOUNT_ID = re.compile(r"^\d{12}$")
# The prefix becomes part of S3 bucket names, IAM role names, CodeCommit repository names and
# SageMaker job names (63 chars with an execution id appended), hence the tight length.
NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")
IAM_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
IAM_ROLE_PATH_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
BRANCH = re.compile(r"^(?!/)(?!.*//)(?!.*\.\.)(?!.*@\{)[^\s~^:?*\[\\]{1,100}(?<![/.])$")
INSTANCE_TYPE = re.compile(r"^ml\.[a-z][a-z0-9-]*\.(?:\d*x)?(?:large|medium|small|xlarge|metal)$")
HYPERPARAMETER_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,256}$")
TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
class StateSettings:
    """Where Terraform keeps its state: a local file, or S3 in the shared account."""

    backend: Literal["local", "s3"] = "local"
    bucket: str = ""
    key: str = ""
    kms_key_id: str = ""


@dataclass(frozen=True)
class PipelineConfig:
    """The whole validated configuration."""

    source: Path
    name_prefix: str
    region: str
    branch: str
    accounts: dict[str, Account]
    training: TrainingSettings
    deploy: DeploySettings
    state: StateSettings
    target: Literal["aws", "emulator"]
    approval_email: str
    tags: dict[str, str]

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


class _Reader:
    """Reads typed fields out of the parsed TOML, collecting every error before raising."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.errors: list[str] = []

    def fail(self, where: str, value: Any, rule: str) -> None:
        self.errors.append(f"{where} = {value!r}: {rule}")

    def table(self, where: str, required: bool = True) -> dict[str, Any]:
        node: Any = self.data
        for part in where.split("."):
            if not isinstance(node, dict) or part not in node:
                if required:
                    self.errors.append(f"[{where}]: missing table")
                return {}
            node = node[part]
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

    def integer(self, table: dict[str, Any], where: str, name: str, default: int, lo: int, hi: int) -> int:
        value = table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(f"{where}.{name}", value, f"must be an integer from {lo} to {hi}")
            return default
        return value

    def unknown_keys(self, table: dict[str, Any], where: str, allowed: set[str]) -> None:
        for key in sorted(set(table) - allowed):
            self.fail(f"{where}.{key}", table[key], f"unknown key; allowed: {', '.join(sorted(allowed))}")


def load_config(path: str | Path) -> PipelineConfig:
    """Parse and validate `path`; raise ConfigError listing every broken rule."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(
            f"configuration file {source} does not exist",
            "pass CONFIG=<file>; see config/example.toml and config/local.toml",
        )
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}", "fix the TOML syntax at that position") from exc
    return parse_config(data, source)


def parse_config(data: dict[str, Any], source: Path) -> PipelineConfig:
    """Validate already-parsed TOML data (split out so tests can feed dicts)."""
    r = _Reader(source, data)
    r.unknown_keys(data, "", {"project", "accounts", "training", "deploy", "state", "tags"})

    project = r.table("project")
    r.unknown_keys(project, "project", {"name_prefix", "region", "branch", "target", "approval_email"})
    prefix = r.string(project, "project", "name_prefix")
    if prefix and not NAME_PREFIX.match(prefix):
        r.fail(
            "project.name_prefix",
            prefix,
            "3-20 chars of lowercase letters, digits and hyphens, starting with a letter and not "
            "ending with a hyphen (it is used in S3 bucket, IAM role, CodeCommit and SageMaker names)",
        )
    region = r.string(project, "project", "region")
    if region and region not in KNOWN_REGIONS:
        r.fail("project.region", region, "not an AWS region name (e.g. eu-west-1)")
    branch = r.string(project, "project", "branch", "main")
    if not BRANCH.match(branch):
        r.fail("project.branch", branch, "not a valid Git branch name")
    target = r.string(project, "project", "target", "aws")
    if target not in ("aws", "emulator"):
        r.fail("project.target", target, 'must be "aws" or "emulator"')
    approval_email = r.string(project, "project", "approval_email", "")
    if approval_email and not EMAIL.match(approval_email):
        r.fail("project.approval_email", approval_email, "not an e-mail address")

    accounts: dict[str, Account] = {}
    accounts_table = r.table("accounts")
    r.unknown_keys(accounts_table, "accounts", set(ACCOUNT_KEYS))
    for key in ACCOUNT_KEYS:
        where = f"accounts.{key}"
        table = r.table(where)
        if not table:
            continue
        r.unknown_keys(table, where, {"id", "deploy_role"})
        account_id = r.string(table, where, "id")
        if account_id and not ACCOUNT_ID.match(account_id):
            r.fail(f"{where}.id", account_id, "must be exactly 12 digits, as a quoted string")
        role = r.string(table, where, "deploy_role")
        role_arn = ""
        if role.startswith("arn:"):
            match = IAM_ROLE_PATH_ARN.match(role)
            if not match:
                r.fail(f"{where}.deploy_role", role, "not an IAM role ARN")
            elif match.group(1) != account_id:
                r.fail(f"{where}.deploy_role", role, f"role ARN must be in account {account_id}")
            role_arn = role
        elif role:
            if not IAM_ROLE_NAME.match(role):
                r.fail(f"{where}.deploy_role", role, "not a valid IAM role name (1-64 chars of \\w+=,.@-)")
            role_arn = f"arn:{partition_of(region)}:iam::{account_id}:role/{role}"
        accounts[key] = Account(key=key, account_id=account_id, deploy_role_arn=role_arn)
    ids = [a.account_id for a in accounts.values() if a.account_id]
    if len(ids) == 3 and len(set(ids)) != 3:
        r.fail("accounts.*.id", ids, "the shared, training and production accounts must be three distinct accounts")

    training_table = r.table("training", required=False)
    r.unknown_keys(
        training_table,
        "training",
        {
            "instance_type",
            "instance_count",
            "volume_size_gb",
            "max_runtime_seconds",
            "xgboost_version",
            "hyperparameters",
        },
    )
    instance_type = r.string(training_table, "training", "instance_type", "ml.m5.large")
    if not INSTANCE_TYPE.match(instance_type):
        r.fail(
            "training.instance_type",
            instance_type,
            "not a SageMaker instance type (ml.<family>.<size>, e.g. ml.m5.large)",
        )
    xgb = r.string(training_table, "training", "xgboost_version", "1.7-1")
    if not re.match(r"^\d+\.\d+-\d+$", xgb):
        r.fail("training.xgboost_version", xgb, "must look like 1.7-1")
    hyper_raw = training_table.get("hyperparameters", {})
    hyper: dict[str, str] = {}
    if not isinstance(hyper_raw, dict):
        r.fail("training.hyperparameters", hyper_raw, "must be a table")
    else:
        for k, v in hyper_raw.items():
            if not HYPERPARAMETER_KEY.match(k):
                r.fail(f"training.hyperparameters.{k}", v, "invalid hyper-parameter name")
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                r.fail(f"training.hyperparameters.{k}", v, "must be a string or a number")
            else:
                hyper[k] = str(v)
    training = TrainingSettings(
        instance_type=instance_type,
        instance_count=r.integer(training_table, "training", "instance_count", 1, 1, 20),
        volume_size_gb=r.integer(training_table, "training", "volume_size_gb", 10, 1, 512),
        max_runtime_seconds=r.integer(training_table, "training", "max_runtime_seconds", 3600, 60, 432000),
        xgboost_version=xgb,
        hyperparameters=dict(sorted(hyper.items())),
    )

    deploy_table = r.table("deploy", required=False)
    r.unknown_keys(deploy_table, "deploy", {"endpoint_instance_type", "endpoint_instance_count"})
    endpoint_type = r.string(deploy_table, "deploy", "endpoint_instance_type", "ml.m5.large")
    if not INSTANCE_TYPE.match(endpoint_type):
        r.fail("deploy.endpoint_instance_type", endpoint_type, "not a SageMaker instance type (e.g. ml.m5.large)")
    deploy = DeploySettings(
        endpoint_instance_type=endpoint_type,
        endpoint_instance_count=r.integer(deploy_table, "deploy", "endpoint_instance_count", 1, 1, 10),
    )

    state_table = r.table("state", required=False)
    r.unknown_keys(state_table, "state", {"backend", "bucket", "key", "kms_key_id"})
    backend = r.string(state_table, "state", "backend", "local")
    state = StateSettings()
    if backend == "s3":
        bucket = r.string(state_table, "state", "bucket")
        if bucket and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
            r.fail("state.bucket", bucket, "not a valid S3 bucket name")
        state = StateSettings(
            backend="s3",
            bucket=bucket,
            key=r.string(state_table, "state", "key", f"{prefix}/terraform.tfstate"),
            kms_key_id=r.string(state_table, "state", "kms_key_id", "alias/aws/s3"),
        )
    elif backend != "local":
        r.fail("state.backend", backend, 'must be "local" or "s3"')
    if target == "emulator" and backend == "s3":
        r.fail("state.backend", backend, 'the emulator target keeps local state; use "local"')

    tags_raw = data.get("tags", {})
    tags: dict[str, str] = {}
    if not isinstance(tags_raw, dict):
        r.fail("tags", tags_raw, "must be a table of strings")
    else:
        for k, v in tags_raw.items():
            if not TAG_KEY.match(k) or k.lower().startswith("aws:"):
                r.fail(f"tags.{k}", v, "invalid tag key (1-128 chars, not starting with aws:)")
            elif not isinstance(v, str) or len(v) > 256:
                r.fail(f"tags.{k}", v, "tag values must be strings of at most 256 chars")
            else:
                tags[k] = v

    if r.errors:
        listing = "\n  - ".join(r.errors)
        raise ConfigError(
            f"{source}: {len(r.errors)} problem(s) in the configuration:\n  - {listing}",
            "edit the file; nothing was written",
        )
    return PipelineConfig(
        source=source,
        name_prefix=prefix,
        region=region,
        branch=branch,
        accounts=accounts,
        training=training,
        deploy=deploy,
        state=state,
        target=target,  # type: ignore[arg-type]
        approval_email=approval_email,
        tags=dict(sorted(tags.items())),
    )
