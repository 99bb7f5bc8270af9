"""Say what to change when a call is decided the wrong way: which template, which statement, what to add or narrow.

Why a module of its own: the evaluator decides, this only explains. The advice is a heuristic over the documents
that apply to the call (the closest statement by action, resource and principal), phrased as a ``fix:`` line; it
never changes a decision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from mlpipe.core.config import ProjectConfig
from mlpipe.core.paths import PROJECT_ROOT
from mlpipe.gate.access.evaluator import Call, Decision, Document, PolicySet
from mlpipe.gate.access.inventory import AttachedDocument

_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*\.amazonaws\.com(?:\.cn)?")


def template_for(name: str, policy: Mapping[str, Any], config: ProjectConfig) -> str | None:
    """The template under policies/ that renders document ``name`` (names are ``<account>:<owner>/<kind>``)."""
    owner, _, kind = name.split(":", 1)[-1].rpartition("/")
    if kind == "trust":
        statements = policy.get("Statement")
        items = statements if isinstance(statements, list) else []
        service = any(isinstance(s, Mapping) and "Service" in (s.get("Principal") or {}) for s in items)
        template = "service_trust.json.j2" if service else "cross_account_trust.json.j2"
    elif kind == "key-policy":
        template = "logs_key_policy.json.j2" if owner == config.foundation.logs_key_alias else "key_policy.json.j2"
    elif kind == "topic-policy":
        template = "notification_topic_policy.json.j2"
    elif kind == "bucket-policy":
        template = (
            "log_bucket_policy.json.j2" if owner == config.foundation.access_log_bucket else "bucket_policy.json.j2"
        )
    else:
        template = f"{kind}.json.j2"
    return f"policies/{template}" if (PROJECT_ROOT / "policies" / template).is_file() else None


def where(document: str, documents: Mapping[str, AttachedDocument], config: ProjectConfig) -> str:
    """``policies/x.json.j2 (document <name>)``, or the document alone when no template is known."""
    attached = documents.get(document)
    template = template_for(document, attached.policy, config) if attached else None
    return f"{template} (document {document})" if template else f"document {document}"


@cache
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, str)]


@dataclass(frozen=True)
class _Fit:
    sid: str
    action: bool
    resource: bool
    principal: bool
    conditional: bool

    @property
    def score(self) -> int:
        return self.action + self.resource + self.principal


def _fit(index: int, stmt: Mapping[str, Any], call: Call, resource_policy: bool) -> _Fit:
    """How far one Allow statement goes towards the call (conditions are only noted, not judged)."""
    key = "Action" if "Action" in stmt else "NotAction"
    action = any(_pattern(p, True).fullmatch(call.action) for p in _strings(stmt.get(key))) != (key == "NotAction")
    if "Resource" in stmt or "NotResource" in stmt:
        key = "Resource" if "Resource" in stmt else "NotResource"
        hit = any(_pattern(p, False).fullmatch(call.resource) for p in _strings(stmt.get(key)))
        resource = hit != (key == "NotResource")
    else:
        resource = resource_policy
    principal = True
    if resource_policy:
        value = stmt.get("Principal")
        if value == "*":
            principal = True
        elif isinstance(value, Mapping):
            listed = [item for items in value.values() for item in _strings(items)]
            principal = "*" in listed or call.principal in listed
        else:
            principal = False
    return _Fit(str(stmt.get("Sid") or f"#{index}"), action, resource, principal, bool(stmt.get("Condition")))


def _gap(document: Document, call: Call, resource_policy: bool) -> str | None:
    """None when a statement of ``document`` covers the call; else what to change in it."""
    statements = document.policy.get("Statement") if isinstance(document.policy, Mapping) else None
    items = [s for s in statements if isinstance(s, Mapping)] if isinstance(statements, list) else []
    fits = [_fit(i, s, call, resource_policy) for i, s in enumerate(items) if s.get("Effect") == "Allow"]
    full = [f for f in fits if f.score == 3]
    if any(not f.conditional for f in full):
        return None
    if full:
        sids = ", ".join(f.sid for f in full)
        context = ", ".join(f"{k}={v}" for k, v in call.context.items()) or "none"
        return f"the Condition of Sid {sids} does not hold for this call (request context: {context})"
    who = f" to {call.principal}" if resource_policy else ""
    # Among statements one element away, prefer one named after the action ("Decrypt..." for kms:Decrypt).
    verb = call.action.split(":", 1)[-1].lower()
    close = sorted(
        (f for f in fits if f.score == 2), key=lambda f: (not f.action, not f.principal, verb not in f.sid.lower())
    )
    if not close:
        return f"add a statement that allows {call.action} on {call.resource}{who}"
    near = close[0]
    if not near.action:
        named = [f for f in close if not f.action and verb in f.sid.lower()]
        if len(named) == 1:
            return f"add {call.action} to Sid {named[0].sid}"
        sids = " or ".join(f"Sid {f.sid}" for f in close if not f.action)
        return f"add {call.action} to {sids} (the statement it belongs to)"
    if not near.principal:
        return f"add {call.principal} to the Principal of Sid {near.sid}"
    return (
        f"allow {call.action} on {call.resource}{who}: Sid {near.sid} grants it on other resources only "
        "(widen it only if that resource belongs there, else add a statement)"
    )


def _account(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 else ""


def _responsible(call: Call, policies: PolicySet) -> list[tuple[str, Document | None]]:
    """The documents that must allow the call under AWS's rules: (side, document or None when none is attached)."""
    registered = policies.resource_policy(call.resource) if call.resource != "*" else None
    resource_doc = registered[1] if registered else None
    identity = list(policies.identity_policies(call.principal))
    if _SERVICE.fullmatch(call.principal):
        return [("resource", resource_doc)]
    if call.resource == "*":
        return [("identity", d) for d in identity] or [("identity", None)]
    own = _account(call.principal)
    other = call.resource_account or _account(call.resource)
    key_or_trust = (call.resource.split(":", 5)[2:3] == ["kms"] and ":key/" in call.resource) or (
        call.action.lower().startswith("sts:") and ":role/" in call.resource
    )
    ids = [("identity", d) for d in identity] or [("identity", None)]
    if own != other:
        return [*ids, ("resource", resource_doc)]
    if key_or_trust:
        return [("resource", resource_doc)]
    return ids


