"""CKV_MLP_006: every AWS principal in a resource policy is a role this configuration creates.

Why: the pipeline spans accounts, and the only cross-account identities it should trust are
the roles it creates itself - their ARNs are then known, reviewed and scoped. Applies to role
trust policies, KMS key policies, bucket policies, SQS and SNS policies; Allow statements only.

Passes: ``aws_iam_role.<name>.arn`` (either ``"${...}"`` or bare; checkov shows both as the
plain ``aws_iam_role.<name>.arn``) where ``aws_iam_role.<name>`` exists in the configuration;
service principals (scoped by CKV_MLP_002 for keys); and, in a KMS key policy only, the key's
own account root in an administrative-only statement (same rule as CKV_MLP_002: the account is
the key's own when read from ``data.aws_caller_identity`` through the key's provider, or when a
literal root ARN names the one account the key's provider pins with ``allowed_account_ids``).

Fails: ``*``, ``NotPrincipal``, any literal role ARN (``arn:aws:iam::222222222222:role/x``) -
its account cannot be proven to be one of ours - ``role/*`` wildcards, users, any account root
outside that KMS admin case (including ``:root`` of another account and bare account ids),
federated/canonical-user principals and unresolvable references (``var.x``).
"""

from __future__ import annotations

from typing import Any

if __package__:
    from . import common as c
else:  # loaded by checkov as a top-level module
    import common as c  # type: ignore[no-redef]

_KMS = ("aws_kms_key", "aws_kms_key_policy")


class PrincipalsAreOwnRoles(c.FailClosedCheck):
    """Flags resource-policy principals that are not roles created in this configuration."""

    def __init__(self) -> None:
        super().__init__(
            name="Resource-policy AWS principals must be roles created by this configuration",
            id="CKV_MLP_006",
            supported_resources=(
                "aws_iam_role",
                "aws_kms_key",
                "aws_kms_key_policy",
                "aws_s3_bucket_policy",
                "aws_sqs_queue_policy",
                "aws_sns_topic_policy",
            ),
        )

    def evaluate(self, conf: dict[str, Any]) -> list[str]:
        if self.scope is None:
            return ["checkov graph unavailable: cannot prove principals are our roles"]
        provider = c.provider_of(conf)
        if self.entity_type == "aws_iam_role":
            attrs = [("assume_role_policy", conf.get("assume_role_policy"))]
        else:
            attrs = self.policy_attrs(conf)
        problems: list[str] = []
        for label, raw in attrs:
            policy = c.parse_policy(raw, self.scope)
            for index, stmt in enumerate(c.statements(policy)):
                if not c.is_allow(stmt):
                    continue
                for p in c.principals(stmt):
                    if p.category == c.SERVICE:
                        continue
                    if p.category == c.ROLE_REF and c.role_exists(self.scope, p.value):
                        continue
                    if (
                        p.category == c.ROOT
                        and self.entity_type in _KMS
                        and c.is_own_root(self.scope, p.value, provider)
                        and c.is_kms_admin_only(stmt)
                    ):
                        continue
                    problems.append(
                        f"{label} Statement[{index}]: {p.kind} principal {p.value!r} "
                        f"({p.category}) is not a role created by this configuration"
                    )
        return problems


check = PrincipalsAreOwnRoles()
