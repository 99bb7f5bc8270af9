"""CKV_MLP_009: pipeline data isolation - policies grant only this stack's own buckets and keys.

Why: each pipeline stack holds exactly one pipeline's artifact bucket and KMS key (the
foundation only the shared access-log bucket and the log keys). A role of the ``churn``
pipeline that is granted ``arn:aws:s3:::mlpipe-fraud-artifacts-.../data/*``, ``arn:aws:s3:::mlpipe-*``
or ``kms:Decrypt`` on ``*`` can read another pipeline's training data and models. References to
the stack's own resources can never point into another stack, so they are the only accepted form.

Rule, for every Allow statement of an identity policy (``aws_iam_policy``,
``aws_iam_role_policy``, ``aws_iam_user_policy``, ``aws_iam_group_policy``, ``aws_iam_role``
inline policies), an S3 bucket policy, or a KMS key policy (``aws_kms_key``,
``aws_kms_key_policy``):

* when its actions cover S3 (``s3:``, ``s3-object-lambda:``, ``s3express:`` actions, incl.
  ``s3:*``/``*``/NotAction), every S3 resource must be ``aws_s3_bucket.<n>.arn``, optionally
  followed by ``/<path>``, with ``aws_s3_bucket.<n>`` declared in the same module; in a bucket
  policy ``<n>`` must be the bucket the policy is attached to (its ``bucket`` argument:
  ``aws_s3_bucket.<n>.id``/``.bucket`` or that bucket's literal name; a bucket policy attached
  to anything else - a variable, a bucket not declared here - FAILS as a whole). Literal S3
  ARNs (another pipeline's bucket, ``arn:aws:s3:::mlpipe-*``, even this stack's bucket written out),
  ``"${aws_s3_bucket.x.arn}*"`` (a name prefix), undeclared references, ``data.aws_s3_*``
  lookups and any other ``aws_s3_*`` reference FAIL;
* in an identity policy, when its actions cover KMS (``kms:``), every KMS resource must be
  ``aws_kms_key.<n>.arn`` with the key declared in the same module. Literal key ARNs,
  ``key/*``, ``.key_id``/``.id`` (not an ARN), aliases and ``data.aws_kms_*`` lookups FAIL;
* a resource that could be anything - ``*`` (except in a key policy, where ``*`` means the key
  itself), ``arn:aws:*:...``, ``var.x``/``local.x``/``module.x``, a non-AWS reference such as
  ``data.terraform_remote_state.f.outputs.x``, an attribute other than ``arn`` - FAILS in such a
  statement; ``NotResource`` and a missing Resource FAIL;
* resources of other services (``arn:aws:logs:...``, ``aws_sqs_queue.q.arn``,
  ``data.aws_iam_role.r.arn``) are not checked;
  nor are Condition values (``aws:SourceArn`` patterns narrow a grant, they do not widen it) nor
  Deny statements. An unreadable policy fails.
"""

from __future__ import annotations

from typing import Any

if __package__:
    from . import common as c
else:  # loaded by checkov as a top-level module
    import common as c  # type: ignore[no-redef]

_S3_SERVICES = ("s3", "s3-object-lambda", "s3express")
_KEY_POLICY = ("aws_kms_key", "aws_kms_key_policy")

S3, KMS, ANY, UNKNOWN, OTHER = "s3", "kms", "any", "unknown", "other"


def classify(value: str) -> tuple[str, c.Reference | None]:
    """What a normalised Resource value can name: S3, KMS, ANY (wildcard), UNKNOWN or OTHER."""
    if value.startswith("arn:"):
        arn = c.parse_arn(value)
        if arn is None or c.has_wildcard(arn.service):
            return (ANY if c.has_wildcard(value) else UNKNOWN), None
        if arn.service.startswith("s3"):
            return S3, None
        return (KMS if arn.service == "kms" else OTHER), None
    ref = c.parse_reference(value)
    if ref is None:
        return (ANY if c.has_wildcard(value) else UNKNOWN), None
    if ref.type.startswith("aws_s3"):
        return S3, ref
    if ref.type.startswith("aws_kms"):
        return KMS, ref
    if ref.type.startswith("aws_") and ref.attr == "arn":
        return OTHER, ref
    return UNKNOWN, ref  # e.g. data.terraform_remote_state.x.outputs.y, aws_ssm_parameter.p.value


