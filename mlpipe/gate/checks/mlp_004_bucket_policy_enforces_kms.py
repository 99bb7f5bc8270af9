"""CKV_MLP_004: a KMS-encrypted bucket's policy enforces that key and TLS; no AES256 mismatch.

Checked on each ``aws_s3_bucket`` using checkov's resource graph (the bucket, its
``aws_s3_bucket_server_side_encryption_configuration`` and its ``aws_s3_bucket_policy`` are
separate resources; a per-resource check cannot relate them).

When the bucket's default encryption is ``aws:kms`` (separate resource or the legacy inline
block), it must have a bucket policy with three *separate* Deny statements, each with
``Principal: "*"`` (or ``{"AWS": "*"}``) and exactly the one condition named:

(a) ``s3:PutObject`` on the objects when ``StringNotEquals`` ``s3:x-amz-server-side-encryption``
    is not ``aws:kms``;
(b) ``s3:PutObject`` on the objects when ``StringNotEquals``
    ``s3:x-amz-server-side-encryption-aws-kms-key-id`` is not ``aws_kms_key.<k>.arn``, where
    ``<k>`` is the key the encryption configuration uses (``kms_master_key_id`` must name it);
(c) ``s3:*`` (or ``*``) on the bucket and its objects when ``Bool`` ``aws:SecureTransport`` is
    ``false``.

Separate statements are required because keys inside one Condition are ANDed: a single Deny
with both (a) and (b) keys only denies when *both* are wrong, which lets a request with the
right algorithm but another key through.

When default encryption is not ``aws:kms`` (AES256, DSSE or absent = SSE-S3) but a bucket
policy demands ``aws:kms``, the bucket FAILS as a mismatch (uploads relying on default
encryption would be denied; the intent was clearly KMS). Unreadable policies fail.
"""

from __future__ import annotations

import re
from typing import Any

if __package__:
    from . import common as c
else:  # loaded by checkov as a top-level module
    import common as c  # type: ignore[no-redef]

_SSE = "s3:x-amz-server-side-encryption"
_SSE_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"
_KEY_REF = re.compile(r"^aws_kms_key\.([\w-]+(?:\[[^\]]*\])?)\.(arn|id|key_id)$")


def _targets(value: Any, bucket: str, literal: str) -> bool:
    """True when a ``bucket`` argument names this bucket.

    checkov substitutes references to *literal* attributes: ``aws_s3_bucket.x.bucket`` arrives
    as the bucket's name, so the literal name matches too (``.id`` stays a reference).
    """
    pattern = rf"^aws_s3_bucket\.{re.escape(bucket)}(?:\[[^\]]*\])?\.(?:id|bucket)$"
    return any(re.match(pattern, v) or (literal and v == literal) for v in c.as_str_list(value))


def _only_condition(stmt: c.Statement) -> tuple[str, str, list[str]] | None:
    """(operator, key, values) when the Condition has exactly one operator and one key."""
    condition = stmt.get("Condition")
    if not isinstance(condition, dict) or len(condition) != 1:
        return None
    op, body = next(iter(condition.items()))
    if not isinstance(body, dict) or len(body) != 1:
        return None
    key, values = next(iter(body.items()))
    return str(op).lower(), str(key).lower(), c.as_str_list(values)


def _denies_everyone(stmt: c.Statement) -> bool:
    if c.is_allow(stmt) or "NotPrincipal" in stmt:
        return False
    return any(p.category == c.WILDCARD and p.value == "*" for p in c.principals(stmt))


