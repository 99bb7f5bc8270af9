"""Local-only: just enough of CodeCommit's file API for the wrapper to seed the repository.

moto 5.2.5 implements repositories but no content (no GetBranch, GetFile or PutFile). The seed
step needs exactly those three; this keeps one in-memory branch -> commit -> files model per
repository on the moto backend (so a reset clears it), with the error codes AWS returns.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Commit:
    commit_id: str
    parent: str | None
    files: dict[str, bytes]


@dataclass
class _Content:
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)


def _error(kind: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(kind, message)


def _content(response: Any) -> _Content:
    backend = response.codecommit_backend
    name = response._get_param("repositoryName")
    if name not in backend.repositories:
        raise _error("RepositoryDoesNotExistException", f"{name} does not exist")
    store = getattr(backend, "mlpipe_content", None)
    if store is None:
        store = {}
        backend.mlpipe_content = store
    return store.setdefault(name, _Content())


def _resolve(content: _Content, specifier: str) -> _Commit:
    commit_id = content.branches.get(specifier, specifier)
    if commit_id not in content.commits:
        raise _error("CommitDoesNotExistException", f"{specifier} does not exist")
    return content.commits[commit_id]


def patch_codecommit_files() -> None:
    """Add GetBranch, GetFile and PutFile to moto's CodeCommit."""
    from moto.codecommit.responses import CodeCommitResponse

    def get_branch(self: Any) -> str:
        content = _content(self)
        branch = self._get_param("branchName")
        if branch not in content.branches:
            raise _error("BranchDoesNotExistException", f"branch {branch} does not exist")
        return json.dumps({"branch": {"branchName": branch, "commitId": content.branches[branch]}})

    def get_file(self: Any) -> str:
        content = _content(self)
        commit = _resolve(content, self._get_param("commitSpecifier") or "HEAD")
        path = self._get_param("filePath")
        if path not in commit.files:
            raise _error("FileDoesNotExistException", f"{path} does not exist in {commit.commit_id}")
        data = commit.files[path]
        return json.dumps(
            {
                "commitId": commit.commit_id,
                "blobId": hashlib.sha1(data).hexdigest(),
                "filePath": path,
                "fileMode": "NORMAL",
                "fileSize": len(data),
                "fileContent": base64.b64encode(data).decode(),
            }
        )

    def put_file(self: Any) -> str:
        content = _content(self)
        branch = self._get_param("branchName")
        parent = self._get_param("parentCommitId")
        head = content.branches.get(branch)
        if head is not None and parent is None:
            raise _error("ParentCommitIdRequiredException", "the branch exists: give parentCommitId")
        if head is not None and parent != head:
            raise _error("ParentCommitIdOutdatedException", f"{parent} is not the tip of {branch}")
        data = base64.b64decode(self._get_param("fileContent"))
        path = self._get_param("filePath")
        files = dict(content.commits[head].files) if head else {}
        files[path] = data
        commit_id = hashlib.sha1(f"{head}{path}{time.time_ns()}".encode() + data).hexdigest()
        content.commits[commit_id] = _Commit(commit_id, head, files)
        content.branches[branch] = commit_id
        return json.dumps({"commitId": commit_id, "blobId": hashlib.sha1(data).hexdigest(), "treeId": commit_id[::-1]})

    CodeCommitResponse.get_branch = get_branch  # type: ignore[attr-defined]
    CodeCommitResponse.get_file = get_file  # type: ignore[attr-defined]
    CodeCommitResponse.put_file = put_file  # type: ignore[attr-defined]
