"""CKV_MLP_002: a KMS key policy grants key use only to named roles; root only administers.

Rule (Allow statements only; Deny statements never widen access):

* ``*`` / ``{"AWS": "*"}`` / ``NotPrincipal`` / a wildcard role ARN / a user / an unknown
  reference: FAIL in any statement.
* An account root (``arn:...:iam::<acct>:root`` or a bare id): allowed only when (a) the account
  is provably the key's own - either ``data.aws_caller_identity.<n>.account_id`` read through the
  same provider alias as the key, or a literal root ARN whose id is the single
  ``allowed_account_ids`` entry of the key's own provider block (alias or default) in this
  module; any other literal id, a bare id, or a provider pinned to several / unknown accounts
  does not count - and (b) *every* action of the statement is administrative: one of
  ``kms:Create* Describe* Enable* List* Put* Update* Revoke* Disable* Get* Delete* TagResource
  UntagResource ScheduleKeyDeletion CancelKeyDeletion RotateKeyOnDemand`` or a concrete action
  covered by those that is not a use action. So ``kms:*`` to root - AWS's default key policy -
  FAILS: it lets any principal in the account that IAM allows use the key, bypassing the
  named-role design. ``kms:Create*`` is accepted because it is AWS's documented admin pattern
  even though it covers ``kms:CreateGrant``.
* Service principals (``logs.<region>.amazonaws.com``): only with a Condition
  (e.g. ``kms:EncryptionContext:aws:logs:arn``), because otherwise any customer's use of the
  service could use the key.
* Roles (``aws_iam_role.<n>.arn`` references or literal non-wildcard role ARNs) may be granted
  use. Whether a literal role ARN is acceptable cross-account is CKV_MLP_006's job.

An ``aws_kms_key`` without ``policy`` gets AWS's default policy (``kms:*`` to root) and fails,
unless an ``aws_kms_key_policy`` in the configuration targets it (that resource is then checked).
"""

from __future__ import annotations

import re
from typing import Any

if __package__:
    from . import common as c
else:  # loaded by checkov as a top-level module
    import common as c  # type: ignore[no-redef]

_KEY_REF = re.compile(r"^aws_kms_key\.([\w-]+)(?:\[[^\]]*\])?\.(?:id|key_id|arn)$")


class KmsKeyPolicyUse(c.FailClosedCheck):
    """Flags key policies that grant use to anything but named roles, or root beyond admin."""

    def __init__(self) -> None:
        super().__init__(
            name="KMS key policy grants key use only to named roles; root only administers",
            id="CKV_MLP_002",
            supported_resources=("aws_kms_key", "aws_kms_key_policy"),
        )

    def _has_separate_policy(self, conf: dict[str, Any]) -> bool:
        name = str(conf.get("__address__", "")).split(".", 1)[-1].split("[", 1)[0]
        for block in c.blocks(self.scope, "resource", "aws_kms_key_policy"):
            for value in c.as_str_list(block.conf.get("key_id")):
                match = _KEY_REF.match(value)
                if match and match.group(1) == name:
                    return True
        return False

    def evaluate(self, conf: dict[str, Any]) -> list[str]:
        if self.entity_type == "aws_kms_key" and conf.get("policy") is None:
            if self.scope is None:
                return ["no policy and no graph to find an aws_kms_key_policy (fail-closed)"]
            if self._has_separate_policy(conf):
                return []
            return ["no key policy: AWS's default policy grants kms:* to the account root"]
        policy = c.parse_policy(conf.get("policy"), self.scope)
        provider = c.provider_of(conf)
        problems: list[str] = []
        for index, stmt in enumerate(c.statements(policy)):
            if not c.is_allow(stmt):
                continue
            where = f"Statement[{index}]"
            for p in c.principals(stmt):
                if p.category in (c.ROLE_REF, c.ROLE_ARN):
                    continue
                if p.category == c.SERVICE:
                    if not c.has_condition(stmt):
                        problems.append(f"{where}: service {p.value} without a Condition")
                    continue
                if p.category == c.ROOT:
                    if not c.is_own_root(self.scope, p.value, provider):
                        problems.append(f"{where}: root {p.value!r} is not the key's own account")
                    elif not c.is_kms_admin_only(stmt):
                        problems.append(f"{where}: root {p.value!r} gets non-administrative actions {c.actions(stmt)}")
                    continue
                problems.append(f"{where}: {p.kind} principal {p.value!r} ({p.category})")
        return problems


check = KmsKeyPolicyUse()
