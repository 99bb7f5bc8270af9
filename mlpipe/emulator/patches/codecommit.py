"""CodeCommit: repository dates, tags, description and approval rule templates.

Fixes: ``aws_codecommit_repository`` failing to read back (dates sent as ISO strings, tag API and
``UpdateRepositoryDescription`` missing, ``kmsKeyId`` dropped) and
``aws_codecommit_approval_rule_template`` (+ association) having no API at all in moto 5.2.5.
The file API the seed step needs is in :mod:`mlpipe.emulator.patches.codecommit_files`.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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
