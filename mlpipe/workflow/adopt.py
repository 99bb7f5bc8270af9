"""Find AWS objects that carry a stack's deterministic names but no Terraform state knows, and import them.

Why: a killed ``apply``, or a change made in the console, leaves objects named exactly as the stack
names them. The next apply then fails with "already exists" (``AlreadyExists``, exit 14). Every
name the stack gives is in its manifest (``mlpipe-stack.json``), and the provider alias of each
resource says which account it lives in, so each object can be looked up there by name. What is
found becomes a Terraform 1.5+ ``import`` block: the next ``mlpipe plan`` shows it as an import
(scanned by the gate like any other change) and ``mlpipe apply`` adopts it instead of failing.

Import ids follow the AWS provider 5.100 documentation (the "Import" section of each resource).

KMS keys have no name: a key is found through its alias when the alias exists, otherwise among the
enabled keys tagged for the stack whose description matches. Only a single match is imported on
its own; several are reported for the user to pick one (``chosen_keys``), never guessed.

Every AWS call goes through ``Target.client`` (the deploy role of the resource's account), and
nothing here changes anything in AWS: it only reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from mlpipe.core.config import ProjectConfig
from mlpipe.core.hcl import quote
from mlpipe.core.names import FOUNDATION_STACK
from mlpipe.workflow.clients import Target

#: ``${aws_iam_role.production_deployer.id}``: a whole-value reference to another resource's attribute.
_REFERENCE = re.compile(r"^\$\{(aws_[a-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_-]*)\.([a-z_]+)\}$")
_PROVIDER = re.compile(r"^aws\.([A-Za-z_][A-Za-z0-9_-]*)$")
#: How the user picks one of several candidate keys (the CLI parses it with ``parse_key_choice``).
KEY_OPTION = "--key"


class Import(NamedTuple):
    """One object to import: the resource address, the provider's import id, and the account key."""

    address: str
    id: str
    account: str


class KeyCandidate(NamedTuple):
    """A KMS key that may be the one ``address`` created: tagged for the stack, same description."""

    address: str
    account: str
    key_id: str
    created: str
    description: str


class Skip(NamedTuple):
    """A resource that was not looked up or could not be decided, and why."""

    address: str
    reason: str


@dataclass
class Adoption:
    """What one stack has in AWS that its state lacks: imports, ambiguous KMS keys, and what was skipped."""

    stack: str
    imports: list[Import] = field(default_factory=list)
    candidates: list[KeyCandidate] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    #: account key -> account id, for the summary.
    accounts: dict[str, str] = field(default_factory=dict)
    #: address -> why an import was chosen when that is not obvious (a key matched by its tags).
    notes: dict[str, str] = field(default_factory=dict)


