"""Local-only fixes to moto 5.2.5 so the AWS provider 5.100.0 can apply the pipeline against it.

Everything here runs inside the emulator child process only (``python -m mlpipe.emulator.process serve``);
nothing touches real AWS. Each patch is the smallest change that makes one resource type behave
like AWS for what Terraform reads and writes, and each function's docstring says which failure it
fixes. ``apply_patches()`` installs all of them once; it is idempotent.

Summary (details in docs/emulator-notes.md):

* Step Functions: ``ValidateStateMachineDefinition`` (provider >= 5.67 calls it before create)
  and ``ListStateMachineVersions`` (read after create).
* CodeCommit: dates as epoch numbers, tags API, ``UpdateRepositoryDescription``, approval rule
  templates and their repository associations.
* CodePipeline: ``created``/``updated`` metadata as epoch numbers.
* Lambda: ``DeadLetterConfig`` kept and returned (moto drops it: perpetual diff).
* S3: ``EventBridgeConfiguration`` returned by ``GetBucketNotificationConfiguration``.
* S3: deleting a key whose history holds a delete marker no longer crashes (force_destroy).
* S3: a bucket policy evaluator with real condition operators, fed with the request's context
  (SSE headers, transport), replacing moto's "only StringEquals, everything else is true".
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlpipe.emulator.codecommit_files import patch_codecommit_files

_APPLIED = False
_LOCK = threading.Lock()

#: Header a local test may send to make a request count as plain HTTP for ``aws:SecureTransport``.
#: The emulator only listens on loopback over HTTP, so every other request counts as secure.
INSECURE_TRANSPORT_HEADER = "x-mlpipe-emulator-insecure-transport"


def apply_patches() -> None:
    """Install every patch into the imported moto modules (once per process)."""
    global _APPLIED
    with _LOCK:
        if _APPLIED:
            return
        patch_stepfunctions_validate()
        patch_stepfunctions_list_versions()
        patch_codecommit_dates()
        patch_codecommit_tags_and_description()
        patch_codecommit_approval_rule_templates()
        patch_codecommit_files()
        patch_s3_logging_target_policy()
        patch_s3_no_access_log_delivery()
        patch_codepipeline_timestamps()
        patch_s3_bucket_policy_conditions()
        patch_s3_eventbridge_notification()
        patch_s3_delete_marker_dispose()
        patch_lambda_dead_letter_config()
        _APPLIED = True


# --------------------------------------------------------------------------------------------
# Step Functions
# --------------------------------------------------------------------------------------------


def patch_stepfunctions_validate() -> None:
    """Answer ``ValidateStateMachineDefinition``.

    Why: the AWS provider (>= 5.67) validates every definition before ``CreateStateMachine`` and
    moto 5.2.5 does not implement the action (HTTP 500, retried until the apply fails). We do a
    structural check only (valid JSON object with ``StartAt`` naming one of ``States``) and
    answer ``OK`` or ``FAIL`` with a diagnostic, the same shape AWS uses.
    """
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def validate_state_machine_definition(self: Any) -> ActionResult:
        definition = self._get_param("definition") or ""
        diagnostics = [
            {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": msg, "location": "/"}
            for msg in _asl_problems(definition)
        ]
        return ActionResult({"result": "FAIL" if diagnostics else "OK", "diagnostics": diagnostics, "truncated": False})

    StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition  # type: ignore[attr-defined]


def patch_stepfunctions_list_versions() -> None:
    """Implement ``ListStateMachineVersions`` from moto's own version records.

    Why: the provider lists versions when it reads ``aws_sfn_state_machine`` (to fill
    ``state_machine_version_arn``); moto 5.2.5 keeps versions (``publish=true``) but does not
    implement the list call, so every create/refresh fails with HTTP 500.
    """
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def list_state_machine_versions(self: Any) -> ActionResult:
        machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        versions = sorted(getattr(machine, "versions", {}).values(), key=lambda v: -v.version)
        return ActionResult(
            {
                "stateMachineVersions": [
                    {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions
                ]
            }
        )

    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions  # type: ignore[attr-defined]


def _asl_problems(definition: str) -> list[str]:
    """Return the structural problems of an ASL document (empty when it looks runnable)."""
    try:
        doc = json.loads(definition)
    except ValueError as exc:
        return [f"definition is not valid JSON: {exc}"]
    if not isinstance(doc, dict):
        return ["definition must be a JSON object"]
    states = doc.get("States")
    if not isinstance(states, dict) or not states:
        return ["definition has no States"]
    if doc.get("StartAt") not in states:
        return [f"StartAt {doc.get('StartAt')!r} is not one of the States"]
    return []


# --------------------------------------------------------------------------------------------
# CodeCommit
# --------------------------------------------------------------------------------------------


def patch_codecommit_dates() -> None:
    """Return repository ``creationDate``/``lastModifiedDate`` as epoch seconds.

    Why: the API model types them as timestamps, which the JSON protocol sends as numbers; moto
    sends ISO strings and the Go SDK in the provider fails to deserialize ``GetRepository``.
    """
    from moto.codecommit.models import CodeCommit

    original_init = CodeCommit.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        now = time.time()
        self.repository_metadata["creationDate"] = now
        self.repository_metadata["lastModifiedDate"] = now

    CodeCommit.__init__ = __init__  # type: ignore[method-assign]


def _codecommit_error(kind: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(kind, message)


def _tag_store(backend: Any) -> dict[str, dict[str, str]]:
    """Per account/region tags, kept on the moto backend object so a reset clears them too."""
    store = getattr(backend, "mlpipe_tags", None)
    if store is None:
        store = {}
        backend.mlpipe_tags = store
    return store


def _repository_by_arn(backend: Any, arn: str) -> Any:
    for repo in backend.repositories.values():
        if repo.repository_metadata["Arn"] == arn:
            return repo
    raise _codecommit_error("RepositoryDoesNotExistException", f"{arn} does not exist")


def patch_codecommit_tags_and_description() -> None:
    """Add ``ListTagsForResource``/``TagResource``/``UntagResource``, ``ListRepositories`` and
    ``UpdateRepositoryDescription``.

    Why: the provider reads tags after every create/refresh of ``aws_codecommit_repository`` and
    calls ``UpdateRepositoryDescription`` when the description changes; ``ListRepositories`` is
    what tools (and our tests) use to see an account's repositories. moto 5.2.5 implements none
    of them (HTTP 500). ``CreateRepository`` also drops its ``tags`` and ``kmsKeyId`` arguments, so it is
    wrapped to record them, and ``DeleteRepository`` to forget them.
    """
    from moto.codecommit.responses import CodeCommitResponse

    original_create = CodeCommitResponse.create_repository
    original_delete = CodeCommitResponse.delete_repository

    def create_repository(self: Any) -> str:
        body = original_create(self)
        metadata = json.loads(body)["repositoryMetadata"]
        arn = metadata["Arn"]
        kms_key_id = self._get_param("kmsKeyId")
        if kms_key_id:  # moto drops it; the provider reads it back and would plan to set it again
            self.codecommit_backend.repositories[metadata["repositoryName"]].repository_metadata["kmsKeyId"] = (
                kms_key_id
            )
            body = json.dumps({"repositoryMetadata": {**metadata, "kmsKeyId": kms_key_id}})
        _tag_store(self.codecommit_backend)[arn] = dict(self._get_param("tags") or {})
        return body

    def delete_repository(self: Any) -> str:
        name = self._get_param("repositoryName")
        repo = self.codecommit_backend.repositories.get(name)
        if repo is not None:
            _tag_store(self.codecommit_backend).pop(repo.repository_metadata["Arn"], None)
            _template_links(self.codecommit_backend).pop(name, None)
        return original_delete(self)

    def list_tags_for_resource(self: Any) -> str:
        arn = self._get_param("resourceArn")
        _repository_by_arn(self.codecommit_backend, arn)
        return json.dumps({"tags": _tag_store(self.codecommit_backend).get(arn, {})})

    def tag_resource(self: Any) -> str:
        arn = self._get_param("resourceArn")
        _repository_by_arn(self.codecommit_backend, arn)
        _tag_store(self.codecommit_backend).setdefault(arn, {}).update(self._get_param("tags") or {})
        return "{}"

    def untag_resource(self: Any) -> str:
        arn = self._get_param("resourceArn")
        _repository_by_arn(self.codecommit_backend, arn)
        tags = _tag_store(self.codecommit_backend).setdefault(arn, {})
        for key in self._get_param("tagKeys") or []:
            tags.pop(key, None)
        return "{}"

    def list_repositories(self: Any) -> str:
        repos = [
            {"repositoryName": name, "repositoryId": repo.repository_metadata["repositoryId"]}
            for name, repo in sorted(self.codecommit_backend.repositories.items())
        ]
        return json.dumps({"repositories": repos})

    def update_repository_description(self: Any) -> str:
        metadata = self.codecommit_backend.get_repository(self._get_param("repositoryName"))
        metadata["repositoryDescription"] = self._get_param("repositoryDescription")
        metadata["lastModifiedDate"] = time.time()
        return "{}"

    CodeCommitResponse.create_repository = create_repository  # type: ignore[method-assign]
    CodeCommitResponse.delete_repository = delete_repository  # type: ignore[method-assign]
    CodeCommitResponse.list_tags_for_resource = list_tags_for_resource  # type: ignore[attr-defined]
    CodeCommitResponse.tag_resource = tag_resource  # type: ignore[attr-defined]
    CodeCommitResponse.untag_resource = untag_resource  # type: ignore[attr-defined]
    CodeCommitResponse.list_repositories = list_repositories  # type: ignore[attr-defined]
    CodeCommitResponse.update_repository_description = update_repository_description  # type: ignore[attr-defined]


@dataclass
class _ApprovalRuleTemplate:
    """One approval rule template, shaped like the API's ``ApprovalRuleTemplate`` structure."""

    name: str
    description: str
    content: str
    template_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    user: str = "arn:aws:iam::123456789012:root"

    def to_api(self) -> dict[str, Any]:
        return {
            "approvalRuleTemplateId": self.template_id,
            "approvalRuleTemplateName": self.name,
            "approvalRuleTemplateDescription": self.description,
            "approvalRuleTemplateContent": self.content,
            "ruleContentSha256": hashlib.sha256(self.content.encode()).hexdigest(),
            "lastModifiedDate": self.modified,
            "creationDate": self.created,
            "lastModifiedUser": self.user,
        }


