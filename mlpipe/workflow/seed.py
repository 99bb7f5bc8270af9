"""Seed the repository with the first training request, idempotently, after apply.

The AWS provider has no resource for a file in a CodeCommit repository, so the wrapper writes it
with the API once: a branch that already holds the file is left alone (the team owns it from then
on), so re-running apply never overwrites someone's request.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mlpipe.core.config import ProjectConfig, TrainingSettings
from mlpipe.core.names import TRAINING_REQUEST_FILE
from mlpipe.workflow.clients import Target


def training_request(settings: TrainingSettings) -> str:
    """The request the Train stage reads: the configured defaults, spelled out so users can edit them."""
    request = {
        "hyperparameters": settings.hyperparameters,
        "instance_type": settings.instance_type,
        "instance_count": settings.instance_count,
        "train_prefix": "data/train/",
        "validation_prefix": "data/validation/",
    }
    return json.dumps(request, indent=2, sort_keys=True) + "\n"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def seed_repository(config: ProjectConfig, outputs: dict[str, Any], target: Target) -> str:
    """Put the pipeline's training request on its branch unless it is already there; return what happened."""
    client = target.client(config, "shared", "codecommit")
    repository, branch = outputs["repository_name"], outputs["branch"]
    spec = next(p for p in config.pipelines if p.names.repository == repository)
    parent: str | None = None
    try:
        parent = client.get_branch(repositoryName=repository, branchName=branch)["branch"]["commitId"]
    except ClientError as exc:
        if _error_code(exc) not in ("BranchDoesNotExistException", "RepositoryEmptyException"):
            raise
    if parent is not None:
        try:
            client.get_file(repositoryName=repository, commitSpecifier=branch, filePath=TRAINING_REQUEST_FILE)
            return f"{repository}:{branch}/{TRAINING_REQUEST_FILE} already present, left unchanged"
        except ClientError as exc:
            if _error_code(exc) != "FileDoesNotExistException":
                raise
    request: dict[str, Any] = {
        "repositoryName": repository,
        "branchName": branch,
        "fileContent": training_request(spec.training).encode(),
        "filePath": TRAINING_REQUEST_FILE,
        "commitMessage": "Seed the first training request (mlpipe)",
        "name": "mlpipe",
        "email": "mlpipe@users.noreply.local",
    }
    if parent:
        request["parentCommitId"] = parent
    commit = client.put_file(**request)["commitId"]
    return f"{repository}:{branch}/{TRAINING_REQUEST_FILE} committed as {commit[:12]}"
