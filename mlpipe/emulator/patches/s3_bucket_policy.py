"""S3 bucket policies: conditions evaluated like S3 does, fed with the request's context.

Fixes: every ``aws_s3_object`` upload answered 403 under our bucket policy (moto 5.2.5 evaluates only
``StringEquals``, counts any other operator as true and turns a failed condition into a Deny), so the
deny-unencrypted / deny-other-key / TLS-only statements denied everything.
"""

from __future__ import annotations

import fnmatch
import json
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Header a local test may send to make a request count as plain HTTP for ``aws:SecureTransport``.
#: The emulator only listens on loopback over HTTP, so every other request counts as secure.
INSECURE_TRANSPORT_HEADER = "x-mlpipe-emulator-insecure-transport"

_REQUEST = threading.local()


@dataclass
class S3RequestContext:
    """What the bucket policy of an object request is evaluated against."""

    method: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    account: str
    source_ip: str
    secure: bool

    def condition_keys(self) -> dict[str, list[str]]:
        """Global and S3 condition keys present in this request (lower-case names)."""
        keys: dict[str, list[str]] = {
            "aws:securetransport": ["true" if self.secure else "false"],
            "aws:principalaccount": [self.account],
            "aws:sourceip": [self.source_ip],
        }
        for name, value in self.headers.items():
            low = name.lower()
            if low.startswith("x-amz-"):
                keys[f"s3:{low}"] = [value]
        return keys


def patch_s3_bucket_policy_conditions() -> None:
    """Evaluate bucket policy conditions for object requests like S3 does.

    Why: moto evaluates only ``StringEquals`` and counts every other operator as true (and a
    statement with a failed condition as a *Deny*), so the standard "deny unless aws:kms with our
    key" / "deny plain HTTP" statements deny every upload. We wrap ``S3Response._key_response``
    to remember the request (headers, method, query, account) in a thread-local and replace
    ``FakeBucket.get_permission`` with :func:`evaluate_bucket_policy`, which implements the
    common condition operators, so those denies are really enforced locally.

    Local conventions: requests to the emulator are plain HTTP on loopback and count as
    ``aws:SecureTransport=true`` unless they carry ``INSECURE_TRANSPORT_HEADER``; statements
    naming specific principals are not applied (moto does not know the caller's identity).
    """
    from urllib.parse import parse_qs, urlparse

    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    original_key_response = S3Response._key_response

    def _key_response(self: Any, request: Any, full_url: str) -> Any:
        headers = {str(k).lower(): str(v) for k, v in dict(request.headers).items()}
        _REQUEST.context = S3RequestContext(
            method=str(request.method).upper(),
            query=parse_qs(urlparse(full_url).query, keep_blank_values=True),
            headers=headers,
            account=str(getattr(self, "current_account", "")),
            source_ip=str(getattr(request, "remote_addr", None) or "127.0.0.1"),
            secure=headers.get(INSECURE_TRANSPORT_HEADER, "").lower() not in ("1", "true", "yes"),
        )
        try:
            return original_key_response(self, request, full_url)
        finally:
            _REQUEST.context = None

    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import PermissionResult

        if self.policy is None:
            return PermissionResult.NEUTRAL
        context: S3RequestContext | None = getattr(_REQUEST, "context", None)
        keys: dict[str, list[str]] = {}
        if context is not None:
            action = _iam_action(action, context)
            keys = context.condition_keys()
            upload_id = (context.query.get("uploadId") or [""])[0]
            multipart = getattr(self, "multiparts", {}).get(upload_id) if upload_id else None
            if multipart is not None:
                # UploadPart / CompleteMultipartUpload: the SSE settings were given when the
                # upload was created, so evaluate those (as S3 does for the whole upload).
                if multipart.sse_encryption:
                    keys["s3:x-amz-server-side-encryption"] = [multipart.sse_encryption]
                if multipart.kms_key_id:
                    keys["s3:x-amz-server-side-encryption-aws-kms-key-id"] = [multipart.kms_key_id]
        policy = self.policy.decode() if isinstance(self.policy, bytes) else self.policy
        verdict = evaluate_bucket_policy(json.loads(policy), action, resource, keys)
        return {
            "Deny": PermissionResult.DENIED,
            "Allow": PermissionResult.PERMITTED,
        }.get(verdict, PermissionResult.NEUTRAL)

    S3Response._key_response = _key_response  # type: ignore[method-assign]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _iam_action(moto_action: str, context: S3RequestContext) -> str:
    """The IAM action of the object request in ``context`` (moto only knows the HTTP method)."""
    return object_request_action(context.method, context.query) or moto_action