def _templates(backend: Any) -> dict[str, _ApprovalRuleTemplate]:
    store = getattr(backend, "mlpipe_approval_rule_templates", None)
    if store is None:
        store = {}
        backend.mlpipe_approval_rule_templates = store
    return store


def _template_links(backend: Any) -> dict[str, set[str]]:
    """Repository name -> names of the templates associated with it."""
    store = getattr(backend, "mlpipe_template_links", None)
    if store is None:
        store = {}
        backend.mlpipe_template_links = store
    return store


def patch_codecommit_approval_rule_templates() -> None:
    """Implement approval rule templates and their repository associations.

    Why: ``aws_codecommit_approval_rule_template`` and ``..._association`` need Create/Get/
    Update*/Delete ``ApprovalRuleTemplate``, ``Associate``/``Disassociate...WithRepository`` and
    ``ListRepositoriesForApprovalRuleTemplate``; moto 5.2.5 has none of them. State lives on the
    per-account moto backend, so templates stay in the account that created them.
    """
    from moto.codecommit.responses import CodeCommitResponse

    def get_template(self: Any) -> _ApprovalRuleTemplate:
        name = self._get_param("approvalRuleTemplateName")
        template = _templates(self.codecommit_backend).get(name)
        if template is None:
            raise _codecommit_error(
                "ApprovalRuleTemplateDoesNotExistException",
                f"The specified approval rule template does not exist: {name}",
            )
        return template

    def reply(template: _ApprovalRuleTemplate) -> str:
        return json.dumps({"approvalRuleTemplate": template.to_api()})

    def create_approval_rule_template(self: Any) -> str:
        name = self._get_param("approvalRuleTemplateName")
        store = _templates(self.codecommit_backend)
        if name in store:
            raise _codecommit_error(
                "ApprovalRuleTemplateNameAlreadyExistsException",
                f"An approval rule template with that name already exists: {name}",
            )
        content = self._get_param("approvalRuleTemplateContent") or ""
        try:
            json.loads(content)
        except ValueError as exc:
            raise _codecommit_error("InvalidApprovalRuleTemplateContentException", str(exc)) from exc
        template = _ApprovalRuleTemplate(
            name=name,
            description=self._get_param("approvalRuleTemplateDescription") or "",
            content=content,
            user=f"arn:aws:iam::{self.current_account}:root",
        )
        store[name] = template
        return reply(template)

    def get_approval_rule_template(self: Any) -> str:
        return reply(get_template(self))

    def delete_approval_rule_template(self: Any) -> str:
        name = self._get_param("approvalRuleTemplateName")
        template = _templates(self.codecommit_backend).pop(name, None)
        for names in _template_links(self.codecommit_backend).values():
            names.discard(name)
        return json.dumps({"approvalRuleTemplateId": template.template_id if template else ""})

    def update_approval_rule_template_content(self: Any) -> str:
        template = get_template(self)
        template.content = self._get_param("newRuleContent") or ""
        template.modified = time.time()
        return reply(template)

    def update_approval_rule_template_description(self: Any) -> str:
        template = get_template(self)
        template.description = self._get_param("approvalRuleTemplateDescription") or ""
        template.modified = time.time()
        return reply(template)

    def update_approval_rule_template_name(self: Any) -> str:
        old = self._get_param("oldApprovalRuleTemplateName")
        new = self._get_param("newApprovalRuleTemplateName")
        store = _templates(self.codecommit_backend)
        if old not in store:
            raise _codecommit_error("ApprovalRuleTemplateDoesNotExistException", old)
        template = store.pop(old)
        template.name = new
        template.modified = time.time()
        store[new] = template
        for names in _template_links(self.codecommit_backend).values():
            if old in names:
                names.discard(old)
                names.add(new)
        return reply(template)

    def list_approval_rule_templates(self: Any) -> str:
        return json.dumps({"approvalRuleTemplateNames": sorted(_templates(self.codecommit_backend))})

    def associate_approval_rule_template_with_repository(self: Any) -> str:
        template = get_template(self)
        repo = self._get_param("repositoryName")
        self.codecommit_backend.get_repository(repo)  # raises RepositoryDoesNotExistException
        _template_links(self.codecommit_backend).setdefault(repo, set()).add(template.name)
        return "{}"

    def disassociate_approval_rule_template_from_repository(self: Any) -> str:
        template = get_template(self)
        repo = self._get_param("repositoryName")
        self.codecommit_backend.get_repository(repo)
        _template_links(self.codecommit_backend).get(repo, set()).discard(template.name)
        return "{}"

    def list_repositories_for_approval_rule_template(self: Any) -> str:
        template = get_template(self)
        repos = sorted(
            repo for repo, names in _template_links(self.codecommit_backend).items() if template.name in names
        )
        return json.dumps({"repositoryNames": repos})

    def list_associated_approval_rule_templates_for_repository(self: Any) -> str:
        repo = self._get_param("repositoryName")
        self.codecommit_backend.get_repository(repo)
        names = sorted(_template_links(self.codecommit_backend).get(repo, set()))
        return json.dumps({"approvalRuleTemplateNames": names})

    handlers: dict[str, Callable[[Any], str]] = {
        "create_approval_rule_template": create_approval_rule_template,
        "get_approval_rule_template": get_approval_rule_template,
        "delete_approval_rule_template": delete_approval_rule_template,
        "update_approval_rule_template_content": update_approval_rule_template_content,
        "update_approval_rule_template_description": update_approval_rule_template_description,
        "update_approval_rule_template_name": update_approval_rule_template_name,
        "list_approval_rule_templates": list_approval_rule_templates,
        "associate_approval_rule_template_with_repository": associate_approval_rule_template_with_repository,
        "disassociate_approval_rule_template_from_repository": (disassociate_approval_rule_template_from_repository),
        "list_repositories_for_approval_rule_template": list_repositories_for_approval_rule_template,
        "list_associated_approval_rule_templates_for_repository": (
            list_associated_approval_rule_templates_for_repository
        ),
    }
    for name, handler in handlers.items():
        setattr(CodeCommitResponse, name, handler)


