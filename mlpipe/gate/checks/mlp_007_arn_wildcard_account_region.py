"""CKV_MLP_007: resource ARNs name their account and region wherever the service has them.

Why: ``arn:aws:kms:*:*:key/*`` or ``arn:aws:sagemaker:eu-west-1:*:endpoint/x`` grants the same
action on that kind of resource in *every* account (and region) - including accounts outside
the pipeline's organisation wherever the resource's own policy lets the caller in. The pipeline
knows each account and region it deploys to, so every ARN it writes can carry them.

Rule, for every literal ARN in the ``Resource`` element of an Allow statement of an identity
policy (``aws_iam_policy``, ``aws_iam_role_policy``, ``aws_iam_user_policy``,
``aws_iam_group_policy``, ``aws_iam_role`` inline policies) or a resource policy (S3 bucket,
KMS key, SQS queue, SNS topic):

* the account field FAILS when it contains a wildcard (``*``, ``1111*``, ``?``), or when it is
  empty although the resource type has an account (see ``_NO_ACCOUNT``: S3 buckets/objects,
  Route 53, public EC2 images/snapshots, AWS-owned SSM documents and public parameters, API
  Gateway, Bedrock foundation models, public CloudFormation types, Elastic Beanstalk stacks,
  Braket devices, Artifact reports and Health events have none; anything not listed needs one);
* the region field FAILS when it contains a wildcard;
* an S3 bucket/object ARN FAILS when its bucket part is only wildcards (``arn:aws:s3:::*``,
  ``arn:aws:s3:::*/*``); a name pattern such as ``mlpipe-*`` is CKV_MLP_009's business;
* ``arn:...`` text that is not a complete six-field ARN FAILS (``arn:aws:*`` spans every field).

Out of scope: ``Resource: "*"`` alone (needed where the service has no resource-level
permissions, e.g. ``xray:PutTraceSegments``; CKV_MLP_003 and CKV_MLP_009 police stars), a KMS
key policy's ``*`` (the key itself), Terraform references (``aws_kms_key.x.arn``,
``"${aws_s3_bucket.x.arn}/data/*"``) and account/region fields filled by references, Deny
statements (a wider Deny only takes more away), ``NotResource`` and Condition values. An
unreadable policy fails.
"""

from __future__ import annotations

from typing import Any

if __package__:
    from . import common as c
else:  # loaded by checkov as a top-level module
    import common as c  # type: ignore[no-redef]

# service -> resource-type prefixes whose ARNs have an empty account field ("" = every type).
_NO_ACCOUNT: dict[str, tuple[str, ...]] = {
    "route53": ("",),
    "apigateway": ("",),
    "artifact": ("",),
    "ec2": ("image/", "snapshot/", "fpga-image/"),
    "ssm": ("document/", "parameter/aws/"),
    "bedrock": ("foundation-model/",),
    "cloudformation": ("type/",),
    "elasticbeanstalk": ("solutionstack/", "platform/"),
    "braket": ("device/",),
    "health": ("event/",),
}


def _empty_account_allowed(arn: c.Arn) -> bool:
    if arn.service == "s3":
        return arn.region == ""  # bucket/object ARNs; access points and jobs carry an account
    return any(arn.resource.startswith(prefix) for prefix in _NO_ACCOUNT.get(arn.service, ()))


def arn_problems(value: str) -> list[str]:
    """Why one normalised Resource value names resources in any account/region (empty: fine)."""
    if not value.startswith("arn:"):
        return []  # "*", references and references with a suffix
    arn = c.parse_arn(value)
    if arn is None:
        if c.has_wildcard(value):
            return ["the wildcard spans the account and region fields"]
        return ["not a complete ARN (arn:partition:service:region:account:resource)"]
    problems: list[str] = []
    if c.has_wildcard(arn.account):
        problems.append(f"wildcard account {arn.account!r}")
    elif not arn.account and not _empty_account_allowed(arn):
        problems.append(f"empty account although {arn.service} ARNs of this type have one")
    if c.has_wildcard(arn.region):
        problems.append(f"wildcard region {arn.region!r}")
    if arn.service == "s3" and not arn.region and not arn.account:
        bucket = arn.resource.split("/", 1)[0]
        if c.wildcard_only(bucket):
            problems.append(f"bucket part {bucket!r} names every bucket")
    return problems


class ArnWildcardAccountRegion(c.FailClosedCheck):
    """Flags Resource ARNs with a wildcard (or missing) account or a wildcard region."""

    def __init__(self) -> None:
        super().__init__(
            name="Resource ARNs must not use a wildcard account or region",
            id="CKV_MLP_007",
            supported_resources=(
                *c.IDENTITY_POLICY_RESOURCES,
                "aws_kms_key",
                "aws_kms_key_policy",
                "aws_s3_bucket_policy",
                "aws_sqs_queue_policy",
                "aws_sns_topic_policy",
            ),
        )

    def evaluate(self, conf: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        for label, raw in c.permission_policy_attrs(self, conf):
            policy = c.parse_policy(raw, self.scope)
            for index, stmt in enumerate(c.statements(policy)):
                if not c.is_allow(stmt):
                    continue
                for value in c.as_str_list(stmt.get("Resource")):
                    problems.extend(
                        f"{c.statement_label(label, index, stmt)}: resource {value!r}: {problem}"
                        for problem in arn_problems(value)
                    )
        return problems


check = ArnWildcardAccountRegion()
