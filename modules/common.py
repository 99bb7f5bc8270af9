"""Pieces every account uses: policy documents, checkov skips, a logs key, encrypted log groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf import Fn, TerraformResource
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from mlpipe.core.templates import render_policy

LOG_RETENTION_DAYS = 365
CHECKOV_SKIP_METADATA = "checkov_skip"

# Every document rendered during this synth, in order: synth resolves them and writes them out for
# the policy linter and for reviewers (`rendered-policies.json` next to the HCL).
RENDERED_POLICIES: list[tuple[str, dict[str, Any]]] = []


def policy_document(template: str, **values: Any) -> str:
    """Render a policy template to a Terraform `jsonencode(...)` expression.

    `Fn.jsonencode` (not `json.dumps`) keeps Terraform references inside the document intact in
    the HCL output; `json.dumps` would break tokens.
    """
    document = render_policy(template, **values)
    RENDERED_POLICIES.append((template, document))
    return Fn.jsonencode(document)


def skip_check(resource: TerraformResource, check_id: str, reason: str) -> None:
    """Declare a checkov skip for one resource; synth writes it as an inline `# checkov:skip` comment.

    Skips live next to the resource they concern, always with a reason; there is no global list.
    """
    if not reason.strip():
        raise ValueError(f"checkov skip {check_id} on {resource.node.path} needs a written reason")
    resource.node.add_metadata(CHECKOV_SKIP_METADATA, {"check": check_id, "reason": reason})


@dataclass(frozen=True)
class AccountContext:
    """Where a construct lives: the provider of its account and the values its ARNs are built from."""

    provider: AwsProvider
    account_id: str
    region: str
    partition: str
    name_prefix: str


def service_role(
    scope: Construct, construct_id: str, ctx: AccountContext, name: str, service: str, label: str
) -> IamRole:
    """A role that only `service`, acting for this account (aws:SourceAccount), may assume."""
    return IamRole(
        scope,
        construct_id,
        provider=ctx.provider,
        name=name,
        assume_role_policy=policy_document(
            "service_trust.json.j2", service=service, service_label=label, account_id=ctx.account_id
        ),
    )


def inline_policy(
    scope: Construct, construct_id: str, ctx: AccountContext, role: IamRole, template: str, **values: Any
) -> IamRolePolicy:
    """Attach a rendered template as the role's inline policy (kept separate to avoid reference cycles)."""
    return IamRolePolicy(
        scope,
        construct_id,
        provider=ctx.provider,
        name=template.removesuffix(".json.j2"),
        role=role.id,
        policy=policy_document(
            template, partition=ctx.partition, region=ctx.region, account_id=ctx.account_id,
            name_prefix=ctx.name_prefix, **values,
        ),
    )  # fmt: skip


class AccountLogsKey(Construct):
    """A customer-managed key per workload account for its log groups, queues and Lambda environment.

    CloudWatch Logs encrypts with a key in the log group's own account, so the shared data key
    cannot serve here; this key is used only inside its account.
    """

    def __init__(self, scope: Construct, construct_id: str, ctx: AccountContext, key_user_arns: list[str]) -> None:
        super().__init__(scope, construct_id)
        self.key = KmsKey(
            self,
            "key",
            provider=ctx.provider,
            description=f"{ctx.name_prefix}: logs, queues and Lambda environment in this account",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy_document(
                "key_policy.json.j2",
                partition=ctx.partition,
                region=ctx.region,
                account_id=ctx.account_id,
                key_user_arns=key_user_arns,
                grant_user_arns=[],
                log_service=True,
            ),
        )
        KmsAlias(
            self,
            "alias",
            provider=ctx.provider,
            name=f"alias/{ctx.name_prefix}-logs",
            target_key_id=self.key.key_id,
        )


def encrypted_log_group(
    scope: Construct, construct_id: str, ctx: AccountContext, name: str, key: KmsKey
) -> CloudwatchLogGroup:
    """A log group encrypted with the account's key and kept for a year (audit retention)."""
    return CloudwatchLogGroup(
        scope,
        construct_id,
        provider=ctx.provider,
        name=name,
        retention_in_days=LOG_RETENTION_DAYS,
        kms_key_id=key.arn,
    )
