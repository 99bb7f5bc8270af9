"""CKV_MLP_005: no AWS-managed ``*FullAccess`` (or admin) policy may be attached anywhere.

Why: the original templates attached ``AmazonS3FullAccess``, ``AmazonSageMakerFullAccess`` and
``AWSLambda_FullAccess``; each grants a whole service on every resource in the account, which
defeats the per-bucket/per-key scoping of the generated policies. ``AdministratorAccess`` and
``PowerUserAccess`` are rejected for the same reason.

Fail-closed: an attached ARN that is neither a literal ARN nor a reference to an
``aws_iam_policy`` created in this configuration (e.g. ``var.policy_arn``) fails, and a
``data.aws_iam_policy`` lookup is resolved through the graph (by ``name``/``arn``) or fails.
"""

from __future__ import annotations

import re
from typing import Any

if __package__:
    from . import common as c
else:  # loaded by checkov as a top-level module
    import common as c  # type: ignore[no-redef]

_MANAGED = re.compile(r"^arn:[^:]+:iam::aws:policy/(?:.*/)?(?P<name>[^/]+)$")
_FORBIDDEN = re.compile(r"fullaccess|^administratoraccess|^poweruseraccess", re.IGNORECASE)
_OWN_POLICY = re.compile(r"^aws_iam_policy\.[\w-]+(?:\[[^\]]*\])?\.arn$")
_DATA_POLICY = re.compile(r"^data\.aws_iam_policy\.([\w-]+(?:\[[^\]]*\])?)\.arn$")

_ATTRS = {
    "aws_iam_role_policy_attachment": "policy_arn",
    "aws_iam_policy_attachment": "policy_arn",
    "aws_iam_user_policy_attachment": "policy_arn",
    "aws_iam_group_policy_attachment": "policy_arn",
    "aws_iam_role": "managed_policy_arns",
    "aws_iam_role_policy_attachments_exclusive": "policy_arns",
}


class NoFullAccessManagedPolicy(c.FailClosedCheck):
    """Flags attachments of AWS-managed FullAccess/admin policies."""

    def __init__(self) -> None:
        super().__init__(
            name="No AWS-managed *FullAccess/admin policy may be attached",
            id="CKV_MLP_005",
            supported_resources=tuple(_ATTRS),
        )

    def _problem(self, arn: str) -> str | None:
        data_ref = _DATA_POLICY.match(arn)
        if data_ref:
            block = c.find_block(self.scope, "data", "aws_iam_policy", data_ref.group(1))
            if block is None:
                return f"{arn} cannot be resolved"
            name = c.strip_interpolation(str(c.unwrap(block.conf.get("name") or "")))
            literal = c.strip_interpolation(str(c.unwrap(block.conf.get("arn") or "")))
            if not name and not literal:
                return f"{arn} is looked up by an attribute this check cannot read"
            arn = literal or f"arn:aws:iam::aws:policy/{name}"
        if _OWN_POLICY.match(arn):
            return None
        if not arn.startswith("arn:"):
            return f"attached policy {arn!r} is not readable (fail-closed)"
        managed = _MANAGED.match(arn)
        if managed and _FORBIDDEN.search(managed.group("name")):
            return f"attaches AWS-managed {managed.group('name')}"
        return None

    def evaluate(self, conf: dict[str, Any]) -> list[str]:
        attr = _ATTRS[self.entity_type]
        raw = conf.get(attr)
        if raw is None:
            if self.entity_type == "aws_iam_role":
                return []
            return [f"{attr} is missing"]
        problems = []
        for arn in c.as_str_list(raw):
            problem = self._problem(arn)
            if problem:
                problems.append(problem)
        return problems


check = NoFullAccessManagedPolicy()