#: Object sub-resources (query parameters) that make a request its own IAM action, by method:
#: (sub-resource, action, action when a ``versionId`` is given). Order matters: the first present wins.
_SUBRESOURCE_ACTIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "GET": (
        ("tagging", "s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
        ("acl", "s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
        ("attributes", "s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
        ("retention", "s3:GetObjectRetention", "s3:GetObjectRetention"),
        ("legal-hold", "s3:GetObjectLegalHold", "s3:GetObjectLegalHold"),
        ("torrent", "s3:GetObjectTorrent", "s3:GetObjectVersionTorrent"),
        ("uploadId", "s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts"),
    ),
    "PUT": (
        ("tagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
        ("acl", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
        ("retention", "s3:PutObjectRetention", "s3:PutObjectRetention"),
        ("legal-hold", "s3:PutObjectLegalHold", "s3:PutObjectLegalHold"),
    ),
    "DELETE": (
        ("tagging", "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
        ("uploadId", "s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
    ),
    "POST": (
        ("restore", "s3:RestoreObject", "s3:RestoreObject"),
        ("select", "s3:GetObject", "s3:GetObjectVersion"),
    ),
}

#: What the request is when no sub-resource applies: (action, action when a ``versionId`` is given).
#: PUT covers PutObject, CopyObject and UploadPart(Copy); POST covers CreateMultipartUpload,
#: CompleteMultipartUpload and browser-form uploads: all are ``s3:PutObject`` in IAM.
_DEFAULT_ACTIONS: dict[str, tuple[str, str]] = {
    "GET": ("s3:GetObject", "s3:GetObjectVersion"),
    "HEAD": ("s3:GetObject", "s3:GetObjectVersion"),
    "PUT": ("s3:PutObject", "s3:PutObject"),
    "DELETE": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "POST": ("s3:PutObject", "s3:PutObject"),
}


def object_request_action(method: str, query: Mapping[str, Any]) -> str:
    """The IAM action S3 authorizes an object request as ("" for a method S3 does not have).

    Why: moto derives the action from the HTTP method alone (``PUT`` -> ``s3:PutObject``), so
    ``PUT ?tagging`` (PutObjectTagging, which Terraform sends when only ``tags`` change) was judged
    as an upload and denied by the "deny unencrypted uploads" statement. S3 authorizes each
    sub-resource as its own action (see the IAM "Actions defined by Amazon S3" table).
    """
    method = method.upper()
    versioned = bool((query.get("versionId") or [""])[0])
    for subresource, action, version_action in _SUBRESOURCE_ACTIONS.get(method, ()):
        if subresource in query:
            return version_action if versioned else action
    default = _DEFAULT_ACTIONS.get(method)
    if default is None:
        return ""
    return default[1] if versioned else default[0]


def evaluate_bucket_policy(policy: Mapping[str, Any], action: str, resource: str, keys: Mapping[str, list[str]]) -> str:
    """Return "Deny", "Allow" or "" (no statement applies) for one request.

    An explicit Deny wins over any Allow, as in IAM. ``keys`` maps lower-case condition key
    names to the request's values.
    """
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        if not _statement_applies(statement, action, resource, keys):
            continue
        if statement.get("Effect") == "Deny":
            return "Deny"
        if statement.get("Effect") == "Allow":
            allowed = True
    return "Allow" if allowed else ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM wildcard match: ``*`` any run of characters, ``?`` one character, nothing else special."""
    pattern = pattern.replace("[", "[[]")
    if not case_sensitive:
        return fnmatch.fnmatchcase(value.lower(), pattern.lower())
    return fnmatch.fnmatchcase(value, pattern)


def _any_match(patterns: Iterable[Any], value: str, *, case_sensitive: bool = True) -> bool:
    return any(_wildcard(str(p), value, case_sensitive=case_sensitive) for p in patterns)


def _is_wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "*" in _as_list(principal.get("AWS"))
    return False


def _statement_applies(statement: Mapping[str, Any], action: str, resource: str, keys: Mapping[str, list[str]]) -> bool:
    if "NotPrincipal" in statement or not _is_wildcard_principal(statement.get("Principal", "*")):
        return False
    if "NotAction" in statement:
        if _any_match(_as_list(statement["NotAction"]), action, case_sensitive=False):
            return False
    elif not _any_match(_as_list(statement.get("Action")), action, case_sensitive=False):
        return False
    if "NotResource" in statement:
        if _any_match(_as_list(statement["NotResource"]), resource):
            return False
    elif not _any_match(_as_list(statement.get("Resource")), resource):
        return False
    return conditions_hold(statement.get("Condition") or {}, keys)


def conditions_hold(conditions: Mapping[str, Any], keys: Mapping[str, list[str]]) -> bool:
    """True when every operator block holds (AND across operators and keys, OR across values)."""
    for operator, block in conditions.items():
        if not isinstance(block, Mapping):
            return False
        for key, expected in block.items():
            if not _condition_holds(str(operator), _as_list(expected), keys.get(str(key).lower())):
                return False
    return True


_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}

_warned: set[str] = set()


def _condition_holds(operator: str, expected: list[Any], actual: list[str] | None) -> bool:
    """Evaluate one ``operator: {key: expected}`` entry against the request's values for the key.

    A key absent from the request makes positive operators false and negated ones true (IAM's
    rule); ``...IfExists`` makes an absent key true. Unknown operators are reported on stderr
    and treated as not matching, so they can neither deny nor allow by accident.
    """
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    exp = [str(e) for e in expected]

    if base == "Null":
        want_absent = exp[0].lower() == "true" if exp else True
        return (actual is None) == want_absent
    if actual is None:
        return if_exists or base in _NEGATED

    def one(value: str) -> bool | None:
        if base == "StringEquals":
            return value in exp
        if base == "StringNotEquals":
            return value not in exp
        if base == "StringEqualsIgnoreCase":
            return value.lower() in [e.lower() for e in exp]
        if base == "StringNotEqualsIgnoreCase":
            return value.lower() not in [e.lower() for e in exp]
        if base in ("StringLike", "ArnLike", "ArnEquals"):
            return _any_match(exp, value)
        if base in ("StringNotLike", "ArnNotLike", "ArnNotEquals"):
            return not _any_match(exp, value)
        if base == "Bool":
            return value.lower() in [e.lower() for e in exp]
        if base.startswith("Numeric"):
            return _numeric(base, value, exp)
        return None

    results = [one(v) for v in actual]
    if any(r is None for r in results):
        if operator not in _warned:
            _warned.add(operator)
            print(f"mlpipe emulator: condition operator {operator} not evaluated", file=sys.stderr)
        return False
    if qualifier == "ForAllValues":
        return all(results)
    return any(results)


def _numeric(base: str, value: str, expected: list[str]) -> bool | None:
    try:
        number = float(value)
        targets = [float(e) for e in expected]
    except ValueError:
        return False
    compare: dict[str, Callable[[float, float], bool]] = {
        "NumericEquals": lambda a, b: a == b,
        "NumericLessThan": lambda a, b: a < b,
        "NumericLessThanEquals": lambda a, b: a <= b,
        "NumericGreaterThan": lambda a, b: a > b,
        "NumericGreaterThanEquals": lambda a, b: a >= b,
    }
    if base == "NumericNotEquals":
        return all(number != t for t in targets)
    if base not in compare:
        return None
    return any(compare[base](number, t) for t in targets)
