"""CKV_MLP_001: a role trust policy must not trust an account root or ``*`` without a Condition.

Why: trusting ``arn:aws:iam::<acct>:root`` (or a bare account id) delegates the decision to
every identity in that account that has ``sts:AssumeRole`` - the over-permissive pattern of the
original hand-written templates. ``*`` trusts the world. Both are allowed only when the
statement carries a Condition (e.g. ``aws:PrincipalArn``/``sts:ExternalId``), which narrows it.
``NotPrincipal`` in an Allow statement counts as a wildcard. An unreadable trust policy fails.
"""

from __future__ import annotations

from typing import Any

if __package__:
    from . import common as c
else:  # loaded by checkov as a top-level module
    import common as c  # type: ignore[no-redef]


class TrustPolicyNoRootOrWildcard(c.FailClosedCheck):
    """Flags Allow statements whose principal is an account root or a wildcard, unconditioned."""

    def __init__(self) -> None:
        super().__init__(
            name="Role trust policy must not trust an account root or * without a Condition",
            id="CKV_MLP_001",
            supported_resources=("aws_iam_role",),
        )

    def evaluate(self, conf: dict[str, Any]) -> list[str]:
        policy = c.parse_policy(conf.get("assume_role_policy"), self.scope)
        problems: list[str] = []
        for index, stmt in enumerate(c.statements(policy)):
            if not c.is_allow(stmt) or c.has_condition(stmt):
                continue
            for principal in c.principals(stmt):
                if principal.category in (c.ROOT, c.WILDCARD, c.ROLE_WILDCARD):
                    problems.append(
                        f"Statement[{index}] trusts {principal.kind} {principal.value!r} without a Condition"
                    )
        return problems


check = TrustPolicyNoRootOrWildcard()