def fix_denied(
    call: Call,
    decision: Decision,
    policies: PolicySet,
    documents: Mapping[str, AttachedDocument],
    config: ProjectConfig,
) -> tuple[str, list[str]]:
    """The fix for a needed call that is denied, and the documents it names (first = where to point)."""
    if decision.deciding:  # an explicit deny
        named = [doc for doc, _ in decision.deciding]
        denies = "; ".join(f"Sid {sid} of {where(doc, documents, config)}" for doc, sid in decision.deciding)
        context = ", ".join(f"{k}={v}" for k, v in call.context.items()) or "none"
        text = f"the call is refused by {denies}: make the caller send what it requires (request context: {context})"
        return f"{text}, or narrow that Deny", named
    parts: list[str] = []
    named = []
    for side, document in _responsible(call, policies):
        if document is None:
            what = "identity policy" if side == "identity" else "resource policy"
            parts.append(f"attach a {what} that allows {call.action} on {call.resource} to {call.principal}")
            continue
        gap = _gap(document, call, resource_policy=side == "resource")
        if gap is not None:
            named.append(document.name)
            parts.append(f"in {where(document.name, documents, config)}: {gap}")
    if not parts:
        return "; ".join(decision.missing) or decision.reason, named
    return "; ".join(parts), named


def fix_allowed(
    call: Call, decision: Decision, documents: Mapping[str, AttachedDocument], config: ProjectConfig
) -> tuple[str, list[str]]:
    """The fix for a forbidden call that is allowed: narrow every statement that allows it."""
    named = [doc for doc, _ in decision.deciding]
    statements = "; ".join(f"Sid {sid} of {where(doc, documents, config)}" for doc, sid in decision.deciding)
    return (
        f"narrow {statements or 'the statements that allow it'} so it no longer allows {call.action} on "
        f"{call.resource} for {call.principal}",
        named,
    )


def fix_undecidable(reason: str, unresolved: bool) -> str:
    """The fix for a call nobody can decide before apply."""
    if unresolved:
        return f"make the synthesized manifests name what the call needs ({reason})"
    return (
        "rewrite the statement named above with elements the access proof supports (literal ARNs or resolvable "
        "references, supported condition operators), or extend mlpipe/gate/access/evaluator.py"
    )
