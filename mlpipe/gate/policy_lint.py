"""Lint generated IAM/resource policies with parliament before they are synthesised.

Why: checkov's CKV_MLP_* checks judge *who* gets access; parliament knows the IAM action and
resource-type catalogue and catches what those checks cannot: misspelled actions
(``s3:GetObjekt`` - silently granting nothing), actions on the wrong resource type
(``s3:GetObject`` on a bucket ARN without ``/*`` - silently not matching), malformed elements.

parliament 1.6.4 (last release April 2025) works on Python 3.11 and fully offline: it ships
``iam_definition.json`` and reads it with ``pkg_resources`` at import time (so setuptools must be
installed, and older than the release that removes ``pkg_resources``).

Known false positives are dropped by a small, explicit allow-list (:data:`ALLOW_LIST`); each
entry says why it is safe. Everything else parliament reports is returned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import parliament


@dataclass(frozen=True)
class LintFinding:
    """One parliament finding that survived the allow-list."""

    policy: str
    issue: str
    severity: str
    detail: str


# A Terraform reference (``aws_iam_role.x.arn``, ``data.aws_caller_identity.c.account_id``), an
# interpolation (``${...}``) or a CDKTF token (``${TfToken[TOKEN.1]}``): values only known at apply.
_REFERENCE = re.compile(r"\$\{|TfToken\[|(?:^|[^\w:])(?:data\.)?aws_[a-z0-9_]+\.[\w-]+")
_TRUST_ACTIONS = re.compile(r"^sts:(AssumeRole\w*|TagSession|SetSourceIdentity|SetContext)$", re.I)


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    raw = document.get("Statement", [])
    items = raw if isinstance(raw, list) else [raw]
    return [s for s in items if isinstance(s, dict)]


def _is_resource_policy(document: dict[str, Any]) -> bool:
    statements = _statements(document)
    return bool(statements) and all("Principal" in s or "NotPrincipal" in s for s in statements)


def _is_trust_policy(document: dict[str, Any]) -> bool:
    if not _is_resource_policy(document):
        return False
    for stmt in _statements(document):
        acts = stmt.get("Action", [])
        acts = acts if isinstance(acts, list) else [acts]
        if not acts or not all(_TRUST_ACTIONS.match(str(a)) for a in acts):
            return False
    return True


def _mentions_reference(finding: Any) -> bool:
    location = finding.location if isinstance(finding.location, dict) else {}
    return bool(_REFERENCE.search(f"{finding.detail} {location.get('string', '')}"))


@dataclass(frozen=True)
class _Allowed:
    issue: str
    reason: str
    applies: Callable[[Any, dict[str, Any]], bool]


#: Known false positives. Each entry is narrow: an issue type plus a predicate.
ALLOW_LIST: tuple[_Allowed, ...] = (
    _Allowed(
        "UNKNOWN_PRINCIPAL",
        "parliament only recognises literal principals; a Terraform reference/CDKTF token is "
        "resolved at apply time and is judged by checkov CKV_MLP_006 instead",
        lambda f, _doc: _mentions_reference(f),
    ),
    _Allowed(
        "INVALID_ARN",
        "an ARN built from a Terraform reference (``${aws_s3_bucket.x.arn}/*``) is not an ARN "
        "until apply; placeholder text cannot have six ARN parts",
        lambda f, _doc: _mentions_reference(f),
    ),
    _Allowed(
        "MALFORMED",
        "a role trust policy has no Resource element by definition (the role is the resource)",
        lambda f, doc: "neither Resource nor NotResource" in str(f.detail) and _is_trust_policy(doc),
    ),
    _Allowed(
        "RESOURCE_STAR",
        "in a resource policy (every statement has a Principal) Resource '*' means the resource "
        "the policy is attached to; a KMS key policy must use '*'",
        lambda f, doc: _is_resource_policy(doc),
    ),
    _Allowed(
        "MISMATCHED_TYPE_BUT_USABLE",
        "AWS documents String operators for ARN-valued keys such as "
        "s3:x-amz-server-side-encryption-aws-kms-key-id; parliament itself rates it usable",
        lambda f, _doc: "requires a value of type String but given Arn" in str(f.detail),
    ),
    _Allowed(
        "RESOURCE_MISMATCH",
        "parliament 1.6.4's IAM data lists only the express-execution ARN for "
        "states:DescribeExecution; AWS's service authorization reference also accepts standard "
        "execution ARNs (arn:...:states:region:account:execution:machine:*), which we use",
        lambda f, _doc: (
            isinstance(f.detail, list)
            and bool(f.detail)
            and all(d.get("action") == "states:DescribeExecution" for d in f.detail if isinstance(d, dict))
        ),
    ),
)


def _allowed(finding: Any, document: dict[str, Any]) -> bool:
    return any(a.issue == finding.issue and a.applies(finding, document) for a in ALLOW_LIST)


def lint_policy(name: str, document: dict[str, Any]) -> list[LintFinding]:
    """Return parliament's findings for one policy document, minus known false positives."""
    policy = parliament.analyze_policy_string(json.dumps(document, default=str))
    findings: list[LintFinding] = []
    for finding in policy.findings:
        if _allowed(finding, document):
            continue
        try:
            parliament.enhance_finding(finding)  # adds severity/title from parliament's config
        except Exception:  # an issue type missing from parliament's config keeps no severity
            finding.severity = "UNKNOWN"
        detail = (
            finding.detail
            if isinstance(finding.detail, str)
            else json.dumps(finding.detail, default=str, sort_keys=True)
        )
        findings.append(LintFinding(name, finding.issue, str(finding.severity), detail))
    return findings


def lint_policies(docs: dict[str, dict[str, Any]]) -> list[LintFinding]:
    """Lint several named policy documents; findings are returned in name order."""
    findings: list[LintFinding] = []
    for name in sorted(docs):
        findings.extend(lint_policy(name, docs[name]))
    return findings
