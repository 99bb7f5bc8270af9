"""Turn the policies of one synth into plain JSON documents a linter (and a reviewer) can read.

In the HCL, policies hold Terraform references (`${aws_iam_role.x.arn}`). Linters need ARNs, so
each reference becomes a placeholder ARN of the referenced resource's type, named after its
logical id; the structure, actions, conditions and resource shapes stay exactly as synthesized.
"""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER_ACCOUNT = "123456789012"
REFERENCE = re.compile(r"\$\{(?:data\.)?([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}")

_ARN_FORMATS = {
    ("aws_iam_role", "arn"): "arn:aws:iam::{account}:role/{name}",
    ("aws_s3_bucket", "arn"): "arn:aws:s3:::{bucket}",
    ("aws_s3_bucket", "bucket"): "{bucket}",
    ("aws_s3_bucket", "id"): "{bucket}",
    ("aws_kms_key", "arn"): "arn:aws:kms:{region}:{account}:key/0f0e0d0c-0b0a-4000-8000-{hexname}",
    ("aws_sfn_state_machine", "arn"): "arn:aws:states:{region}:{account}:stateMachine:{name}",
    ("aws_lambda_function", "arn"): "arn:aws:lambda:{region}:{account}:function:{name}",
    ("aws_codecommit_repository", "arn"): "arn:aws:codecommit:{region}:{account}:{name}",
    ("aws_codepipeline", "arn"): "arn:aws:codepipeline:{region}:{account}:{name}",
    ("aws_cloudwatch_log_group", "arn"): "arn:aws:logs:{region}:{account}:log-group:{name}",
    ("aws_sqs_queue", "arn"): "arn:aws:sqs:{region}:{account}:{name}",
    ("aws_sns_topic", "arn"): "arn:aws:sns:{region}:{account}:{name}",
    ("aws_cloudwatch_metric_alarm", "arn"): "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    ("aws_cloudwatch_event_rule", "arn"): "arn:aws:events:{region}:{account}:rule/{name}",
}


def placeholder_for(resource_type: str, name: str, attribute: str, region: str) -> str:
    """A syntactically valid value standing in for `resource_type.name.attribute`."""
    fmt = _ARN_FORMATS.get((resource_type, attribute))
    if fmt is None:
        raise ValueError(f"no placeholder for {resource_type}.{attribute} (add it to _ARN_FORMATS)")
    bucket = re.sub(r"[^a-z0-9-]", "-", name.lower())[:63]
    hexname = (name.encode().hex() + "0" * 12)[:12]
    return fmt.format(account=PLACEHOLDER_ACCOUNT, region=region, name=name, bucket=bucket, hexname=hexname)


def with_placeholders(node: Any, region: str) -> Any:
    """Replace every Terraform reference inside `node` (resolved strings) by a placeholder."""
    if isinstance(node, dict):
        return {key: with_placeholders(value, region) for key, value in node.items()}
    if isinstance(node, list):
        return [with_placeholders(value, region) for value in node]
    if isinstance(node, str):
        return REFERENCE.sub(lambda m: placeholder_for(m.group(1), m.group(2), m.group(3), region), node)
    return node
