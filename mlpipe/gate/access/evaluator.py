"""Decide whether one AWS API call is allowed by the identity, trust, bucket and key policies that apply to it.

The rules follow AWS's documented policy evaluation logic:

* Explicit deny in any applicable statement wins; without an applicable Allow the call is implicitly denied
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html).
* Same account: "If either the identity-based policy or the resource-based policy within the same account allows the
  request and the other doesn't, the request is still allowed" - except role trust policies and KMS key policies, which
  must allow the caller themselves
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html,
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html: "Unless the key policy explicitly allows it,
  you cannot use IAM policies to allow access to a KMS key"). A resource policy naming the account (root ARN or bare
  id) only delegates to IAM (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
* Cross account: the identity policy AND the resource policy must both allow
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html); a resource
  type without resource-based policies (Step Functions, SageMaker endpoints, IAM itself) can't be shared at all.
* A service principal has no identity policies: only the resource (or trust) policy counts.

Out of scope, and never consulted: permissions boundaries, SCPs/RCPs, session policies, ACLs, VPC endpoint policies,
grants (KMS) and the account root user. A call that passes here can still be denied by those.

Three-valued logic keeps the evaluator honest: a statement whose element, principal form or condition operator is not
implemented (or holds a policy variable such as ``${aws:username}``) is *unknown*, not skipped. Unknowns combine by
Kleene logic (a definite "no" elsewhere in the same statement still settles it), and any unknown that could change
the outcome makes the decision UNDECIDABLE - never a silent allow.

Why no library: policyuniverse (last release 2023-11) only parses statements and expands wildcards; parliament
(installed) and cloudsplaining lint or rate policies, policy_sentry writes them; principalmapper (last release 2022)
breaks on Python 3.10+; iam-ape flattens one principal's identity policies from a live account dump and knows no
resource policies; aws-why and sibyl-aws call AWS. None decides one call offline with the cross-account, trust-policy
and KMS key-policy rules.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from functools import cache
from typing import Any

ContextValue = str | list[str] | bool | int


class Outcome(StrEnum):
    ALLOWED = "ALLOWED"
    EXPLICIT_DENY = "EXPLICIT_DENY"
    IMPLICIT_DENY = "IMPLICIT_DENY"
    UNDECIDABLE = "UNDECIDABLE"


@dataclass(frozen=True)
class Document:
    """A named IAM JSON policy document; ``name`` is how decisions refer to it."""

    name: str
    policy: dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One API call: an IAM role/user ARN or a service principal (``states.amazonaws.com``) acting on a resource ARN.

    Accounts default to the ones in the ARNs; S3 ARNs carry none, so ``resource_account`` is needed for buckets.
    """

    principal: str
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    principal_account: str | None = None
    resource_account: str | None = None


@dataclass(frozen=True)
class PolicySet:
    """Identity policies per principal ARN, one resource-based policy per resource ARN.

    Register a bucket policy under the bucket ARN (it also governs ``bucket/*``), a key policy under the key ARN and a
    trust policy under the role ARN (it governs ``sts:AssumeRole*`` on that role only).
    """

    identity: Mapping[str, Sequence[Document]] = field(default_factory=dict)
    resource: Mapping[str, Document] = field(default_factory=dict)

    def identity_policies(self, principal: str) -> Sequence[Document]:
        return self.identity.get(principal, ())

    def resource_policy(self, resource: str) -> tuple[str, Document] | None:
        """The policy governing ``resource`` and the ARN it is registered under (an object falls back to its bucket)."""
        candidates = [resource]
        if resource.startswith("arn:") and _arn_service(resource) == "s3" and "/" in resource:
            candidates.append(resource.split("/", 1)[0])
        for owner in candidates:
            if owner in self.resource:
                return owner, self.resource[owner]
        return None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    deciding: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED

    def __str__(self) -> str:
        lines = [f"{self.outcome.value}: {self.reason}"]
        lines += [f"  by {doc} / {sid}" for doc, sid in self.deciding]
        lines += [f"  missing: {text}" for text in self.missing]
        return "\n".join(lines)