# --------------------------------------------------------------------------------------------
# CodePipeline
# --------------------------------------------------------------------------------------------


def patch_s3_logging_target_policy() -> None:
    """Let ``PutBucketLogging`` read target policies that also hold ``Principal: "*"`` statements.

    Why: moto 5.2.5 looks for the logging-service grant with ``stmt["Principal"].get(...)`` and
    crashes (HTTP 500) on any statement whose principal is the string ``"*"``, such as the
    TLS-only deny every hardened bucket has. Such statements are skipped in the search; the
    grant itself is still required exactly as moto checks it.
    """
    from moto.s3.models import FakeBucket

    original = FakeBucket._log_permissions_enabled_policy

    def log_permissions_enabled_policy(target_bucket: Any, target_prefix: str | None) -> bool:
        policy = target_bucket.policy
        if not policy:
            return False
        document = json.loads(policy.decode() if isinstance(policy, bytes) else policy)
        statements = document.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        usable = [st for st in statements if isinstance(st.get("Principal"), dict)]
        if len(usable) == len(statements):
            return bool(original(target_bucket, target_prefix))
        saved = target_bucket.policy
        try:
            target_bucket.policy = json.dumps({**document, "Statement": usable}).encode()
            return bool(original(target_bucket, target_prefix))
        finally:
            target_bucket.policy = saved

    FakeBucket._log_permissions_enabled_policy = staticmethod(log_permissions_enabled_policy)  # type: ignore[method-assign]