class PipelineDataIsolation(c.FailClosedCheck):
    """Flags S3/KMS resources that are not this stack's own bucket or key."""

    def __init__(self) -> None:
        super().__init__(
            name="Policies grant S3/KMS access only to this stack's own buckets and keys",
            id="CKV_MLP_009",
            supported_resources=(*c.IDENTITY_POLICY_RESOURCES, "aws_s3_bucket_policy", *_KEY_POLICY),
        )

    def _attached_bucket(self, conf: dict[str, Any]) -> tuple[str | None, str | None]:
        """(name of the aws_s3_bucket this bucket policy is attached to, or None; problem)."""
        values = c.as_str_list(conf.get("bucket"))
        if len(values) != 1:
            return None, "bucket policy without a readable bucket argument"
        value = values[0]
        ref = c.parse_reference(value)
        if ref and not ref.data and ref.type == "aws_s3_bucket" and ref.attr in ("id", "bucket") and not ref.rest:
            name = ref.name
        else:  # checkov substitutes aws_s3_bucket.<n>.bucket by the literal name
            named = [
                b.name
                for b in c.blocks(self.scope, "resource", "aws_s3_bucket")
                if c.as_str_list(b.conf.get("bucket")) == [value]
            ]
            if len(named) != 1:
                return None, f"bucket policy is attached to {value!r}, not to a bucket declared in this module"
            name = named[0]
        if c.find_block(self.scope, "resource", "aws_s3_bucket", name) is None:
            return None, f"bucket policy is attached to aws_s3_bucket.{name}, which is not declared in this module"
        return name, None

    def _bucket_problem(self, value: str, ref: c.Reference | None, attached: str | None) -> str | None:
        if ref is None:
            if c.has_wildcard(value.split("/", 1)[0]):
                return "a bucket-name pattern also matches other pipelines' buckets; use aws_s3_bucket.<n>.arn"
            return "a literal S3 ARN is not provably this stack's bucket; use aws_s3_bucket.<n>.arn"
        if ref.data:
            return f"data.{ref.type} looks up a bucket outside this configuration"
        if ref.type != "aws_s3_bucket" or ref.attr != "arn":
            return f"{ref.type}.{ref.name}.{ref.attr} is not a bucket ARN (aws_s3_bucket.<n>.arn)"
        if ref.rest and not ref.rest.startswith("/"):
            return f"{ref.rest!r} right after the bucket ARN extends the bucket name to other buckets"
        if c.find_block(self.scope, "resource", "aws_s3_bucket", ref.name) is None:
            return f"aws_s3_bucket.{ref.name} is not declared in this module"
        if attached is not None and ref.name != attached:
            return f"not the bucket this policy is attached to (aws_s3_bucket.{attached})"
        return None

    def _key_problem(self, ref: c.Reference | None) -> str | None:
        if ref is None:
            return "a literal KMS ARN is not provably this stack's key; use aws_kms_key.<n>.arn"
        if ref.data:
            return f"data.{ref.type} looks up a key outside this configuration"
        if ref.type != "aws_kms_key" or ref.attr != "arn" or ref.rest:
            return f"{ref.type}.{ref.name}.{ref.attr}{ref.rest} is not a key ARN (aws_kms_key.<n>.arn)"
        if c.find_block(self.scope, "resource", "aws_kms_key", ref.name) is None:
            return f"aws_kms_key.{ref.name} is not declared in this module"
        return None

    def evaluate(self, conf: dict[str, Any]) -> list[str]:
        if self.scope is None:
            return ["checkov graph unavailable: cannot prove resources are this stack's own"]
        identity = self.entity_type in c.IDENTITY_POLICY_RESOURCES
        key_policy = self.entity_type in _KEY_POLICY
        attached: str | None = None
        if self.entity_type == "aws_s3_bucket_policy":
            attached, problem = self._attached_bucket(conf)
            if problem:
                return [problem]
        problems: list[str] = []
        for label, raw in c.permission_policy_attrs(self, conf):
            policy = c.parse_policy(raw, self.scope)
            for index, stmt in enumerate(c.statements(policy)):
                if not c.is_allow(stmt):
                    continue
                s3 = any(c.covers_service(stmt, service) for service in _S3_SERVICES)
                kms = identity and c.covers_service(stmt, "kms")
                if not (s3 or kms):
                    continue
                where = c.statement_label(label, index, stmt)
                granted = "/".join(n for n, on in (("S3", s3), ("KMS", kms)) if on)
                if "NotResource" in stmt:
                    problems.append(f"{where}: {granted} access with NotResource covers every other bucket/key")
                    continue
                resources = c.as_str_list(stmt.get("Resource"))
                if not resources:
                    problems.append(f"{where}: {granted} access without a Resource")
                for value in resources:
                    if key_policy and value == "*":
                        continue  # in a key policy "*" is the key itself
                    kind, ref = classify(value)
                    if kind == S3 and s3:
                        problem = self._bucket_problem(value, ref, attached)
                    elif kind == KMS and kms:
                        problem = self._key_problem(ref)
                    elif kind == ANY:
                        problem = f"wildcard resource covers every {granted} resource, other pipelines' included"
                    elif kind == UNKNOWN:
                        problem = "cannot prove this is a bucket/key of this stack"
                    else:
                        problem = None
                    if problem:
                        what = {S3: "S3", KMS: "KMS"}.get(kind, granted)
                        problems.append(f"{where}: {what} resource {value!r}: {problem}")
        return problems


check = PipelineDataIsolation()