class _Skipped(Exception):
    """Raised by a lookup that cannot decide; becomes a ``Skip`` with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Which leftovers must stop a plan
# ---------------------------------------------------------------------------------------------

#: Types whose create fails (or, for a Lambda function, retries for minutes) when an object with the
#: name exists. The others are written with put/upsert calls (bucket settings and policies, role
#: policies, rules, targets, alarms, topics, objects): applying them over a leftover converges.
CREATE_FAILS_IF_EXISTS = frozenset(
    {
        "aws_iam_role", "aws_s3_bucket", "aws_kms_alias", "aws_lambda_function", "aws_cloudwatch_log_group",
        "aws_sfn_state_machine", "aws_codecommit_repository", "aws_codecommit_approval_rule_template",
        "aws_codepipeline",
    }
)  # fmt: skip
#: Types whose create next to a leftover succeeds and makes a second object. A KMS key has no name:
#: a key an interrupted CreateKey left (tagged for the stack, with its description) would stay
#: enabled, billed and granting what its policy grants, beside the new one.
CREATE_DUPLICATES_IF_EXISTS = frozenset({"aws_kms_key"})


def blocking_leftovers(adoption: Adoption) -> list[str]:
    """The leftovers a plan must not apply over, one line each: ``address = id (account key)``.

    Imports of the types above, and every KMS key that is a candidate (several enabled keys tagged
    for the stack with the resource's description: ``mlpipe adopt`` lists them and how to pick one).
    """
    refuse = CREATE_FAILS_IF_EXISTS | CREATE_DUPLICATES_IF_EXISTS
    lines = [
        f"{i.address} = {i.id} (account {i.account})" for i in adoption.imports if i.address.split(".", 1)[0] in refuse
    ]
    lines += [f"{c.address} = {c.key_id} (account {c.account}, one of several keys)" for c in adoption.candidates]
    return lines


# ---------------------------------------------------------------------------------------------
# What the manifest's names mean
# ---------------------------------------------------------------------------------------------

#: The attribute holding each type's name (what the object is found by).
_NAME_ATTRIBUTE = {
    "aws_iam_role": "name",
    "aws_s3_bucket": "bucket",
    "aws_kms_alias": "name",
    "aws_lambda_function": "function_name",
    "aws_sqs_queue": "name",
    "aws_cloudwatch_log_group": "name",
    "aws_sfn_state_machine": "name",
    "aws_codecommit_repository": "repository_name",
    "aws_codecommit_approval_rule_template": "name",
    "aws_codepipeline": "name",
    "aws_cloudwatch_event_rule": "name",
    "aws_sns_topic": "name",
    "aws_cloudwatch_metric_alarm": "alarm_name",
}
#: Types whose Terraform ``id`` is their name, so ``${type.x.id}`` resolves to the name.
_ID_IS_NAME = {
    "aws_iam_role",
    "aws_s3_bucket",
    "aws_kms_alias",
    "aws_lambda_function",
    "aws_cloudwatch_log_group",
    "aws_codecommit_repository",
    "aws_codecommit_approval_rule_template",
    "aws_codepipeline",
    "aws_cloudwatch_metric_alarm",
}
#: ARNs that follow from the name and the account (for ``${type.x.arn}`` references).
_ARN = {
    "aws_iam_role": "arn:{partition}:iam::{account}:role/{name}",
    "aws_s3_bucket": "arn:{partition}:s3:::{name}",
    "aws_lambda_function": "arn:{partition}:lambda:{region}:{account}:function:{name}",
    "aws_sqs_queue": "arn:{partition}:sqs:{region}:{account}:{name}",
    "aws_cloudwatch_log_group": "arn:{partition}:logs:{region}:{account}:log-group:{name}",
    "aws_sfn_state_machine": "arn:{partition}:states:{region}:{account}:stateMachine:{name}",
    "aws_codecommit_repository": "arn:{partition}:codecommit:{region}:{account}:{name}",
    "aws_codepipeline": "arn:{partition}:codepipeline:{region}:{account}:{name}",
    "aws_sns_topic": "arn:{partition}:sns:{region}:{account}:{name}",
}


def _notifies(answer: dict[str, Any]) -> bool:
    """Any notification configured (EventBridge delivery is an empty structure when on)."""
    kinds = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")
    return any(answer.get(kind) for kind in kinds) or "EventBridgeConfiguration" in answer


#: S3 bucket settings (import id = bucket name): the error code or test that says "not configured".
#: Unconfigured settings are not imported: the provider refuses to import what does not exist, and
#: creating a setting is an in-place write that never fails with "already exists".
_S3_SETTINGS: dict[str, tuple[str, str, Callable[[dict[str, Any]], bool]]] = {
    "aws_s3_bucket_policy": ("get_bucket_policy", "NoSuchBucketPolicy", lambda r: bool(r.get("Policy"))),
    "aws_s3_bucket_versioning": ("get_bucket_versioning", "", lambda r: bool(r.get("Status"))),
    "aws_s3_bucket_lifecycle_configuration": (
        "get_bucket_lifecycle_configuration",
        "NoSuchLifecycleConfiguration",
        lambda r: bool(r.get("Rules")),
    ),
    "aws_s3_bucket_logging": ("get_bucket_logging", "", lambda r: bool(r.get("LoggingEnabled"))),
    "aws_s3_bucket_notification": ("get_bucket_notification_configuration", "", _notifies),
    "aws_s3_bucket_ownership_controls": (
        "get_bucket_ownership_controls",
        "OwnershipControlsNotFoundError",
        lambda r: bool(r.get("OwnershipControls", {}).get("Rules")),
    ),
    "aws_s3_bucket_public_access_block": (
        "get_public_access_block",
        "NoSuchPublicAccessBlockConfiguration",
        lambda r: bool(r.get("PublicAccessBlockConfiguration")),
    ),
    "aws_s3_bucket_server_side_encryption_configuration": (
        "get_bucket_encryption",
        "ServerSideEncryptionConfigurationNotFoundError",
        lambda r: bool(r.get("ServerSideEncryptionConfiguration", {}).get("Rules")),
    ),
}


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _absent(exc: ClientError, *codes: str) -> bool:
    """A "does not exist" answer: one of the service's not-found codes, or a bare HTTP 404 (HEAD)."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _error_code(exc) in codes or _error_code(exc) in ("404", "NotFound") or status == 404


# ---------------------------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------------------------


class _Finder:
    """One stack's resources, the clients per account, and what has been read so far (read once)."""

    def __init__(
        self,
        config: ProjectConfig,
        stack: str,
        manifest: Mapping[str, Any],
        target: Target,
        chosen_keys: Mapping[str, str],
    ) -> None:
        self.config = config
        self.stack = stack
        self.target = target
        self.chosen_keys = dict(chosen_keys)
        self.resources: dict[str, dict[str, Any]] = {
            address: dict(attributes)
            for address, attributes in manifest.get("resources", {}).items()
            if not address.startswith("data.")
        }
        self.candidates: list[KeyCandidate] = []
        self.notes: dict[str, str] = {}
        self._clients: dict[tuple[str, str], Any] = {}
        self._aliases: dict[str, dict[str, str]] = {}
        self._keys: dict[str, list[dict[str, Any]]] = {}
        self._buckets: dict[tuple[str, str], bool] = {}

    # -- plumbing -------------------------------------------------------------------------------

    def client(self, account: str, service: str) -> Any:
        key = (account, service)
        if key not in self._clients:
            self._clients[key] = self.target.client(self.config, account, service)
        return self._clients[key]

    def account_of(self, address: str) -> str:
        provider = self.resources[address].get("provider")
        match = _PROVIDER.match(provider) if isinstance(provider, str) else None
        if match is None or match.group(1) not in self.config.accounts:
            raise _Skipped(f"provider {provider!r} names none of the configured accounts")
        return match.group(1)

    def value(self, address: str, attribute: str) -> str:
        """A string attribute of ``address``: a literal, or a reference resolved within the stack."""
        raw = self.resources[address].get(attribute)
        if raw is None:
            raise _Skipped(f"it has no `{attribute}`")
        if not isinstance(raw, str):
            raise _Skipped(f"`{attribute}` is not a string")
        if "${" not in raw:
            return raw
        match = _REFERENCE.match(raw)
        if match is None:
            raise _Skipped(f"`{attribute}` = {raw} is an expression mlpipe cannot evaluate")
        rtype, name, ref_attribute = match.groups()
        referenced = f"{rtype}.{name}"
        if referenced not in self.resources:
            raise _Skipped(f"`{attribute}` refers to {referenced}, which is not in this stack")
        return self.attribute_of(referenced, ref_attribute, raw)

    def attribute_of(self, address: str, attribute: str, shown: str) -> str:
        """What ``${address.attribute}`` will be, when it follows from names alone."""
        rtype = address.split(".", 1)[0]
        name_attribute = _NAME_ATTRIBUTE.get(rtype)
        if name_attribute is not None:
            if attribute == name_attribute or (attribute == "id" and rtype in _ID_IS_NAME):
                return self.value(address, name_attribute)
            if attribute == "id" and rtype == "aws_cloudwatch_event_rule":
                return self.event_rule_id(address)
            if attribute == "arn" and rtype in _ARN:
                account = self.account_of(address)
                return _ARN[rtype].format(
                    partition=self.config.partition,
                    region=self.config.region,
                    account=self.config.accounts[account].account_id,
                    name=self.value(address, name_attribute),
                )
        raise _Skipped(f"{shown} is only known once the object exists; mlpipe does not derive it")

    def optional(self, address: str, attribute: str) -> str | None:
        return self.value(address, attribute) if self.resources[address].get(attribute) is not None else None

    # -- shared reads ---------------------------------------------------------------------------

    def bucket_exists(self, account: str, bucket: str) -> bool:
        key = (account, bucket)
        if key not in self._buckets:
            try:
                self.client(account, "s3").head_bucket(Bucket=bucket)
                self._buckets[key] = True
            except ClientError as exc:
                if _absent(exc, "NoSuchBucket"):
                    self._buckets[key] = False
                elif _error_code(exc) in ("403", "AccessDenied"):
                    raise _Skipped(f"bucket {bucket} exists but this account cannot read it (another owner?)") from exc
                else:
                    raise
        return self._buckets[key]

    def aliases(self, account: str) -> dict[str, str]:
        """Alias name -> target key id, for every alias in the account (one listing per account)."""
        if account not in self._aliases:
            found: dict[str, str] = {}
            for page in self.client(account, "kms").get_paginator("list_aliases").paginate():
                for alias in page.get("Aliases", []):
                    if alias.get("TargetKeyId"):
                        found[alias["AliasName"]] = alias["TargetKeyId"]
            self._aliases[account] = found
        return self._aliases[account]

    def keys(self, account: str) -> list[dict[str, Any]]:
        """Metadata of every customer-managed key in the account (one listing per account)."""
        if account not in self._keys:
            kms = self.client(account, "kms")
            metadata: list[dict[str, Any]] = []
            for page in kms.get_paginator("list_keys").paginate():
                for key in page.get("Keys", []):
                    described = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
                    if described.get("KeyManager", "CUSTOMER") == "CUSTOMER":
                        metadata.append(described)
            self._keys[account] = metadata
        return self._keys[account]

    def key_tags(self, account: str, key_id: str) -> dict[str, str]:
        kms = self.client(account, "kms")
        tags: dict[str, str] = {}
        for page in kms.get_paginator("list_resource_tags").paginate(KeyId=key_id):
            tags.update({t["TagKey"]: t["TagValue"] for t in page.get("Tags", [])})
        return tags

    def event_bus(self, address: str) -> str | None:
        bus = self.optional(address, "event_bus_name")
        return None if bus in (None, "default") else bus

    def event_rule_id(self, address: str) -> str:
        name = self.value(address, "name")
        bus = self.event_bus(address)
        return f"{bus}/{name}" if bus else name

    def stack_aliases(self, account: str) -> dict[str, str]:
        """Alias address -> alias name, for the stack's aliases in ``account`` whose names resolve."""
        found: dict[str, str] = {}
        for address in self.resources:
            if not address.startswith("aws_kms_alias."):
                continue
            try:
                if self.account_of(address) == account:
                    found[address] = self.value(address, "name")
            except _Skipped:
                continue
        return found


Lookup = Callable[[_Finder, str, str], str | None]


def _iam_role(f: _Finder, address: str, account: str) -> str | None:
    name = f.value(address, "name")
    try:
        f.client(account, "iam").get_role(RoleName=name)
    except ClientError as exc:
        if _absent(exc, "NoSuchEntity"):
            return None
        raise
    return name


def _iam_role_policy(f: _Finder, address: str, account: str) -> str | None:
    role, name = f.value(address, "role"), f.value(address, "name")
    try:
        f.client(account, "iam").get_role_policy(RoleName=role, PolicyName=name)
    except ClientError as exc:
        if _absent(exc, "NoSuchEntity"):
            return None
        raise
    return f"{role}:{name}"


def _s3_bucket(f: _Finder, address: str, account: str) -> str | None:
    bucket = f.value(address, "bucket")
    return bucket if f.bucket_exists(account, bucket) else None


def _s3_setting(f: _Finder, address: str, account: str) -> str | None:
    """A bucket setting (import id = bucket name), imported only when its bucket has it configured."""
    rtype = address.split(".", 1)[0]
    bucket = f.value(address, "bucket")
    if not f.bucket_exists(account, bucket):
        return None
    if rtype not in _S3_SETTINGS:
        raise _Skipped(
            f"bucket {bucket} exists, but mlpipe cannot tell whether this setting is configured; "
            "apply writes it in place (no import needed)"
        )
    operation, not_configured, configured = _S3_SETTINGS[rtype]
    try:
        answer = getattr(f.client(account, "s3"), operation)(Bucket=bucket)
    except ClientError as exc:
        if not_configured and _error_code(exc) == not_configured:
            return None
        raise
    return bucket if configured(answer) else None


def _s3_object(f: _Finder, address: str, account: str) -> str | None:
    bucket, key = f.value(address, "bucket"), f.value(address, "key")
    if not f.bucket_exists(account, bucket):
        return None
    try:
        f.client(account, "s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _absent(exc, "NoSuchKey"):
            return None
        raise
    return f"{bucket}/{key}"


def _kms_alias(f: _Finder, address: str, account: str) -> str | None:
    name = f.value(address, "name")
    return name if name in f.aliases(account) else None


def _aliases_of_key(f: _Finder, key_address: str) -> list[str]:
    """The stack's alias resources whose ``target_key_id`` refers to ``key_address``."""
    found = []
    for address, attributes in f.resources.items():
        match = _REFERENCE.match(str(attributes.get("target_key_id", "")))
        if address.startswith("aws_kms_alias.") and match and f"{match.group(1)}.{match.group(2)}" == key_address:
            found.append(address)
    return sorted(found)


def _kms_key(f: _Finder, address: str, account: str) -> str | None:
    """Keys have no name: the stack's alias names the key; without one, tags and description narrow it down.

    Keys that another alias of the stack already targets belong to another resource; a key pending
    deletion cannot be imported. One match is imported, several are left to the user (or
    ``chosen_keys``). An existing alias always wins over a chosen key.
    """
    for alias_address in _aliases_of_key(f, address):
        alias_name = f.value(alias_address, "name")
        key_id = f.aliases(f.account_of(alias_address)).get(alias_name)
        if key_id is None:
            continue
        state = f.client(f.account_of(alias_address), "kms").describe_key(KeyId=key_id)["KeyMetadata"].get("KeyState")
        if state == "PendingDeletion":
            raise _Skipped(
                f"alias {alias_name} targets key {key_id}, which is pending deletion "
                "(cancel the deletion, or delete the alias so that apply creates a new key)"
            )
        f.notes[address] = f"the key alias {alias_name} points to"
        return str(key_id)

    if not isinstance(f.resources[address].get("description"), str):
        raise _Skipped("no alias of it exists, and without a description mlpipe cannot recognise the key")
    description = f.value(address, "description")
    claimed = {f.aliases(account)[name] for name in f.stack_aliases(account).values() if name in f.aliases(account)}
    matches = []
    for key in f.keys(account):
        if key.get("KeyState") != "Enabled" or key.get("Description") != description or key["KeyId"] in claimed:
            continue
        tags = f.key_tags(account, key["KeyId"])
        if tags.get("ManagedBy") != "mlpipe" or tags.get("Stack") != f.stack or tags.get("Account", account) != account:
            continue
        created = key.get("CreationDate")
        matches.append(
            KeyCandidate(
                address=address,
                account=account,
                key_id=str(key["KeyId"]),
                created=created.isoformat() if isinstance(created, datetime) else str(created or ""),
                description=description,
            )
        )
    matches.sort(key=lambda c: (c.created, c.key_id))

    chosen = f.chosen_keys.get(address)
    if chosen is not None:
        if chosen not in {c.key_id for c in matches}:
            raise _Skipped(f"the chosen key {chosen} is not an enabled key tagged for this stack with this description")
        f.notes[address] = "chosen by the user among the keys tagged for this stack"
        return chosen
    if len(matches) == 1:
        f.notes[address] = f"the only enabled key tagged for this stack with its description ({matches[0].created})"
        return matches[0].key_id
    f.candidates.extend(matches)
    return None


def _lambda_function(f: _Finder, address: str, account: str) -> str | None:
    name = f.value(address, "function_name")
    try:
        f.client(account, "lambda").get_function(FunctionName=name)
    except ClientError as exc:
        if _absent(exc, "ResourceNotFoundException"):
            return None
        raise
    return name


def _sqs_queue(f: _Finder, address: str, account: str) -> str | None:
    """Queues are imported by URL, which only the service knows (it differs between AWS and the emulator)."""
    name = f.value(address, "name")
    try:
        return str(f.client(account, "sqs").get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as exc:
        if _absent(exc, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return None
        raise


def _log_group(f: _Finder, address: str, account: str) -> str | None:
    name = f.value(address, "name")
    paginator = f.client(account, "logs").get_paginator("describe_log_groups")
    for page in paginator.paginate(logGroupNamePrefix=name):
        if any(group.get("logGroupName") == name for group in page.get("logGroups", [])):
            return name
    return None


def _state_machine(f: _Finder, address: str, account: str) -> str | None:
    arn = f.attribute_of(address, "arn", address)
    try:
        return str(f.client(account, "stepfunctions").describe_state_machine(stateMachineArn=arn)["stateMachineArn"])
    except ClientError as exc:
        if _absent(exc, "StateMachineDoesNotExist"):
            return None
        raise


def _codecommit_repository(f: _Finder, address: str, account: str) -> str | None:
    name = f.value(address, "repository_name")
    try:
        f.client(account, "codecommit").get_repository(repositoryName=name)
    except ClientError as exc:
        if _absent(exc, "RepositoryDoesNotExistException"):
            return None
        raise
    return name


def _approval_rule_template(f: _Finder, address: str, account: str) -> str | None:
    name = f.value(address, "name")
    try:
        f.client(account, "codecommit").get_approval_rule_template(approvalRuleTemplateName=name)
    except ClientError as exc:
        if _absent(exc, "ApprovalRuleTemplateDoesNotExistException"):
            return None
        raise
    return name


def _approval_rule_template_association(f: _Finder, address: str, account: str) -> str | None:
    """An association has no API of its own: it exists when the repository lists the template."""
    template, repository = f.value(address, "approval_rule_template_name"), f.value(address, "repository_name")
    codecommit = f.client(account, "codecommit")
    token: str | None = None
    while True:
        try:
            page = codecommit.list_associated_approval_rule_templates_for_repository(
                repositoryName=repository, **({"nextToken": token} if token else {})
            )
        except ClientError as exc:
            if _absent(exc, "RepositoryDoesNotExistException"):
                return None
            raise
        if template in page.get("approvalRuleTemplateNames", []):
            return f"{template},{repository}"
        token = page.get("nextToken")
        if not token:
            return None


def _codepipeline(f: _Finder, address: str, account: str) -> str | None:
    name = f.value(address, "name")
    try:
        f.client(account, "codepipeline").get_pipeline(name=name)
    except ClientError as exc:
        if _absent(exc, "PipelineNotFoundException"):
            return None
        raise
    return name


def _event_rule(f: _Finder, address: str, account: str) -> str | None:
    name, bus = f.value(address, "name"), f.event_bus(address)
    try:
        f.client(account, "events").describe_rule(Name=name, **({"EventBusName": bus} if bus else {}))
    except ClientError as exc:
        if _absent(exc, "ResourceNotFoundException"):
            return None
        raise
    return f.event_rule_id(address)


def _event_targets(f: _Finder, account: str, rule: str, bus: str | None) -> list[dict[str, Any]]:
    paginator = f.client(account, "events").get_paginator("list_targets_by_rule")
    pages = paginator.paginate(Rule=rule, **({"EventBusName": bus} if bus else {}))
    return [target for page in pages for target in page.get("Targets", [])]


def _event_target(f: _Finder, address: str, account: str) -> str | None:
    """The provider generates the target id when none is given: read it back, matching the target's ARN."""
    rule, bus = f.value(address, "rule"), f.event_bus(address)
    try:
        targets = _event_targets(f, account, rule, bus)
    except ClientError as exc:
        if _absent(exc, "ResourceNotFoundException"):
            return None
        raise
    wanted_id = f.optional(address, "target_id")
    if wanted_id is not None:
        matches = [t for t in targets if t.get("Id") == wanted_id]
    else:
        try:
            arn = f.value(address, "arn")
            matches = [t for t in targets if t.get("Arn") == arn]
        except _Skipped as unresolved:
            if len(targets) > 1:
                raise _Skipped(f"rule {rule} has {len(targets)} targets and {unresolved.reason}") from None
            matches = targets
    if not matches:
        return None
    if len(matches) > 1:
        ids = ", ".join(sorted(str(t.get("Id")) for t in matches))
        raise _Skipped(f"rule {rule} has several targets that fit ({ids}); import the right one by hand")
    prefix = f"{bus}/" if bus else ""
    return f"{prefix}{rule}/{matches[0]['Id']}"


def _sns_topic(f: _Finder, address: str, account: str) -> str | None:
    return _topic_arn(f, account, f.attribute_of(address, "arn", address))


def _sns_topic_policy(f: _Finder, address: str, account: str) -> str | None:
    return _topic_arn(f, account, f.value(address, "arn"))


def _topic_arn(f: _Finder, account: str, arn: str) -> str | None:
    try:
        f.client(account, "sns").get_topic_attributes(TopicArn=arn)
    except ClientError as exc:
        if _absent(exc, "NotFound", "NotFoundException"):
            return None
        raise
    return arn


def _metric_alarm(f: _Finder, address: str, account: str) -> str | None:
    name = f.value(address, "alarm_name")
    answer = f.client(account, "cloudwatch").describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm"])
    return name if any(a.get("AlarmName") == name for a in answer.get("MetricAlarms", [])) else None


#: Resource type -> lookup; the import id each returns is the one in the provider's "Import" section.
LOOKUPS: dict[str, Lookup] = {
    "aws_iam_role": _iam_role,  # name
    "aws_iam_role_policy": _iam_role_policy,  # role_name:policy_name
    "aws_s3_bucket": _s3_bucket,  # bucket
    "aws_s3_object": _s3_object,  # bucket/key
    "aws_kms_alias": _kms_alias,  # alias/name
    "aws_kms_key": _kms_key,  # key id
    "aws_lambda_function": _lambda_function,  # function name
    "aws_sqs_queue": _sqs_queue,  # queue URL
    "aws_cloudwatch_log_group": _log_group,  # name
    "aws_sfn_state_machine": _state_machine,  # ARN
    "aws_codecommit_repository": _codecommit_repository,  # repository name
    "aws_codecommit_approval_rule_template": _approval_rule_template,  # name
    "aws_codecommit_approval_rule_template_association": _approval_rule_template_association,  # template,repo
    "aws_codepipeline": _codepipeline,  # name
    "aws_cloudwatch_event_rule": _event_rule,  # name ([bus/]name)
    "aws_cloudwatch_event_target": _event_target,  # rule/target-id ([bus/]rule/target-id)
    "aws_sns_topic": _sns_topic,  # ARN
    "aws_sns_topic_policy": _sns_topic_policy,  # topic ARN
    "aws_cloudwatch_metric_alarm": _metric_alarm,  # alarm name
}


def _lookup_for(rtype: str) -> Lookup | None:
    if rtype in LOOKUPS:
        return LOOKUPS[rtype]
    if rtype.startswith("aws_s3_bucket_"):
        return _s3_setting  # bucket settings: import id = bucket name
    return None


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def adoptable(
    config: ProjectConfig,
    stack: str,
    manifest: Mapping[str, Any],
    in_state: set[str],
    target: Target,
    chosen_keys: Mapping[str, str] | None = None,
) -> Adoption:
    """What of ``stack`` exists in AWS but not in ``in_state`` (``terraform state list``), with import ids.

    ``chosen_keys`` (address -> key id) settles KMS keys with several candidates; the key must be
    one of the candidates. Objects that do not exist are simply not listed. A lookup that fails
    (access denied, an unresolvable reference) is listed in ``skipped`` rather than guessed.
    """
    finder = _Finder(config, stack, manifest, target, chosen_keys or {})
    adoption = Adoption(stack=stack, accounts={k: a.account_id for k, a in config.accounts.items()})
    for address in sorted(finder.resources):
        if address in in_state:
            continue
        rtype = address.split(".", 1)[0]
        attributes = finder.resources[address]
        lookup = _lookup_for(rtype)
        try:
            if "count" in attributes or "for_each" in attributes:
                raise _Skipped("it has count/for_each: import its instances by hand")
            if lookup is None:
                raise _Skipped(f"mlpipe cannot look up {rtype} objects by name")
            account = finder.account_of(address)
            import_id = lookup(finder, address, account)
        except _Skipped as skipped:
            adoption.skipped.append(Skip(address, skipped.reason))
            continue
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            adoption.skipped.append(Skip(address, f"lookup failed: {_error_code(exc)} {message}".rstrip()))
            continue
        if import_id is not None:
            adoption.imports.append(Import(address, import_id, account))
    adoption.candidates = sorted(finder.candidates)
    adoption.notes = {a: n for a, n in finder.notes.items() if any(i.address == a for i in adoption.imports)}
    return adoption


def render_imports(adoption: Adoption, now: datetime | None = None) -> str:
    """The stack's ``imports.tf``: one ``import`` block per object, sorted, already ``terraform fmt``-clean.

    Each block names the resource's provider alias (the account it was found in): an import block
    otherwise uses the default ``aws`` provider, which these stacks do not configure.
    """
    when = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"# Written by `mlpipe adopt` at {when} for stack {adoption.stack}.",
        "# These objects exist in AWS under the names this stack gives them, but its Terraform state",
        "# does not know them (an interrupted apply, or a change made by hand). The next `mlpipe plan`",
        "# shows them as imports, checked by the gate like any change; `mlpipe apply` adopts them.",
    ]
    if not adoption.imports:
        lines.append("# Nothing to import.")
    for item in sorted(adoption.imports):
        lines += [
            "",
            "import {",
            f"  to       = {item.address}",
            f"  provider = aws.{item.account}",
            f"  id       = {quote(item.id)}",
            "}",
        ]
    return "\n".join(lines) + "\n"


def pick_key_command(stack: str, address: str, key_id: str = "<key-id>") -> str:
    """The command that imports one chosen candidate key (the CLI passes it on as ``chosen_keys``)."""
    selection = "" if stack == FOUNDATION_STACK else f" --pipeline {stack}"
    return f"mlpipe adopt{selection} {KEY_OPTION} {address}={key_id}"


def parse_key_choice(text: str) -> tuple[str, str]:
    """``ADDRESS=KEY_ID`` (the ``--key`` option) -> (address, key id); ValueError when malformed."""
    address, sep, key_id = text.partition("=")
    if not sep or not address.startswith("aws_kms_key.") or not key_id.strip():
        raise ValueError(f"{text!r} is not aws_kms_key.<name>=<key-id>")
    return address.strip(), key_id.strip()


def describe(adoption: Adoption) -> str:
    """A summary for the terminal: each import (address, id, account), then keys to pick, then skips."""

    def account(key: str) -> str:
        number = adoption.accounts.get(key)
        return f"{key} ({number})" if number else key

    out = [f"{adoption.stack}: {len(adoption.imports)} object(s) to import"]
    width = max((len(i.address) for i in adoption.imports), default=0)
    for item in sorted(adoption.imports):
        note = adoption.notes.get(item.address)
        line = f"  {item.address:<{width}}  {item.id}  in {account(item.account)}"
        out.append(f"{line}  [{note}]" if note else line)
    by_address: dict[str, list[KeyCandidate]] = {}
    for candidate in adoption.candidates:
        by_address.setdefault(candidate.address, []).append(candidate)
    for address, candidates in sorted(by_address.items()):
        out.append(
            f"{adoption.stack}: {address} may be any of {len(candidates)} keys in {account(candidates[0].account)} "
            f"(enabled, tagged for this stack, description {candidates[0].description!r}); none imported:"
        )
        out += [f"    {c.key_id}  created {c.created}" for c in candidates]
        out.append(f"  pick one: {pick_key_command(adoption.stack, address)}")
    for skip in sorted(adoption.skipped):
        out.append(f"{adoption.stack}: skipped {skip.address}: {skip.reason}")
    return "\n".join(out) + "\n"