def patch_s3_no_access_log_delivery() -> None:
    """Do not write server access log objects into the target bucket.

    Why: moto writes a log object into the target bucket synchronously on every request to a
    bucket with logging on, including the requests of ``terraform destroy`` itself, so the log
    bucket refills while its ``force_destroy`` empties it and DeleteBucket fails with
    BucketNotEmpty. (AWS delivers access logs asynchronously, best effort.) The logging
    configuration is still stored, validated and returned; only the delivery is off locally.
    """
    from moto.s3.models import S3Backend

    def log_incoming_request(self: Any, request: Any, bucket_name: str) -> None:
        return None

    S3Backend.log_incoming_request = log_incoming_request  # type: ignore[method-assign]


def patch_codepipeline_timestamps() -> None:
    """Return pipeline metadata ``created``/``updated`` as epoch seconds.

    Why: ``GetPipeline`` (and ``ListPipelines``) send ISO strings where the JSON protocol needs
    numbers, so the provider fails to read ``aws_codepipeline`` back after create.
    ``UpdatePipeline`` is wrapped so ``updated`` moves forward like on AWS.
    """
    from moto.codepipeline.models import CodePipeline, CodePipelineBackend

    def metadata(self: Any) -> dict[str, Any]:
        return {
            "pipelineArn": self._arn,
            "created": self._created.timestamp(),
            "updated": self._updated.timestamp(),
        }

    original_update = CodePipelineBackend.update_pipeline

    def update_pipeline(self: Any, pipeline: dict[str, Any]) -> dict[str, Any]:
        result = original_update(self, pipeline)
        from moto.core.utils import utcnow

        existing = self.pipelines.get(pipeline["name"])
        if existing is not None:
            existing._updated = utcnow()
        return result

    CodePipeline.metadata = property(metadata)  # type: ignore[assignment,method-assign]
    CodePipelineBackend.update_pipeline = update_pipeline  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------
