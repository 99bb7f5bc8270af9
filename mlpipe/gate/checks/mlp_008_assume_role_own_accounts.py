"""CKV_MLP_008: ``sts:AssumeRole`` is granted only on roles inside the configuration's accounts.

Why: a role that may assume a role in some other account carries the pipeline's access (and
its data) out of the accounts this configuration controls; the original templates let the
pipeline role assume ``arn:aws:iam::*:role/*``. The pipeline only ever hops between its own
accounts: shared services, training and production.

Rule, for every Allow statement of an identity policy (``aws_iam_policy``,
``aws_iam_role_policy``, ``aws_iam_user_policy``, ``aws_iam_group_policy``, ``aws_iam_role``
inline policies) whose actions cover ``sts:AssumeRole`` (``sts:AssumeRole``, ``sts:Assume*``,
``sts:*``, ``*``, or ``NotAction`` without it), every Resource that can name a role must be:

* a reference ``aws_iam_role.<n>.arn`` to a role declared in the same module, or
* a literal role ARN (``arn:<partition>:iam::<account>:role/...``) whose account is a literal id
  one of the module's ``provider "aws"`` blocks is pinned to (that block's
  ``allowed_account_ids`` holds exactly that one id - the rule CKV_MLP_002 uses for "own root"),
  or ``data.aws_caller_identity.<n>.account_id`` declared in the module.

Everything else FAILS: a role in another account, a wildcard or empty account, a provider
pinned to several accounts / a variable / nothing (the account cannot be proven ours),
``*``, ``var.x``/``module.x``/data-source lookups (``data.aws_iam_role.x.arn``) whose account is
unknown, an undeclared role reference, ``NotResource``, and a statement without Resource.
Resources that cannot be a role (another service's ARN, ``iam::<acct>:user/x``, a reference to
a non-role resource such as ``aws_sqs_queue.q.arn``) are ignored. Wildcards in the role *name*
within an own account are CKV_MLP_003's business. An unreadable policy fails.
"""

from __future__ import annotations

import fnmatch
from typing import Any

if __package__:
    from . import common as c
else:  # loaded by checkov as a top-level module
    import common as c  # type: ignore[no-redef]


def covers_assume_role(stmt: c.Statement) -> bool:
    """True when the statement can grant ``sts:AssumeRole`` (NotAction counts unless it lists it)."""
    if "NotAction" in stmt:
        return not c.action_matches(c.as_str_list(stmt.get("NotAction")), "sts:AssumeRole")
    return c.action_matches(c.actions(stmt), "sts:AssumeRole")


class AssumeRoleOwnAccounts(c.FailClosedCheck):
    """Flags sts:AssumeRole grants on roles that are not provably in this configuration's accounts."""

    def __init__(self) -> None:
        super().__init__(
            name="sts:AssumeRole only on roles inside the accounts this configuration is pinned to",
            id="CKV_MLP_008",
            supported_resources=c.IDENTITY_POLICY_RESOURCES,
        )

    def _account_problem(self, account: str, pinned: set[str]) -> str | None:
        if not account:
            return "empty account field"
        if c.has_wildcard(account):
            return f"wildcard account {account!r} names roles in any account"
        if account in pinned or c.caller_identity_account(self.scope, account):
            return None
        if not pinned:
            return f"account {account!r}: no provider of this module is pinned to one account (allowed_account_ids)"
        return f"account {account!r} is not one of the pinned accounts {sorted(pinned)}"

    def _resource_problem(self, value: str, pinned: set[str]) -> str | None:
        """Why ``value`` may name a role outside our accounts; None when it cannot, or is ours."""
        if value.startswith("arn:"):
            arn = c.parse_arn(value)
            if arn is None:
                return "not a complete ARN" + (" (the wildcard spans every field)" if c.has_wildcard(value) else "")
            if not fnmatch.fnmatchcase("iam", arn.service) or not c.could_start_with(arn.resource, "role/"):
                return None  # another service, or an IAM user/policy/...: cannot be assumed
            return self._account_problem(arn.account, pinned)
        ref = c.parse_reference(value)
        if ref is not None and not ref.data and ref.type.startswith("aws_") and ref.type != "aws_iam_role":
            return None  # a resource of another type is never a role
        if ref is not None and ref.type == "aws_iam_role" and not ref.data and ref.attr == "arn":
            if ref.rest:
                return f"{ref.rest!r} after the role ARN extends it to other roles"
            if c.find_block(self.scope, "resource", "aws_iam_role", ref.name) is None:
                return f"aws_iam_role.{ref.name} is not declared in this module"
            return None
        if c.has_wildcard(value):
            return "the wildcard names roles in every account"
        return "cannot prove which account this names"

    def evaluate(self, conf: dict[str, Any]) -> list[str]:
        if self.scope is None:
            return ["checkov graph unavailable: cannot read the provider accounts"]
        pinned = c.pinned_accounts(self.scope)
        problems: list[str] = []
        for label, raw in c.permission_policy_attrs(self, conf):
            policy = c.parse_policy(raw, self.scope)
            for index, stmt in enumerate(c.statements(policy)):
                if not c.is_allow(stmt) or not covers_assume_role(stmt):
                    continue
                where = c.statement_label(label, index, stmt)
                if "NotResource" in stmt:
                    problems.append(f"{where}: sts:AssumeRole with NotResource grants every other role")
                    continue
                resources = c.as_str_list(stmt.get("Resource"))
                if not resources:
                    problems.append(f"{where}: sts:AssumeRole without a Resource")
                for value in resources:
                    problem = self._resource_problem(value, pinned)
                    if problem:
                        problems.append(f"{where}: sts:AssumeRole on {value!r}: {problem}")
        return problems


check = AssumeRoleOwnAccounts()
