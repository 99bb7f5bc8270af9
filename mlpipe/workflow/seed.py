"""Seed the repository with the first training request, idempotently, after apply.

The AWS provider has no resource for a file in a CodeCommit repository, so the wrapper writes it
with the API once: a branch that already holds the file is left alone (the team owns it from then
on), so re-running apply never overwrites someone's request.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mlpipe.core.config import PipelineConfig
from mlpipe.core.names import TRAINING_REQUEST_FILE
from mlpipe.workflow.clients import account_client


def training_request(config: PipelineConfig) -> str:
    """The request the Train stage reads: the configured defaults, spelled out so users can edit them."""
    request = {
        "hyperparameters": config.training.hyperparameters,
        "instance_type": config.training.instance_type,
        "instance_count": config.training.instance_count,
        "train_prefix": "data/train/",
        "validation_prefix": "data/validation/",
    }
    return json.dumps(request, indent=2, sort_keys=True) + "\n"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def seed_repository(config: PipelineConfig, outputs: dict[str, Any], emulator_url: str | None) -> str:
    """Put the training request on the branch unless it is already there; return what happened."""
    client = account_client(config, "shared", "codecommit", emulator_url)
    repository, branch = outputs["repository_name"], outputs["branch"]
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
        "fileContent": training_request(config).encode(),
        "filePath": TRAINING_REQUEST_FILE,
        "commitMessage": "Seed the first training request (mlpipe)",
        "name": "mlpipe",
        "email": "mlpipe@users.noreply.local",
    }
    if parent:
        request["parentCommitId"] = parent
    commit = client.put_file(**request)["commitId"]
    return f"{repository}:{branch}/{TRAINING_REQUEST_FILE} committed as {commit[:12]}"