# Lambda
# --------------------------------------------------------------------------------------------


#: Function settings moto 5.2.5 accepts but neither stores nor returns.
_KEPT_LAMBDA_SETTINGS = ("DeadLetterConfig", "LoggingConfig")


def patch_lambda_dead_letter_config() -> None:
    """Keep a function's ``DeadLetterConfig`` and ``LoggingConfig`` and return them from ``GetFunction``.

    Why: moto 5.2.5 accepts both on create/update but never stores or returns them, so every plan
    after apply wants to add ``dead_letter_config`` and ``logging_config`` again (never converges).
    """
    from moto.awslambda.models import LambdaFunction

    original_init = LambdaFunction.__init__
    original_get_configuration = LambdaFunction.get_configuration
    original_update_configuration = LambdaFunction.update_configuration

    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, account_id, spec, *args, **kwargs)
        self.mlpipe_kept = {key: spec[key] for key in _KEPT_LAMBDA_SETTINGS if spec.get(key)}

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config: dict[str, Any] = original_get_configuration(self, *args, **kwargs)
        kept = getattr(self, "mlpipe_kept", {})
        dlq = kept.get("DeadLetterConfig")
        if dlq and dlq.get("TargetArn"):
            config["DeadLetterConfig"] = {"TargetArn": dlq["TargetArn"]}
        if kept.get("LoggingConfig"):
            config["LoggingConfig"] = dict(kept["LoggingConfig"])
        return config

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        kept = getattr(self, "mlpipe_kept", {})
        for key in _KEPT_LAMBDA_SETTINGS:
            if key in config_updates:
                kept[key] = config_updates[key] or None
        self.mlpipe_kept = {k: v for k, v in kept.items() if v}
        return original_update_configuration(self, config_updates)  # type: ignore[no-any-return]

    LambdaFunction.__init__ = __init__  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------
