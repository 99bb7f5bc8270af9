"""Step Functions: the two actions AWS provider 5.100.0 calls that moto 5.2.5 does not implement.

Fixes: ``aws_sfn_state_machine`` failing with HTTP 500 on create (``ValidateStateMachineDefinition``)
and on every read (``ListStateMachineVersions``).
"""

from __future__ import annotations

import json
from typing import Any


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