class BucketPolicyEnforcesKms(c.FailClosedCheck):
    """Relates bucket, encryption configuration and bucket policy through the graph."""

    def __init__(self) -> None:
        super().__init__(
            name="KMS bucket policy denies non-KMS, wrong-key and non-TLS requests",
            id="CKV_MLP_004",
            supported_resources=("aws_s3_bucket",),
        )

    def _encryption(self, name: str, literal: str, conf: dict[str, Any]) -> list[tuple[str, str]]:
        """(sse_algorithm, kms_master_key_id) of every default-encryption rule of the bucket."""
        configs = [
            b.conf
            for b in c.blocks(self.scope, "resource", "aws_s3_bucket_server_side_encryption_configuration")
            if _targets(b.conf.get("bucket"), name, literal)
        ]
        configs.extend(
            sse for sse in c.as_list(conf.get("server_side_encryption_configuration")) if isinstance(sse, dict)
        )
        rules: list[tuple[str, str]] = []
        for sse in configs:
            for rule in c.as_list(sse.get("rule")):
                for default in c.as_list(rule.get("apply_server_side_encryption_by_default")):
                    algorithm = c.strip_interpolation(str(c.unwrap(default.get("sse_algorithm"))))
                    key = default.get("kms_master_key_id")
                    key_str = c.strip_interpolation(str(c.unwrap(key))) if key else ""
                    rules.append((algorithm, key_str))
        return rules

    def _covers(self, stmt: c.Statement, name: str, literal: str, objects: bool) -> bool:
        resources = c.as_str_list(stmt.get("Resource"))
        suffix = "/*" if objects else ""
        wanted = {"*", f"aws_s3_bucket.{name}.arn{suffix}"}
        if literal:
            wanted.add(f"arn:aws:s3:::{literal}{suffix}")
        return any(r in wanted for r in resources)

    def evaluate(self, conf: dict[str, Any]) -> list[str]:
        if self.scope is None:
            return ["checkov graph unavailable: cannot relate bucket, encryption and policy"]
        name = str(conf.get("__address__", "")).split(".", 1)[-1].split("[", 1)[0]
        literal = c.strip_interpolation(str(c.unwrap(conf.get("bucket")) or ""))
        rules = self._encryption(name, literal, conf)
        policies = [
            c.parse_policy(b.conf.get("policy"), self.scope)
            for b in c.blocks(self.scope, "resource", "aws_s3_bucket_policy")
            if _targets(b.conf.get("bucket"), name, literal)
        ]
        stmts = [s for p in policies for s in c.statements(p)]
        demands_kms = any(
            "aws:kms" in (c.condition_values(s, "StringNotEquals", _SSE) or []) for s in stmts if not c.is_allow(s)
        )
        kms_rules = [r for r in rules if r[0] == "aws:kms"]
        if not kms_rules:
            if demands_kms:
                current = ", ".join(r[0] for r in rules) or "none (SSE-S3/AES256 default)"
                return [f"bucket policy demands aws:kms but default encryption is {current}"]
            return []
        problems: list[str] = []
        if len(kms_rules) != len(rules):
            problems.append(f"mixed default encryption rules {rules}")
        if not policies:
            return [*problems, "KMS-encrypted bucket has no aws_s3_bucket_policy"]
        keys = {k for _, k in kms_rules}
        if len(keys) != 1 or not next(iter(keys)):
            return [*problems, f"kms_master_key_id must name exactly one key, found {keys}"]
        key = next(iter(keys))
        match = _KEY_REF.match(key)
        expected_key = f"aws_kms_key.{match.group(1)}.arn" if match else key

        denies = [s for s in stmts if _denies_everyone(s)]
        puts = [
            s
            for s in denies
            if c.action_matches(c.actions(s), "s3:PutObject") and self._covers(s, name, literal, objects=True)
        ]
        if not any(_only_condition(s) == ("stringnotequals", _SSE, ["aws:kms"]) for s in puts):
            problems.append("(a) no Deny s3:PutObject when s3:x-amz-server-side-encryption StringNotEquals aws:kms")
        if not any(_only_condition(s) == ("stringnotequals", _SSE_KEY, [expected_key]) for s in puts):
            problems.append(
                f"(b) no Deny s3:PutObject when {_SSE_KEY} StringNotEquals {expected_key} (the bucket's encryption key)"
            )
        tls = [
            s
            for s in denies
            if any(a in ("s3:*", "*") for a in c.actions(s))
            and self._covers(s, name, literal, objects=False)
            and self._covers(s, name, literal, objects=True)
        ]
        if not any(
            (cond := _only_condition(s)) is not None
            and cond[:2] == ("bool", "aws:securetransport")
            and [v.lower() for v in cond[2]] == ["false"]
            for s in tls
        ):
            problems.append("(c) no Deny s3:* on bucket and objects when aws:SecureTransport is false")
        return problems


check = BucketPolicyEnforcesKms()