# S3 notifications
# --------------------------------------------------------------------------------------------


def patch_s3_eventbridge_notification() -> None:
    """Return ``<EventBridgeConfiguration/>`` when EventBridge delivery is switched on.

    Why: moto stores ``EventBridgeConfiguration`` from ``PutBucketNotificationConfiguration`` but
    leaves it out of the Get response, so ``aws_s3_bucket_notification { eventbridge = true }``
    reads back as false and every plan shows a change.
    """
    from moto.s3.responses import S3Response

    original = S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:
        result = original(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or getattr(config, "event_bridge", None) is None:
            return result
        status, headers, body = result
        text = body.decode() if isinstance(body, bytes) else str(body)
        marker = "</NotificationConfiguration>"
        if "EventBridgeConfiguration" not in text:
            if marker in text:
                text = text.replace(marker, f"<EventBridgeConfiguration/>{marker}")
            else:  # empty result rendered as a self-closed element
                text = (
                    '<?xml version="1.0" encoding="UTF-8"?>'
                    '<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    f"<EventBridgeConfiguration/>{marker}"
                )
        headers = dict(headers)
        headers.pop("Content-Length", None)
        headers.pop("content-length", None)
        return status, headers, text.encode() if isinstance(body, bytes) else text

    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]


def patch_s3_delete_marker_dispose() -> None:
    """Give ``FakeDeleteMarker`` the no-op ``dispose()`` every stored version is expected to have.

    Why: when the last version of a key is removed while a delete marker is still in its history,
    moto disposes every entry and crashes on the marker (``AttributeError``, HTTP 500). The
    provider empties versioned buckets exactly that way on ``force_destroy``, so destroy failed
    once an object had been deleted (a marker exists). A marker holds no data, so nothing to free.
    """
    from moto.s3.models import FakeDeleteMarker

    if not hasattr(FakeDeleteMarker, "dispose"):

        def dispose(self: Any, garbage: bool = False) -> None:
            return None

        FakeDeleteMarker.dispose = dispose  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# S3 bucket policies
# --------------------------------------------------------------------------------------------

_REQUEST = threading.local()


@dataclass
class S3RequestContext:
    """What the bucket policy of an object request is evaluated against."""

    method: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    account: str
    source_ip: str
    secure: bool

    def condition_keys(self) -> dict[str, list[str]]:
        """Global and S3 condition keys present in this request (lower-case names)."""
        keys: dict[str, list[str]] = {
            "aws:securetransport": ["true" if self.secure else "false"],
            "aws:principalaccount": [self.account],
            "aws:sourceip": [self.source_ip],
        }
        for name, value in self.headers.items():
            low = name.lower()
            if low.startswith("x-amz-"):
                keys[f"s3:{low}"] = [value]
        return keys


