"""CKV_MLP_003: no policy grants ``*`` actions, unscoped ``iam:PassRole`` or wildcard AssumeRole.

For every Allow statement of every policy-bearing attribute:

* ``Action: "*"`` / ``"*:*"`` or ``NotAction`` (allow everything except...) FAILS.
* An action covering ``iam:PassRole`` (``iam:PassRole``, ``iam:Pass*``, ``iam:*``) FAILS when
  a Resource is ``*``/contains a wildcard, NotResource is used, or the statement has no
  ``iam:PassedToService`` condition: PassRole without both lets the holder hand any role to any
  service, the classic privilege escalation.
* An action covering ``sts:AssumeRole`` FAILS on a wildcard Resource (``*``,
  ``arn:aws:iam::*:role/*``, ``.../role/*``): the original templates let the pipeline assume
  any role in any account.

Data sources ``aws_iam_policy_document`` referenced by these attributes are resolved through
checkov's graph; anything unreadable fails.
"""

from __future__ import annotations

from typing import Any

if __package__:
    from . import common as c
else:  # loaded by checkov as a top-level module
    import common as c  # type: ignore[no-redef]

_RESOURCES = (
    "aws_iam_policy",
    "aws_iam_role_policy",
    "aws_iam_user_policy",
    "aws_iam_group_policy",
    "aws_iam_role",
    "aws_kms_key",
    "aws_kms_key_policy",
    "aws_s3_bucket_policy",
    "aws_sqs_queue_policy",
    "aws_sns_topic_policy",
)


def _wildcard_resource(stmt: c.Statement) -> bool:
    if "NotResource" in stmt:
        return True
    return any("*" in r or "?" in r for r in c.as_str_list(stmt.get("Resource")))


def statement_problems(stmt: c.Statement) -> list[str]:
    """Problems of one Allow statement (shared so tests can exercise the rule directly)."""
    problems: list[str] = []
    acts = c.actions(stmt)
    if "NotAction" in stmt:
        problems.append("Allow with NotAction grants (almost) every action")
    if any(a in ("*", "*:*") for a in acts):
        problems.append("grants Action '*'")
        return problems
    if c.action_matches(acts, "iam:PassRole"):
        if _wildcard_resource(stmt) or not c.as_str_list(stmt.get("Resource")):
            problems.append("iam:PassRole on a wildcard resource")
        if "iam:passedtoservice" not in c.condition_keys(stmt):
            problems.append("iam:PassRole without an iam:PassedToService condition")
    has_resource = "Resource" in stmt or "NotResource" in stmt  # trust policies have none
    if c.action_matches(acts, "sts:AssumeRole") and has_resource and _wildcard_resource(stmt):
        problems.append("sts:AssumeRole on a wildcard role resource")
    return problems


class NoWildcardActions(c.FailClosedCheck):
    """Flags ``*`` actions, unscoped PassRole and AssumeRole on wildcard roles."""

    def __init__(self) -> None:
        super().__init__(
            name="No policy grants '*' actions, unscoped iam:PassRole or sts:AssumeRole on role/*",
            id="CKV_MLP_003",
            supported_resources=_RESOURCES,
        )

    def evaluate(self, conf: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        for label, raw in self.policy_attrs(conf):
            policy = c.parse_policy(raw, self.scope)
            for index, stmt in enumerate(c.statements(policy)):
                if c.is_allow(stmt):
                    problems.extend(f"{label} Statement[{index}]: {p}" for p in statement_problems(stmt))
        return problems


check = NoWildcardActions()
