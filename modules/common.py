"""Pieces every account uses: where a construct lives, policy documents, roles, encrypted log groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf import Fn
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import (
    DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition,
    DataAwsIamPolicyDocumentStatementPrincipals,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from mlpipe.core.templates import render_policy
from modules.stack import ReadableStack

LOG_RETENTION_DAYS = 365


class AccountScope(Construct):
    """The constructs of one account in one stack; its parts are named ``<account>_<part>``.

    The pipeline is built in phases across accounts (roles first, because the shared key and
    bucket policies name them), so an account adds its parts one at a time.
    """

    def part(self, part_id: str) -> Construct:
        """The child scope ``part_id``, created on first use (resources in it are ``<account>_<part>``)."""
        child = self.node.try_find_child(part_id)
        return child if isinstance(child, Construct) else Construct(self, part_id)


@dataclass(frozen=True)
class AccountContext:
    """Where a construct lives: the provider of its account and the values its ARNs are built from."""

    provider: AwsProvider
    account_id: str
    region: str
    partition: str
    name_prefix: str  # the pipeline's `<prefix>-<pipeline>` (the platform prefix in the foundation)


def policy_document(scope: Construct, name: str, template: str, **values: Any) -> str:
    """Render a *resource* policy template (key, bucket, topic) to a ``jsonencode(...)`` expression.

    ``Fn.jsonencode`` (not ``json.dumps``) keeps Terraform references inside the document intact;
    synth lays the expression out over several lines. The document is recorded on the stack as
    ``<account>:<name>`` for the policy linter, the access proof and reviewers.
    """
    document = render_policy(template, **values)
    expression = Fn.jsonencode(document)
    _record(scope, name, document, expression)
    return expression


def iam_document(
    scope: Construct, construct_id: str, ctx: AccountContext, name: str, template: str, **values: Any
) -> str:
    """Render an identity or trust policy template as a ``data "aws_iam_policy_document"`` block.

    One ``statement`` block per Sid reads line by line in review, and checkov evaluates its full
    IAM rule set on the data source (it cannot on every ``jsonencode`` text: a reference that
    occurs twice in one document makes checkov 3.3.30 give up on the whole expression silently).
    Returns the document's ``.json``, recorded on the stack like ``policy_document``.
    """
    document = render_policy(template, **values)
    data = DataAwsIamPolicyDocument(
        scope,
        construct_id,
        provider=ctx.provider,
        version=document.get("Version", "2012-10-17"),
        statement=[_statement(s) for s in document["Statement"]],
    )
    _record(scope, name, document, data.json)
    return data.json


def _record(scope: Construct, name: str, document: Any, expression: str) -> None:
    stack = ReadableStack.of(scope)
    path = scope.node.scopes
    account = path[path.index(stack) + 1].node.id if len(path) > path.index(stack) + 1 else "stack"
    stack.record.policies.append((f"{account}:{name}", document, expression))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principals(value: Any) -> list[DataAwsIamPolicyDocumentStatementPrincipals]:
    if value == "*":
        return [DataAwsIamPolicyDocumentStatementPrincipals(type="*", identifiers=["*"])]
    return [
        DataAwsIamPolicyDocumentStatementPrincipals(type=kind, identifiers=_as_list(ids)) for kind, ids in value.items()
    ]


def _statement(statement: dict[str, Any]) -> DataAwsIamPolicyDocumentStatement:
    """One JSON statement as the data source's statement block (every element has a block form)."""
    known = {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    }
    if unknown := set(statement) - known:
        raise ValueError(f"statement {statement.get('Sid')}: no aws_iam_policy_document form for {sorted(unknown)}")
    conditions = [
        DataAwsIamPolicyDocumentStatementCondition(test=test, variable=key, values=[str(v) for v in _as_list(values)])
        for test, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
    ]
    return DataAwsIamPolicyDocumentStatement(
        sid=statement.get("Sid"),
        effect=statement.get("Effect"),
        actions=_as_list(statement["Action"]) if "Action" in statement else None,
        not_actions=_as_list(statement["NotAction"]) if "NotAction" in statement else None,
        resources=_as_list(statement["Resource"]) if "Resource" in statement else None,
        not_resources=_as_list(statement["NotResource"]) if "NotResource" in statement else None,
        principals=_principals(statement["Principal"]) if "Principal" in statement else None,
        not_principals=_principals(statement["NotPrincipal"]) if "NotPrincipal" in statement else None,
        condition=conditions or None,
    )


def service_role(
    scope: Construct, construct_id: str, ctx: AccountContext, name: str, service: str, label: str
) -> IamRole:
    """A role that only ``service``, acting for this account (aws:SourceAccount), may assume."""
    return IamRole(
        scope,
        construct_id,
        provider=ctx.provider,
        name=name,
        assume_role_policy=iam_document(
            scope,
            "trust",
            ctx,
            f"{name}/trust",
            "service_trust.json.j2",
            service=service,
            service_label=label,
            account_id=ctx.account_id,
        ),
    )


def cross_account_role(
    scope: Construct, construct_id: str, ctx: AccountContext, name: str, pipeline_role_arn: str
) -> IamRole:
    """A role only the pipeline's role (by ARN, not the account root) may assume."""
    return IamRole(
        scope,
        construct_id,
        provider=ctx.provider,
        name=name,
        assume_role_policy=iam_document(
            scope, "trust", ctx, f"{name}/trust", "cross_account_trust.json.j2", pipeline_role_arn=pipeline_role_arn
        ),
    )


def inline_policy(
    scope: Construct,
    construct_id: str,
    ctx: AccountContext,
    role: IamRole,
    role_name: str,
    template: str,
    **values: Any,
) -> IamRolePolicy:
    """Attach a rendered template as the role's inline policy (kept separate to avoid reference cycles)."""
    policy_name = template.removesuffix(".json.j2")
    return IamRolePolicy(
        scope,
        construct_id,
        provider=ctx.provider,
        name=policy_name,
        role=role.id,
        policy=iam_document(
            scope, "permissions", ctx, f"{role_name}/{policy_name}", template,
            partition=ctx.partition, region=ctx.region, account_id=ctx.account_id, name_prefix=ctx.name_prefix,
            **values,
        ),
    )  # fmt: skip


def managed_key(
    scope: Construct, ctx: AccountContext, alias: str, description: str, template: str, **values: Any
) -> KmsKey:
    """A rotating customer-managed key with its policy (recorded as ``<alias>/key-policy``) and alias.

    Both are named after ``scope`` (``aws_kms_key.<scope>``, ``aws_kms_alias.<scope>``).
    """
    key = KmsKey(
        scope,
        "kms_key",
        provider=ctx.provider,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy_document(
            scope,
            f"{alias}/key-policy",
            template,
            partition=ctx.partition,
            region=ctx.region,
            account_id=ctx.account_id,
            **values,
        ),
    )
    KmsAlias(scope, "kms_alias", provider=ctx.provider, name=alias, target_key_id=key.key_id)
    return key


def encrypted_log_group(
    scope: Construct, construct_id: str, ctx: AccountContext, name: str, key_arn: str
) -> CloudwatchLogGroup:
    """A log group encrypted with the account's logs key and kept for a year (audit retention)."""
    return CloudwatchLogGroup(
        scope,
        construct_id,
        provider=ctx.provider,
        name=name,
        retention_in_days=LOG_RETENTION_DAYS,
        kms_key_id=key_arn,
    )