def patch_s3_bucket_policy_conditions() -> None:
    """Evaluate bucket policy conditions for object requests like S3 does.

    Why: moto evaluates only ``StringEquals`` and counts every other operator as true (and a
    statement with a failed condition as a *Deny*), so the standard "deny unless aws:kms with our
    key" / "deny plain HTTP" statements deny every upload. We wrap ``S3Response._key_response``
    to remember the request (headers, method, query, account) in a thread-local and replace
    ``FakeBucket.get_permission`` with :func:`evaluate_bucket_policy`, which implements the
    common condition operators, so those denies are really enforced locally.

    Local conventions: requests to the emulator are plain HTTP on loopback and count as
    ``aws:SecureTransport=true`` unless they carry ``INSECURE_TRANSPORT_HEADER``; statements
    naming specific principals are not applied (moto does not know the caller's identity).
    """
    from urllib.parse import parse_qs, urlparse

    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    original_key_response = S3Response._key_response

    def _key_response(self: Any, request: Any, full_url: str) -> Any:
        headers = {str(k).lower(): str(v) for k, v in dict(request.headers).items()}
        _REQUEST.context = S3RequestContext(
            method=str(request.method).upper(),
            query=parse_qs(urlparse(full_url).query, keep_blank_values=True),
            headers=headers,
            account=str(getattr(self, "current_account", "")),
            source_ip=str(getattr(request, "remote_addr", None) or "127.0.0.1"),
            secure=headers.get(INSECURE_TRANSPORT_HEADER, "").lower() not in ("1", "true", "yes"),
        )
        try:
            return original_key_response(self, request, full_url)
        finally:
            _REQUEST.context = None

    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import PermissionResult

        if self.policy is None:
            return PermissionResult.NEUTRAL
        context: S3RequestContext | None = getattr(_REQUEST, "context", None)
        keys: dict[str, list[str]] = {}
        if context is not None:
            action = _iam_action(action, context)
            keys = context.condition_keys()
            upload_id = (context.query.get("uploadId") or [""])[0]
            multipart = getattr(self, "multiparts", {}).get(upload_id) if upload_id else None
            if multipart is not None:
                # UploadPart / CompleteMultipartUpload: the SSE settings were given when the
                # upload was created, so evaluate those (as S3 does for the whole upload).
                if multipart.sse_encryption:
                    keys["s3:x-amz-server-side-encryption"] = [multipart.sse_encryption]
                if multipart.kms_key_id:
                    keys["s3:x-amz-server-side-encryption-aws-kms-key-id"] = [multipart.kms_key_id]
        policy = self.policy.decode() if isinstance(self.policy, bytes) else self.policy
        verdict = evaluate_bucket_policy(json.loads(policy), action, resource, keys)
        return {
            "Deny": PermissionResult.DENIED,
            "Allow": PermissionResult.PERMITTED,
        }.get(verdict, PermissionResult.NEUTRAL)

    S3Response._key_response = _key_response  # type: ignore[method-assign]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _iam_action(moto_action: str, context: S3RequestContext) -> str:
    """Map moto's method-derived action ("s3:PostObject", "s3:HeadObject") to the IAM action."""
    if moto_action == "s3:HeadObject":
        return "s3:GetObject"
    if moto_action == "s3:PostObject" and ("uploads" in context.query or "uploadId" in context.query):
        return "s3:PutObject"
    return moto_action