# --- internals ------------------------------------------------------------------------------------------------------


class _Unsupported(Exception):
    """Something this evaluator does not implement: the element that raised it is unknown, never skipped."""


class _Tri(Enum):
    NO = 0
    UNKNOWN = 1
    YES = 2


class _Via(Enum):
    """How a statement reached the caller: identity policy, resource policy naming it, or naming its account."""

    IDENTITY = "identity"
    DIRECT = "direct"
    ACCOUNT = "account"
    EITHER = "either"  # the principal match itself is unknown


class _Kind(Enum):
    NO_RESOURCE = "no resource"  # Resource "*": identity policies only
    KEY = "KMS key"
    TRUST = "role trust"
    NO_POLICY = "no resource policy in AWS"
    OTHER = "other"


@dataclass(frozen=True)
class _Verdict:
    """A three-valued answer with the statements that made it YES and the reasons it is UNKNOWN."""

    tri: _Tri
    stmts: tuple[tuple[str, str], ...] = ()
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Result:
    effect: str
    via: _Via
    verdict: _Verdict


@dataclass(frozen=True)
class _Request:
    principal: str
    service_principal: bool
    principal_account: str | None
    action: str
    resource: str
    resource_account: str | None
    context: dict[str, list[str]]  # keys lower-cased: condition key names are case-insensitive


_IAM_PRINCIPAL = re.compile(r"arn:[^:]+:iam::(\d{12}):(role|user)/(?:.+/)?([^/]+)")
_ACCOUNT_PRINCIPAL = re.compile(r"(\d{12})|arn:[^:]+:iam::(\d{12}):root")
_SESSION_PRINCIPAL = re.compile(r"arn:[^:]+:sts::(\d{12}):assumed-role/([^/]+)/.+")
_SERVICE_PRINCIPAL = re.compile(r"[a-z0-9][a-z0-9.-]*\.amazonaws\.com(?:\.cn)?")
_ROLE_ARN = re.compile(r"arn:[^:]+:iam::\d{12}:role/.+")
# Resource types AWS gives no resource-based policy (incomplete on purpose: unknown types need a registered policy).
_NO_RESOURCE_POLICY = re.compile(
    r"arn:[^:]+:(states|iam|codepipeline|cloudformation|ec2):"
    r"|arn:[^:]+:sagemaker:[^:]*:[^:]*:(endpoint|endpoint-config|training-job|processing-job|transform-job|model"
    r"|pipeline|notebook-instance)/"
)
_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition"}
)


