"""What one synthesis deploys, as ARNs: every stack's resources, accounts and attached policy documents.

Why a module of its own: the access proof must judge the very documents and names Terraform will apply, so every
ARN is derived here from the synthesized manifests (``mlpipe-stack.json``) and the configuration, and nowhere else.
Terraform references inside documents (``${aws_iam_role.x.arn}``, ``${aws_s3_bucket.x.arn}/data/*``, the
foundation's remote-state outputs) are replaced by those ARNs. What cannot be derived is never guessed: a reference
that does not resolve stays in the document as ``${...}``, which the evaluator treats as unknown (UNDECIDABLE, never
an allow), and a name a call needs raises ``Unresolvable``.

KMS key ARNs only exist after apply: each key gets a stable placeholder in its own account and region,
``arn:<partition>:kms:<region>:<account>:key/<stack>-<resource name>``, used alike in calls and in documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlpipe.core.config import ProjectConfig
from mlpipe.core.names import FOUNDATION_STACK
from mlpipe.gate.access.evaluator import Document, PolicySet

DOCUMENT_MARK = "@document:"
REFERENCE = re.compile(r"\$\{([^{}]*)\}")
_ADDRESS = re.compile(r"(?:data\.)?[a-z0-9_]+\.[A-Za-z0-9_-]+")
# Where the foundation's outputs come from when its manifest does not list them (see main.py's FoundationStack).
FOUNDATION_OUTPUT_SOURCES = {
    "access_log_bucket": "${aws_s3_bucket.shared_access_logs.bucket}",
    "training_logs_key_arn": "${aws_kms_key.training_logs.arn}",
    "production_logs_key_arn": "${aws_kms_key.production_logs.arn}",
}
# Resource types that attach permissions this proof does not read -> the attribute naming what they attach to; that
# target's calls become undecidable.
_UNMODELLED_ATTACHMENTS = {
    "aws_iam_role_policy_attachment": "role",
    "aws_iam_policy_attachment": "roles",
    "aws_lambda_permission": "function_name",
    "aws_kms_grant": "key_id",
}


class Unresolvable(Exception):
    """A name or reference the manifests cannot give: whatever needs it is UNDECIDABLE."""


@dataclass(frozen=True)
class Resource:
    """One resource or data source of one stack, with the account its provider acts in."""

    stack: str
    address: str
    attributes: Mapping[str, Any]
    account_key: str
    account_id: str

    @property
    def type(self) -> str:
        return self.address.removeprefix("data.").split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.address.rsplit(".", 1)[1]


@dataclass(frozen=True)
class AttachedDocument:
    """A policy document as evaluated: references resolved, and where it is attached (for reports and fixes)."""

    name: str
    stack: str
    address: str
    attribute: str
    target: str  # the role, bucket or key ARN it governs
    policy: Mapping[str, Any]
    unresolved: tuple[str, ...] = ()


@dataclass
class Inventory:
    """The manifests of one synthesis, read once: resources, ARNs, documents and the resulting PolicySet."""

    config: ProjectConfig
    manifests: Mapping[str, Mapping[str, Any]]
    documents: dict[str, AttachedDocument] = field(default_factory=dict)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (stack, address, what is not modelled)
    labels: dict[str, str] = field(default_factory=dict)  # ARN -> short human name
    _identity: dict[str, list[Document]] = field(default_factory=dict)
    _resource: dict[str, Document] = field(default_factory=dict)
    _buckets: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self._accounts = {key: account.account_id for key, account in self.config.accounts.items()}
        self._attach_documents()

    # --- resources and attributes -----------------------------------------------------------------------------------

    def resources(self, stack: str) -> Iterator[Resource]:
        for address in self.manifests.get(stack, {}).get("resources", {}):
            yield self.resource(stack, address)

    def resource(self, stack: str, address: str) -> Resource:
        manifest = self.manifests.get(stack)
        if manifest is None:
            raise Unresolvable(f"no manifest for stack {stack!r}")
        attributes = manifest.get("resources", {}).get(address)
        if attributes is None:
            raise Unresolvable(f"stack {stack} has no {address}")
        provider = str(attributes.get("provider", ""))
        key = provider.removeprefix("aws.") if provider.startswith("aws.") else ""
        return Resource(stack, address, attributes, key, self._accounts.get(key, ""))

    def find(self, stack: str, rtype: str, attribute: str, value: str) -> Resource:
        """The one resource of ``rtype`` whose ``attribute`` resolves to ``value``."""
        hits = [
            r for r in self.resources(stack) if r.address.startswith(f"{rtype}.") and self._plain(r, attribute) == value
        ]
        if len(hits) != 1:
            raise Unresolvable(f"stack {stack} has {len(hits)} {rtype} with {attribute} = {value!r} (expected 1)")
        return hits[0]

    def _plain(self, resource: Resource, attribute: str) -> str | None:
        value = resource.attributes.get(attribute)
        if not isinstance(value, str):
            return None
        try:
            return self.resolve(resource.stack, value)
        except Unresolvable:
            return None

    def attribute(self, resource: Resource, attribute: str) -> str:
        """The value of ``resource.attribute`` after apply, as far as it is known before apply."""
        r, region, partition = resource, self.config.region, self.config.partition
        if not r.account_id and r.type not in ("terraform_remote_state",):
            raise Unresolvable(f"{r.stack}: {r.address} has no provider of a configured account")

        def given(name: str) -> str:
            value = r.attributes.get(name)
            if not isinstance(value, str) or not value:
                raise Unresolvable(f"{r.stack}: {r.address}.{name} is not a literal name (needed for .{attribute})")
            return self.resolve(r.stack, value)

        regional = f"arn:{partition}:{{service}}:{region}:{r.account_id}:"
        computed: dict[tuple[str, str], Any] = {
            ("aws_iam_role", "arn"): lambda: f"arn:{partition}:iam::{r.account_id}:role{self._path(r)}{given('name')}",
            ("aws_iam_role", "id"): lambda: given("name"),
            ("aws_iam_role", "name"): lambda: given("name"),
            ("aws_s3_bucket", "arn"): lambda: f"arn:{partition}:s3:::{given('bucket')}",
            ("aws_s3_bucket", "id"): lambda: given("bucket"),
            ("aws_s3_bucket", "bucket"): lambda: given("bucket"),
            ("aws_kms_key", "arn"): lambda: regional.format(service="kms") + f"key/{r.stack}-{r.name}",
            ("aws_kms_key", "key_id"): lambda: f"{r.stack}-{r.name}",
            ("aws_kms_key", "id"): lambda: f"{r.stack}-{r.name}",
            ("aws_kms_alias", "arn"): lambda: regional.format(service="kms") + given("name"),
            ("aws_kms_alias", "name"): lambda: given("name"),
            ("aws_sfn_state_machine", "arn"): lambda: (
                regional.format(service="states") + f"stateMachine:{given('name')}"
            ),
            ("aws_sfn_state_machine", "id"): lambda: (
                regional.format(service="states") + f"stateMachine:{given('name')}"
            ),
            ("aws_sfn_state_machine", "name"): lambda: given("name"),
            ("aws_lambda_function", "arn"): lambda: (
                regional.format(service="lambda") + f"function:{given('function_name')}"
            ),
            ("aws_lambda_function", "function_name"): lambda: given("function_name"),
            ("aws_codecommit_repository", "arn"): lambda: (
                regional.format(service="codecommit") + given("repository_name")
            ),
            ("aws_codecommit_repository", "repository_name"): lambda: given("repository_name"),
            ("aws_codepipeline", "arn"): lambda: regional.format(service="codepipeline") + given("name"),
            ("aws_codepipeline", "name"): lambda: given("name"),
            ("aws_cloudwatch_log_group", "arn"): lambda: regional.format(service="logs") + f"log-group:{given('name')}",
            ("aws_cloudwatch_log_group", "name"): lambda: given("name"),
            ("aws_sqs_queue", "arn"): lambda: regional.format(service="sqs") + given("name"),
            ("aws_sqs_queue", "url"): lambda: f"https://sqs.{region}.amazonaws.com/{r.account_id}/{given('name')}",
            ("aws_sns_topic", "arn"): lambda: regional.format(service="sns") + given("name"),
            ("aws_sns_topic", "id"): lambda: regional.format(service="sns") + given("name"),
            ("aws_cloudwatch_event_rule", "arn"): lambda: regional.format(service="events") + f"rule/{given('name')}",
            ("aws_cloudwatch_event_rule", "name"): lambda: given("name"),
            ("aws_cloudwatch_metric_alarm", "arn"): lambda: (
                regional.format(service="cloudwatch") + f"alarm:{given('alarm_name')}"
            ),
            ("aws_cloudwatch_metric_alarm", "alarm_name"): lambda: given("alarm_name"),
        }
        derive = computed.get((r.type, attribute))
        if derive is None:
            raise Unresolvable(f"{r.stack}: the access proof cannot know {r.address}.{attribute} before apply")
        return str(derive())

    @staticmethod
    def _path(role: Resource) -> str:
        path = role.attributes.get("path", "/")
        if not isinstance(path, str) or not path.startswith("/") or not path.endswith("/") or "${" in path:
            raise Unresolvable(f"{role.stack}: {role.address}.path {path!r} is not a literal IAM path")
        return path

    # --- references -------------------------------------------------------------------------------------------------

    def resolve(self, stack: str, text: str) -> str:
        """``text`` with every Terraform reference replaced; raises ``Unresolvable`` for the first that is not."""
        return REFERENCE.sub(lambda m: self._reference(stack, m.group(1).strip()), text)

    def resolve_lenient(self, stack: str, text: str) -> tuple[str, list[str]]:
        """``text`` with what resolves replaced and the rest left as ``${...}``, plus why each was left."""
        left: list[str] = []

        def one(match: re.Match[str]) -> str:
            try:
                return self._reference(stack, match.group(1).strip())
            except Unresolvable as exc:
                left.append(str(exc))
                return match.group(0)

        return REFERENCE.sub(one, text), left

    def referenced(self, stack: str, value: Any) -> Resource:
        """The resource a value such as ``${aws_kms_key.x.arn}`` points at."""
        match = REFERENCE.fullmatch(value) if isinstance(value, str) else None
        address = match.group(1).strip().rsplit(".", 1)[0] if match else ""
        if not match or not _ADDRESS.fullmatch(address):
            raise Unresolvable(f"{stack}: {value!r} is not a reference to a resource")
        return self.resource(stack, address)

    def _reference(self, stack: str, expression: str) -> str:
        parts = expression.split(".")
        if expression.startswith("data.terraform_remote_state.") and len(parts) == 5 and parts[3] == "outputs":
            return self.foundation_output(parts[4])
        if parts[0] == "local" and len(parts) == 2:
            value = self.manifests.get(stack, {}).get("literals", {}).get(parts[1])
            if isinstance(value, str):
                return value
            raise Unresolvable(f"{stack}: local.{parts[1]} is not a string literal")
        if len(parts) == 3 and _ADDRESS.fullmatch(f"{parts[0]}.{parts[1]}"):
            return self.attribute(self.resource(stack, f"{parts[0]}.{parts[1]}"), parts[2])
        raise Unresolvable(f"{stack}: cannot resolve ${{{expression}}} before apply")

    def foundation_output(self, name: str) -> str:
        """A foundation output, from its manifest's ``outputs`` if present, else from the known sources."""
        manifest = self.manifests.get(FOUNDATION_STACK)
        if manifest is None:
            raise Unresolvable(f"no manifest for stack {FOUNDATION_STACK!r} (needed for its output {name})")
        source = (manifest.get("outputs") or {}).get(name, FOUNDATION_OUTPUT_SOURCES.get(name))
        if not isinstance(source, str):
            raise Unresolvable(f"the foundation has no output {name!r}")
        return self.resolve(FOUNDATION_STACK, source)

    # --- documents --------------------------------------------------------------------------------------------------

    def _document_name(self, resource: Resource, attribute: str) -> str | None:
        """The recorded document an attribute holds. Identical documents share one expression in the manifest, so
        it may name a twin (e.g. the other cross-account role's trust): prefer the twin named after this resource.
        """
        value = resource.attributes.get(attribute)
        if not isinstance(value, str) or not value.startswith(DOCUMENT_MARK):
            return None
        name = value.removeprefix(DOCUMENT_MARK)
        policies = self.manifests[resource.stack].get("policies", {})
        owner = self._plain(resource, "name")
        if resource.type == "aws_iam_role_policy":
            role = self._plain(resource, "role")
            owner = f"{role}/{owner}" if role and owner else None
        if owner and name in policies and f":{owner}/" not in f"{name}/":
            content = json.dumps(policies[name], sort_keys=True)
            twins = [n for n, doc in policies.items() if json.dumps(doc, sort_keys=True) == content]
            name = next((n for n in twins if n.split(":", 1)[-1].startswith(f"{owner}/")), name)
        return name

    def _attach(self, resource: Resource, attribute: str, target: str, identity: bool) -> None:
        name = self._document_name(resource, attribute)
        raw = self.manifests[resource.stack].get("policies", {}).get(name) if name else None
        if name is None or raw is None:
            if resource.attributes.get(attribute) not in (None, "", []):
                self._opaque(resource, attribute, target, identity, "holds a policy that is not a recorded document")
            return
        label = name if name not in self.documents else f"{resource.stack}/{name}"
        policy, unresolved = self._resolve_document(resource.stack, raw)
        self.documents[label] = AttachedDocument(
            label, resource.stack, resource.address, attribute, target, policy, tuple(unresolved)
        )
        self._register(Document(label, policy), target, identity)

    def _register(self, document: Document, target: str, identity: bool) -> None:
        if identity:
            self._identity.setdefault(target, []).append(document)
        elif target in self._resource:
            # Two resource policies for one resource: AWS keeps one; which one is unknown before apply.
            self._resource[target] = Document(f"{target} (several resource policies)", {"Statement": "ambiguous"})
        else:
            self._resource[target] = document

    def _opaque(self, resource: Resource, attribute: str, target: str, identity: bool, why: str) -> None:
        """A policy the proof cannot read: registered as a document the evaluator cannot decide, so every call it
        could affect is UNDECIDABLE rather than decided without it."""
        what = f"{resource.address}.{attribute} {why}"
        self.problems.append((resource.stack, resource.address, what))
        self._register(Document(f"{resource.stack}:{what}", {"Statement": "not readable"}), target, identity)

    def _resolve_document(self, stack: str, node: Any) -> tuple[Any, list[str]]:
        left: list[str] = []

        def walk(value: Any) -> Any:
            if isinstance(value, str):
                text, why = self.resolve_lenient(stack, value)
                left.extend(why)
                return text
            if isinstance(value, list):
                return [walk(v) for v in value]
            if isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            return value

        return walk(node), left

    def _attach_documents(self) -> None:
        for stack in self.manifests:
            for resource in self.resources(stack):
                try:
                    self._attach_resource(resource)
                except Unresolvable as exc:
                    self.problems.append((stack, resource.address, f"cannot tell what it governs: {exc}"))

    def _attach_resource(self, r: Resource) -> None:
        """Register the documents a resource carries under the ARN they govern, and a label for that ARN."""
        if r.type == "aws_iam_role":
            arn = self.attribute(r, "arn")
            self.labels[arn] = self.attribute(r, "name")
            self._attach(r, "assume_role_policy", arn, identity=False)
            for attribute in ("inline_policy", "managed_policy_arns"):
                if r.attributes.get(attribute):
                    self._opaque(r, attribute, arn, True, "attaches policies the access proof does not read")
        elif r.type == "aws_iam_role_policy":
            role_name = self.resolve(r.stack, str(r.attributes.get("role", "")))
            role = self.find(r.stack, "aws_iam_role", "name", role_name)
            self._attach(r, "policy", self.attribute(role, "arn"), identity=True)
        elif r.type == "aws_s3_bucket_policy":
            bucket = self.resolve(r.stack, str(r.attributes.get("bucket", "")))
            self._attach(r, "policy", f"arn:{self.config.partition}:s3:::{bucket}", identity=False)
        elif r.type == "aws_kms_key":
            arn = self.attribute(r, "arn")
            if "policy" in r.attributes:
                self._attach(r, "policy", arn, identity=False)
            else:  # AWS's default key policy: the owning account delegates everything to IAM
                root = f"arn:{self.config.partition}:iam::{r.account_id}:root"
                statement = {"Sid": "DefaultKeyPolicy", "Effect": "Allow", "Principal": {"AWS": root}}
                document = {"Version": "2012-10-17", "Statement": [{**statement, "Action": "kms:*", "Resource": "*"}]}
                self._register(Document(f"{r.stack}:{r.address} (default key policy)", document), arn, False)
        elif r.type == "aws_kms_alias":
            key = self.referenced(r.stack, r.attributes.get("target_key_id"))
            self.labels[self.attribute(key, "arn")] = self.attribute(r, "name")
        elif r.type == "aws_s3_bucket":
            self.labels[self.attribute(r, "arn")] = self.attribute(r, "bucket")
        elif r.type == "aws_sns_topic_policy":
            self._attach(r, "policy", self.resolve(r.stack, str(r.attributes.get("arn", ""))), identity=False)
        elif r.type == "aws_sqs_queue_policy":
            queue = self.referenced(r.stack, r.attributes.get("queue_url"))
            self._attach(r, "policy", self.attribute(queue, "arn"), identity=False)
        elif r.type in ("aws_sqs_queue", "aws_sns_topic", "aws_lambda_function") and r.attributes.get("policy"):
            self._opaque(r, "policy", self.attribute(r, "arn"), False, "is a resource policy the proof does not read")
        elif r.type in _UNMODELLED_ATTACHMENTS:
            attribute = _UNMODELLED_ATTACHMENTS[r.type]
            self.problems.append((r.stack, r.address, f"{r.type} attaches permissions the access proof does not read"))
            self._opaque_target(r, attribute)

    def _opaque_target(self, r: Resource, attribute: str) -> None:
        value = r.attributes.get(attribute)
        try:
            target = self.referenced(r.stack, value)
        except Unresolvable:
            return  # already recorded as a problem: the gate fails on it
        document = Document(f"{r.stack}:{r.address} (not read)", {"Statement": "not readable"})
        self._register(document, self.attribute(target, "arn"), identity=target.type == "aws_iam_role")

    def policy_set(self, extra_identity: Mapping[str, list[Document]] | None = None) -> PolicySet:
        identity = {arn: list(docs) for arn, docs in self._identity.items()}
        for arn, docs in (extra_identity or {}).items():
            identity.setdefault(arn, []).extend(docs)
        return PolicySet(identity, dict(self._resource))

    def roles(self) -> list[tuple[str, str]]:
        """(stack, role ARN) of every IAM role in the manifests."""
        out = []
        for stack in self.manifests:
            for r in self.resources(stack):
                if r.type == "aws_iam_role" and not r.address.startswith("data."):
                    try:
                        out.append((stack, self.attribute(r, "arn")))
                    except Unresolvable:
                        continue
        return out

    def bucket_account(self, bucket: str) -> str | None:
        """The account that owns a bucket of the manifests (S3 ARNs carry none)."""
        if self._buckets is None:
            self._buckets = {}
            for stack in self.manifests:
                for r in self.resources(stack):
                    name = self._plain(r, "bucket") if r.address.startswith("aws_s3_bucket.") else None
                    if name:
                        self._buckets[name] = r.account_id
        return self._buckets.get(bucket)

    def document_origin(self, name: str) -> AttachedDocument | None:
        return self.documents.get(name)