def evaluate_bucket_policy(policy: Mapping[str, Any], action: str, resource: str, keys: Mapping[str, list[str]]) -> str:
    """Return "Deny", "Allow" or "" (no statement applies) for one request.

    An explicit Deny wins over any Allow, as in IAM. ``keys`` maps lower-case condition key
    names to the request's values.
    """
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        if not _statement_applies(statement, action, resource, keys):
            continue
        if statement.get("Effect") == "Deny":
            return "Deny"
        if statement.get("Effect") == "Allow":
            allowed = True
    return "Allow" if allowed else ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM wildcard match: ``*`` any run of characters, ``?`` one character, nothing else special."""
    pattern = pattern.replace("[", "[[]")
    if not case_sensitive:
        return fnmatch.fnmatchcase(value.lower(), pattern.lower())
    return fnmatch.fnmatchcase(value, pattern)


def _any_match(patterns: Iterable[Any], value: str, *, case_sensitive: bool = True) -> bool:
    return any(_wildcard(str(p), value, case_sensitive=case_sensitive) for p in patterns)


def _is_wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "*" in _as_list(principal.get("AWS"))
    return False


def _statement_applies(statement: Mapping[str, Any], action: str, resource: str, keys: Mapping[str, list[str]]) -> bool:
    if "NotPrincipal" in statement or not _is_wildcard_principal(statement.get("Principal", "*")):
        return False
    if "NotAction" in statement:
        if _any_match(_as_list(statement["NotAction"]), action, case_sensitive=False):
            return False
    elif not _any_match(_as_list(statement.get("Action")), action, case_sensitive=False):
        return False
    if "NotResource" in statement:
        if _any_match(_as_list(statement["NotResource"]), resource):
            return False
    elif not _any_match(_as_list(statement.get("Resource")), resource):
        return False
    return conditions_hold(statement.get("Condition") or {}, keys)


def conditions_hold(conditions: Mapping[str, Any], keys: Mapping[str, list[str]]) -> bool:
    """True when every operator block holds (AND across operators and keys, OR across values)."""
    for operator, block in conditions.items():
        if not isinstance(block, Mapping):
            return False
        for key, expected in block.items():
            if not _condition_holds(str(operator), _as_list(expected), keys.get(str(key).lower())):
                return False
    return True


_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}

_warned: set[str] = set()


def _condition_holds(operator: str, expected: list[Any], actual: list[str] | None) -> bool:
    """Evaluate one ``operator: {key: expected}`` entry against the request's values for the key.

    A key absent from the request makes positive operators false and negated ones true (IAM's
    rule); ``...IfExists`` makes an absent key true. Unknown operators are reported on stderr
    and treated as not matching, so they can neither deny nor allow by accident.
    """
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    exp = [str(e) for e in expected]

    if base == "Null":
        want_absent = exp[0].lower() == "true" if exp else True
        return (actual is None) == want_absent
    if actual is None:
        return if_exists or base in _NEGATED

    def one(value: str) -> bool | None:
        if base == "StringEquals":
            return value in exp
        if base == "StringNotEquals":
            return value not in exp
        if base == "StringEqualsIgnoreCase":
            return value.lower() in [e.lower() for e in exp]
        if base == "StringNotEqualsIgnoreCase":
            return value.lower() not in [e.lower() for e in exp]
        if base in ("StringLike", "ArnLike", "ArnEquals"):
            return _any_match(exp, value)
        if base in ("StringNotLike", "ArnNotLike", "ArnNotEquals"):
            return not _any_match(exp, value)
        if base == "Bool":
            return value.lower() in [e.lower() for e in exp]
        if base.startswith("Numeric"):
            return _numeric(base, value, exp)
        return None

    results = [one(v) for v in actual]
    if any(r is None for r in results):
        if operator not in _warned:
            _warned.add(operator)
            print(f"mlpipe emulator: condition operator {operator} not evaluated", file=sys.stderr)
        return False
    if qualifier == "ForAllValues":
        return all(results)
    return any(results)


def _numeric(base: str, value: str, expected: list[str]) -> bool | None:
    try:
        number = float(value)
        targets = [float(e) for e in expected]
    except ValueError:
        return False
    compare: dict[str, Callable[[float, float], bool]] = {
        "NumericEquals": lambda a, b: a == b,
        "NumericLessThan": lambda a, b: a < b,
        "NumericLessThanEquals": lambda a, b: a <= b,
        "NumericGreaterThan": lambda a, b: a > b,
        "NumericGreaterThanEquals": lambda a, b: a >= b,
    }
    if base == "NumericNotEquals":
        return all(number != t for t in targets)
    if base not in compare:
        return None
    return any(compare[base](number, t) for t in targets)