def _arn_service(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[2] if len(parts) == 6 else ""


def _any(verdicts: Iterable[_Verdict]) -> _Verdict:
    """Kleene OR; keeps the statements of every YES operand."""
    items = list(verdicts)
    tri = max((v.tri for v in items), key=lambda t: t.value, default=_Tri.NO)
    return _Verdict(
        tri,
        tuple(s for v in items if v.tri is _Tri.YES for s in v.stmts),
        tuple(r for v in items if v.tri is _Tri.UNKNOWN for r in v.unknown) if tri is _Tri.UNKNOWN else (),
    )


def _all(verdicts: Iterable[_Verdict]) -> _Verdict:
    """Kleene AND; a YES carries the statements of every operand."""
    items = list(verdicts)
    tri = min((v.tri for v in items), key=lambda t: t.value, default=_Tri.YES)
    return _Verdict(
        tri,
        tuple(s for v in items for s in v.stmts) if tri is _Tri.YES else (),
        tuple(r for v in items if v.tri is _Tri.UNKNOWN for r in v.unknown) if tri is _Tri.UNKNOWN else (),
    )


# --- matching -------------------------------------------------------------------------------------------------------


@cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` one character (actions, StringLike, one ARN component of ArnLike)."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@cache
def _resource_glob(pattern: str) -> re.Pattern[str]:
    """Resource/NotResource wildcards stay inside one colon-separated ARN segment, except that a ``*`` ending a
    segment "can expand to match beyond the colon boundaries"; within a segment ``*`` also spans ``/``
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html#reference_policies_elements_resource_wildcards).
    """
    out = []
    for i, c in enumerate(pattern):
        if c == "*":
            out.append(".*" if i + 1 == len(pattern) or pattern[i + 1] == ":" else "[^:]*")
        else:
            out.append("[^:]" if c == "?" else re.escape(c))
    return re.compile("".join(out), re.DOTALL)


def _strings(value: Any, element: str) -> list[str]:
    """A scalar or a list of strings, as policies may write either."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) for v in items):
        raise _Unsupported(f"{element} must be a string or a list of strings, got {value!r}")
    return items


def _match_action(stmt: Mapping[str, Any], action: str) -> _Tri:
    """Actions match case-insensitively, wildcards in the service prefix too; NotAction inverts."""
    key = "Action" if "Action" in stmt else "NotAction"
    hit = any(_glob(p, True).fullmatch(action) for p in _strings(stmt[key], key))
    return _Tri.YES if hit != (key == "NotAction") else _Tri.NO


def _match_resource(stmt: Mapping[str, Any], resource: str) -> _Tri:
    """Case-sensitive; a resource policy statement without Resource covers the resource it is attached to."""
    if "Resource" not in stmt and "NotResource" not in stmt:
        return _Tri.YES
    key = "Resource" if "Resource" in stmt else "NotResource"
    patterns = _strings(stmt[key], key)
    if any("${" in p for p in patterns):
        raise _Unsupported(f"policy variable in {key} {patterns!r}")
    hit = any(_resource_glob(p).fullmatch(resource) for p in patterns)
    return _Tri.YES if hit != (key == "NotResource") else _Tri.NO


def _principal_item(kind: str, item: str, req: _Request) -> _Via | None:
    """One Principal value against the caller; wildcards inside a principal are invalid in AWS, so unsupported."""
    if kind == "Service":
        return _Via.DIRECT if req.service_principal and item.lower() == req.principal.lower() else None
    if kind == "Federated":
        return None  # our callers are roles and services, never web-identity or SAML sessions
    if kind != "AWS":
        raise _Unsupported(f"principal type {kind!r}")
    if item == "*":
        return _Via.DIRECT
    if account := _ACCOUNT_PRINCIPAL.fullmatch(item):
        same = not req.service_principal and (account.group(1) or account.group(2)) == req.principal_account
        return _Via.ACCOUNT if same else None
    if "*" in item or "?" in item:
        raise _Unsupported(f"wildcard inside principal {item!r}")
    if _IAM_PRINCIPAL.fullmatch(item):
        return _Via.DIRECT if item == req.principal else None
    if session := _SESSION_PRINCIPAL.fullmatch(item):
        caller = _IAM_PRINCIPAL.fullmatch(req.principal)
        if caller and (session.group(1), session.group(2)) == (caller.group(1), caller.group(3)):
            raise _Unsupported(f"assumed-role session principal {item!r} (the session name of the call is unknown)")
        return None
    raise _Unsupported(f"AWS principal {item!r}")


def _principal_items(value: Any, element: str) -> list[tuple[str, str]]:
    if not isinstance(value, Mapping):
        raise _Unsupported(f"{element} form {value!r}")
    return [(kind, item) for kind, raw in value.items() for item in _strings(raw, f"{element}.{kind}")]


def _match_principal(value: Any, req: _Request) -> _Via | None:
    """Principal: "*", or a map of AWS (ARN, account id, root ARN, "*"), Service and Federated values."""
    if value == "*":
        return _Via.DIRECT
    found: _Via | None = None
    unknown: _Unsupported | None = None
    for kind, item in _principal_items(value, "Principal"):
        try:
            via = _principal_item(kind, item, req)
        except _Unsupported as exc:
            unknown = exc
            continue
        if via is _Via.DIRECT:
            return via
        found = found or via
    if unknown:
        raise unknown
    return found


def _not_principal_applies(value: Any, req: _Request) -> bool:
    """Deny + NotPrincipal applies to every caller not listed. For a role session AWS checks the account, the role and
    the session in turn and recommends listing the role AND its account
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html): listing both
    exempts the caller, listing none of them doesn't, anything in between is unsupported.
    """
    if value == "*":
        return False
    items = _principal_items(value, "NotPrincipal")
    if req.service_principal:
        return all(not (kind == "Service" and item.lower() == req.principal.lower()) for kind, item in items)
    mentions = set()
    for kind, item in items:
        if kind not in ("AWS", "Service", "Federated"):
            raise _Unsupported(f"NotPrincipal type {kind!r}")
        if kind != "AWS":
            continue
        if item == "*":
            return False
        via = _principal_item("AWS", item, req)  # raises for this role's sessions and for unknown forms
        if via is not None:
            mentions.add(via)
    if mentions == {_Via.DIRECT, _Via.ACCOUNT}:
        return False
    if not mentions:
        return True
    raise _Unsupported("NotPrincipal lists the caller's role or account but not both")


# --- conditions -----------------------------------------------------------------------------------------------------


def _arn_like(value: str, pattern: str) -> bool:
    """ArnEquals/ArnLike: each of the six colon-delimited components is matched separately, wildcards allowed."""
    want = pattern.split(":", 5)
    if len(want) != 6:
        raise _Unsupported(f"ARN condition value {pattern!r} is not an ARN")
    got = value.split(":", 5)
    return len(got) == 6 and all(_glob(p, False).fullmatch(v) for p, v in zip(want, got, strict=True))


def _bool_eq(value: str, wanted: str) -> bool:
    if wanted.lower() not in ("true", "false"):
        raise _Unsupported(f"Bool value {wanted!r}")
    return value.lower() == wanted.lower()


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def check(value: str, wanted: str) -> bool:
        try:
            limit = float(wanted)
        except ValueError:
            raise _Unsupported(f"numeric condition value {wanted!r}") from None
        try:
            return compare(float(value), limit)
        except ValueError:
            return False

    return check


def _ip_in(value: str, wanted: str) -> bool:
    try:
        network = ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        raise _Unsupported(f"IP condition value {wanted!r}") from None
    try:
        return ipaddress.ip_address(value) in network
    except ValueError:
        return False


# operator -> (positive comparison of one request value with one policy value, negated?)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (operator.eq, False),
    "StringNotEquals": (operator.eq, True),
    "StringEqualsIgnoreCase": (lambda v, w: v.casefold() == w.casefold(), False),
    "StringNotEqualsIgnoreCase": (lambda v, w: v.casefold() == w.casefold(), True),
    "StringLike": (lambda v, w: bool(_glob(w, False).fullmatch(v)), False),
    "StringNotLike": (lambda v, w: bool(_glob(w, False).fullmatch(v)), True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool_eq, False),
    "NumericEquals": (_numeric(operator.eq), False),
    "NumericNotEquals": (_numeric(operator.eq), True),
    "NumericLessThan": (_numeric(operator.lt), False),
    "NumericLessThanEquals": (_numeric(operator.le), False),
    "NumericGreaterThan": (_numeric(operator.gt), False),
    "NumericGreaterThanEquals": (_numeric(operator.ge), False),
    "IpAddress": (_ip_in, False),
    "NotIpAddress": (_ip_in, True),
}


def _policy_values(raw: Any, where: str) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    values = []
    for item in items:
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            values.append(str(item))
        else:
            raise _Unsupported(f"{where}: condition value {item!r}")
    if any("${" in v for v in values):
        raise _Unsupported(f"{where}: policy variable in {values!r}")
    return values


def _condition(op: str, key: str, raw: Any, context: Mapping[str, list[str]]) -> bool:
    """One ``operator: {key: values}`` pair, per
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html and
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html.

    Several policy values are ORed, for a negated operator NORed ("not equal to any"). A key missing from the request:
    ``ForAllValues:`` is true, ``ForAnyValue:`` is false (even with IfExists), ``...IfExists`` is true, and otherwise
    the condition is false - except negated operators (StringNotEquals, ArnNotLike, NotIpAddress, ...), which are
    true ("if the policy condition requires that the key is *not* matched ... and the right key is not present, the
    condition is true"). Null tests presence alone. A multivalued request key needs a set operator.
    """
    set_op, _, base = op.rpartition(":")
    if set_op not in ("", "ForAnyValue", "ForAllValues"):
        raise _Unsupported(f"condition set operator {set_op!r}")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    wanted = _policy_values(raw, f"{op} {key}")
    present = context.get(key.lower()) or None
    if base == "Null":
        if set_op or if_exists or not all(w.lower() in ("true", "false") for w in wanted):
            raise _Unsupported(f"condition {op} {key}: {wanted!r}")
        return any(w.lower() == ("false" if present else "true") for w in wanted)
    if base not in _OPERATORS:
        raise _Unsupported(f"condition operator {op!r}")
    compare, negated = _OPERATORS[base]
    if present is None:
        return {"ForAllValues": True, "ForAnyValue": False}.get(set_op, if_exists or negated)

    def matches(value: str) -> bool:
        return any(compare(value, w) for w in wanted) != negated

    if set_op == "ForAllValues":
        return all(matches(v) for v in present)
    if set_op == "ForAnyValue":
        return any(matches(v) for v in present)
    if len(present) > 1:
        raise _Unsupported(f"{key} has several values in the request; {op} needs ForAnyValue:/ForAllValues:")
    return matches(present[0])


def _conditions(block: Any, context: Mapping[str, list[str]]) -> tuple[_Tri, list[str]]:
    """Operators and keys are ANDed (Kleene: one definite false settles the statement despite unknown ones)."""
    if block is None:
        return _Tri.YES, []
    if not isinstance(block, Mapping):
        return _Tri.UNKNOWN, [f"Condition is not an object: {block!r}"]
    reasons = []
    for op, pairs in block.items():
        if not isinstance(pairs, Mapping):
            reasons.append(f"condition {op!r} is not an object")
            continue
        for key, raw in pairs.items():
            try:
                if not _condition(op, key, raw, context):
                    return _Tri.NO, []
            except _Unsupported as exc:
                reasons.append(str(exc))
    return (_Tri.UNKNOWN if reasons else _Tri.YES), reasons


# --- statements and documents ---------------------------------------------------------------------------------------


def _check_elements(stmt: Mapping[str, Any], resource_policy: bool) -> None:
    if extra := set(stmt) - _STATEMENT_KEYS:
        raise _Unsupported(f"statement element(s) {sorted(extra)}")
    if ("Action" in stmt) == ("NotAction" in stmt):
        raise _Unsupported("statement needs exactly one of Action/NotAction")
    if "Resource" in stmt and "NotResource" in stmt:
        raise _Unsupported("statement has both Resource and NotResource")
    principals = ("Principal" in stmt) + ("NotPrincipal" in stmt)
    if resource_policy and principals != 1:
        raise _Unsupported("resource policy statement needs exactly one of Principal/NotPrincipal")
    if not resource_policy and (principals or ("Resource" not in stmt and "NotResource" not in stmt)):
        raise _Unsupported("identity policy statement needs Resource/NotResource and no Principal")


def _evaluate_statement(doc: str, index: int, stmt: Any, req: _Request, resource_policy: bool) -> _Result:
    sid = str(stmt.get("Sid") or f"#{index}") if isinstance(stmt, Mapping) else f"#{index}"
    label = f"{doc} / {sid}"
    effect = stmt.get("Effect") if isinstance(stmt, Mapping) else None
    if effect not in ("Allow", "Deny"):  # unknown effect: it might deny
        return _Result("Deny", _Via.EITHER, _Verdict(_Tri.UNKNOWN, unknown=(f"{label}: Effect {effect!r}",)))
    try:
        _check_elements(stmt, resource_policy)
    except _Unsupported as exc:
        return _Result(effect, _Via.EITHER, _Verdict(_Tri.UNKNOWN, unknown=(f"{label}: {exc}",)))
    reasons: list[str] = []
    via = _Via.IDENTITY
    for check in (lambda: _match_action(stmt, req.action), lambda: _match_resource(stmt, req.resource)):
        try:
            if check() is _Tri.NO:
                return _Result(effect, via, _Verdict(_Tri.NO))
        except _Unsupported as exc:
            reasons.append(str(exc))
    if resource_policy:
        try:
            if "NotPrincipal" in stmt:
                if effect != "Deny":
                    raise _Unsupported("NotPrincipal with Allow (AWS does not support it)")
                matched = _Via.DIRECT if _not_principal_applies(stmt["NotPrincipal"], req) else None
            else:
                matched = _match_principal(stmt["Principal"], req)
            if matched is None:
                return _Result(effect, _Via.DIRECT, _Verdict(_Tri.NO))
            via = matched
        except _Unsupported as exc:
            via = _Via.EITHER
            reasons.append(str(exc))
    tri, why = _conditions(stmt.get("Condition"), req.context)
    if tri is _Tri.NO:
        return _Result(effect, via, _Verdict(_Tri.NO))
    reasons += why
    if reasons:
        return _Result(effect, via, _Verdict(_Tri.UNKNOWN, unknown=tuple(f"{label}: {r}" for r in reasons)))
    return _Result(effect, via, _Verdict(_Tri.YES, stmts=((doc, sid),)))


def _evaluate_document(doc: Document, req: _Request, resource_policy: bool) -> list[_Result]:
    policy = doc.policy
    raw = policy.get("Statement") if isinstance(policy, Mapping) else None
    statements = [raw] if isinstance(raw, Mapping) else raw
    extra = set(policy) - {"Version", "Id", "Statement"} if isinstance(policy, Mapping) else set()
    if not isinstance(statements, list) or not statements or extra:
        why = f"{doc.name}: not a policy document with a Statement (extra keys: {sorted(extra)})"
        return [_Result("Deny", _Via.EITHER, _Verdict(_Tri.UNKNOWN, unknown=(why,)))]
    return [_evaluate_statement(doc.name, i, s, req, resource_policy) for i, s in enumerate(statements)]


# --- the call -------------------------------------------------------------------------------------------------------


def _context(call: Call, derived: Mapping[str, str]) -> dict[str, list[str]]:
    """The request context with lower-cased keys, plus the global keys derivable from the call unless given."""
    context: dict[str, list[str]] = {}
    for key, value in call.context.items():
        items = value if isinstance(value, list) else [value]
        context[key.lower()] = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in items]
    for key, value in derived.items():
        context.setdefault(key.lower(), [value])
    return context


def _request(call: Call) -> _Request:
    """Validate the call and derive accounts and global context keys (aws:PrincipalArn, aws:PrincipalAccount,
    aws:PrincipalType - a role can only act through a session, hence AssumedRole -, aws:PrincipalIsAWSService and,
    for a service principal, aws:PrincipalServiceName)."""
    if ":" not in call.action:
        raise _Unsupported(f"action {call.action!r} has no service prefix")
    if call.resource != "*" and len(call.resource.split(":", 5)) != 6:
        raise _Unsupported(f"resource {call.resource!r} is neither an ARN nor '*'")
    arn_account = call.resource.split(":", 5)[4] if call.resource != "*" else ""
    if call.resource_account and arn_account and call.resource_account != arn_account:
        raise _Unsupported(f"resource_account {call.resource_account} contradicts {call.resource}")
    resource_account = call.resource_account or arn_account or None
    if _SERVICE_PRINCIPAL.fullmatch(call.principal):
        derived = {"aws:PrincipalServiceName": call.principal, "aws:PrincipalIsAWSService": "true"}
        context = _context(call, derived)
        return _Request(
            call.principal, True, call.principal_account, call.action, call.resource, resource_account, context
        )
    iam = _IAM_PRINCIPAL.fullmatch(call.principal)
    if not iam:
        raise _Unsupported(f"principal {call.principal!r} is neither an IAM role/user ARN nor a service principal")
    if call.principal_account not in (None, iam.group(1)):
        raise _Unsupported(f"principal_account {call.principal_account} contradicts {call.principal}")
    if call.resource != "*" and resource_account is None:
        raise _Unsupported(f"the account owning {call.resource} is unknown (S3 ARNs carry none): set resource_account")
    derived = {
        "aws:PrincipalArn": call.principal,
        "aws:PrincipalAccount": iam.group(1),
        "aws:PrincipalType": "AssumedRole" if iam.group(2) == "role" else "User",
        "aws:PrincipalIsAWSService": "false",
    }
    return _Request(
        call.principal, False, iam.group(1), call.action, call.resource, resource_account, _context(call, derived)
    )


def _kind(req: _Request) -> _Kind:
    if req.resource == "*":
        return _Kind.NO_RESOURCE
    if req.action.lower().startswith("sts:") and _ROLE_ARN.fullmatch(req.resource):
        return _Kind.TRUST
    if _arn_service(req.resource) == "kms" and req.resource.split(":", 5)[5].startswith("key/"):
        return _Kind.KEY
    if _NO_RESOURCE_POLICY.match(req.resource):
        return _Kind.NO_POLICY
    return _Kind.OTHER


def _label(kind: _Kind, req: _Request, registered: tuple[str, Document] | None) -> str:
    """How messages name the resource policy: by the ARN it is registered under, else the bucket or resource."""
    owner = registered[0] if registered else req.resource
    if not registered and _arn_service(owner) == "s3":
        owner = owner.split("/", 1)[0]
    if kind is _Kind.KEY:
        return f"key policy of {owner}"
    if kind is _Kind.TRUST:
        return f"trust policy of {owner}"
    return f"{'bucket' if _arn_service(owner) == 's3' else 'resource'} policy of {owner}"


@dataclass(frozen=True)
class _Sides:
    """The three ways to an Allow, and what was registered, for combining and explaining."""

    identity: _Verdict
    direct: _Verdict
    account: _Verdict
    has_identity: bool
    has_resource: bool
    label: str


def _combine(req: _Request, kind: _Kind, sides: _Sides) -> tuple[str, _Verdict]:
    """The evaluation rule for this kind of call, as a formula over the three sides."""
    if req.service_principal:
        return "service principal: only the resource policy counts", sides.direct
    if kind is _Kind.NO_RESOURCE:
        return "no resource ARN: identity policies only", sides.identity
    if req.principal_account != req.resource_account:
        scope = f"cross-account ({req.principal_account} -> {req.resource_account}): identity AND resource policy"
        return scope, _all([sides.identity, _any([sides.direct, sides.account])])
    if kind in (_Kind.KEY, _Kind.TRUST):
        scope = f"same account, {kind.value}: the {sides.label.split(' of ')[0]} must allow"
        return scope, _any([sides.direct, _all([sides.account, sides.identity])])
    return "same account: identity OR resource policy", _any([sides.identity, sides.direct])


def _explain(req: _Request, kind: _Kind, sides: _Sides) -> list[str]:
    """Human text for every side that did not allow an implicitly denied call."""
    who, acct = req.principal, req.principal_account
    ident = (
        f"no statement in the identity policies of {who} allows {req.action} on {req.resource}"
        if sides.has_identity
        else f"no identity policies are registered for {who}, so none allows {req.action} on {req.resource}"
    )
    if req.service_principal:
        if kind in (_Kind.NO_RESOURCE, _Kind.NO_POLICY):
            return [f"{req.resource} has no resource-based policy in AWS, so service {who} can't be granted access"]
        if not sides.has_resource:
            return [f"no {sides.label} is registered; a service principal is authorized by it alone"]
        return [f"the {sides.label} does not allow the service principal {who}"]
    if kind is _Kind.NO_RESOURCE:
        return [ident]
    no = _Tri.NO
    if acct != req.resource_account:
        out = [f"{ident} (cross-account access needs it)"] if sides.identity.tri is no else []
        if sides.direct.tri is no and sides.account.tri is no:
            if kind is _Kind.NO_POLICY:
                out.append(f"{req.resource} has no resource-based policy in AWS: account {acct} can never use it")
            elif not sides.has_resource:
                out.append(f"no {sides.label} is registered (account {req.resource_account}): it must allow {who}")
            else:
                out.append(f"the {sides.label} does not allow {who} or its account {acct}")
        return out
    if kind in (_Kind.KEY, _Kind.TRUST):
        if not sides.has_resource:
            return [f"no {sides.label} is registered; it must allow the caller even within one account"]
        if sides.account.tri is no:
            return [f"the {sides.label} does not allow {who} or delegate to its account {acct}"]
        return [f"the {sides.label} only delegates to account {acct}, and {ident}"]
    out = [ident]
    if sides.has_resource:
        out.append(f"the {sides.label} does not allow {who} itself (naming the account only delegates to IAM)")
    return out


def evaluate(policies: PolicySet, call: Call) -> Decision:
    """Decide ``call`` against ``policies`` (see the module docstring for the rules and their sources)."""
    try:
        req = _request(call)
    except _Unsupported as exc:
        return Decision(Outcome.UNDECIDABLE, str(exc))
    kind = _kind(req)
    registered = policies.resource_policy(req.resource) if req.resource != "*" else None
    if kind is _Kind.NO_POLICY and registered:
        if not _ROLE_ARN.fullmatch(req.resource):
            why = f"a resource policy is registered for {req.resource}, whose type has none in AWS"
            return Decision(Outcome.UNDECIDABLE, why)
        registered = None  # a role's trust policy governs sts:AssumeRole* only
    identity_docs = () if req.service_principal else policies.identity_policies(req.principal)
    results = [r for doc in identity_docs for r in _evaluate_document(doc, req, resource_policy=False)]
    if registered:
        results += _evaluate_document(registered[1], req, resource_policy=True)

    deny = _any(r.verdict for r in results if r.effect == "Deny")
    if deny.tri is _Tri.YES:
        why = "an applicable statement denies it, which overrides every Allow"
        return Decision(Outcome.EXPLICIT_DENY, why, list(dict.fromkeys(deny.stmts)))
    allows = [r for r in results if r.effect == "Allow"]
    sides = _Sides(
        identity=_any(r.verdict for r in allows if r.via is _Via.IDENTITY),
        direct=_any(r.verdict for r in allows if r.via in (_Via.DIRECT, _Via.EITHER)),
        account=_any(r.verdict for r in allows if r.via in (_Via.ACCOUNT, _Via.EITHER)),
        has_identity=bool(identity_docs),
        has_resource=registered is not None,
        label=_label(kind, req, registered),
    )
    scope, allowed = _combine(req, kind, sides)
    if _Tri.UNKNOWN in (deny.tri, allowed.tri):
        unknown = list(dict.fromkeys(deny.unknown + allowed.unknown))
        return Decision(Outcome.UNDECIDABLE, f"{scope}: cannot decide: " + "; ".join(unknown))
    if allowed.tri is _Tri.YES:
        return Decision(Outcome.ALLOWED, f"{scope}: allowed", list(dict.fromkeys(allowed.stmts)))
    return Decision(Outcome.IMPLICIT_DENY, f"{scope}: no applicable Allow", missing=_explain(req, kind, sides))
