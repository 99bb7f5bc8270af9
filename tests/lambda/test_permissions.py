"""lambda_src/permissions.py is the truth about what the deployer calls.

Every client the deployer builds is an ``ApiRecorder`` (conftest) that logs each call as an IAM
action. One scenario walks every path that calls AWS; the actions logged must be exactly
``REQUIRED_ACTIONS``: a new call fails this test (and the fixture's teardown in every other test),
and an action no path uses any more fails it too.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

import deployer
import permissions
import pytest

LAMBDA_SRC = Path(deployer.__file__).parent
ACTION = re.compile(r"^[a-z0-9-]+:[A-Z][A-Za-z]+$")


def test_every_path_together_uses_exactly_the_required_actions(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1. first deployment: create, smoke test, register autoscaling
    first = aws.deploy()
    # 2. guarded update keeping the scaled capacity, then the replaced config is deleted
    second = aws.deploy(run=2)
    assert (first, second) != (second, first)
    # 3. an instance type change deregisters first; SageMaker rolls back on an alarm that is OK again,
    #    so the history is read; autoscaling is registered again for the old fleet
    monkeypatch.setenv("ENDPOINT_INSTANCE_TYPE", "ml.c5.xlarge")
    token = aws.start(run=3)
    aws.cloudwatch.set_state(aws.alarms[1], "ALARM", "latency")
    aws.cloudwatch.set_state(aws.alarms[1], "OK", "recovered")
    aws.sagemaker.auto_rollback(aws.endpoint)
    assert aws.poll(token)[0] == "put_job_failure_result"
    # 4. a failed smoke test returns the endpoint to the previous config
    monkeypatch.setenv("ENDPOINT_INSTANCE_TYPE", "ml.m5.large")
    token = aws.start(run=4)
    aws.sagemaker.complete_update(aws.endpoint)
    aws.runtime.answer("not a prediction")
    waiting = json.loads(aws.poll(token)[1]["continuationToken"])
    aws.sagemaker.complete_update(aws.endpoint)
    assert aws.poll(waiting)[0] == "put_job_failure_result"

    used = set(aws.api_calls)
    assert used == permissions.REQUIRED_ACTIONS, (
        f"called but not declared: {sorted(used - permissions.REQUIRED_ACTIONS)}; "
        f"declared but never called: {sorted(permissions.REQUIRED_ACTIONS - used)}"
    )


def test_clients_are_only_built_through_the_recorded_seam() -> None:
    """A client built elsewhere would escape the recorder, so there must be no other."""
    source = (LAMBDA_SRC / "deployer.py").read_text()
    assert source.count("boto3.") == 1 and "return boto3.client(service, config=" in source
    assert "Session(" not in source and ".resource(" not in source


def test_every_action_is_documented_with_resources() -> None:
    for table in (permissions.ACTION_RESOURCES, permissions.DEPENDENT_PERMISSIONS, permissions.MODEL_ROLE_DATA_CAPTURE):
        for action, grant in table.items():
            assert ACTION.match(action), action
            assert grant.resources and grant.why, action
            for resource in grant.resources:
                assert resource == "*" or resource.startswith(("arn:${Partition}:", "${")), (action, resource)
    assert frozenset(permissions.ACTION_RESOURCES) == permissions.REQUIRED_ACTIONS
    assert not permissions.REQUIRED_ACTIONS & set(permissions.DEPENDENT_PERMISSIONS)
    assert permissions.ACTION_RESOURCES["sagemaker:InvokeEndpoint"].resources == (
        "arn:${Partition}:sagemaker:${Region}:${Account}:endpoint/${EndpointName}",
    )


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_lambda_package_needs_no_layer() -> None:
    """python3.12 Lambda runtime: the standard library and the bundled boto3/botocore only."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    assert _imported_roots(LAMBDA_SRC / "permissions.py") <= stdlib
    assert _imported_roots(LAMBDA_SRC / "deployer.py") <= stdlib | {"boto3", "botocore"}
