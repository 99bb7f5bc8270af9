"""Shared, fail-closed policy parsing for the project's own checkov checks (``CKV_MLP_*``).

Why this module exists: checkov hands a Python check the *parsed* HCL of one resource, and
policy attributes reach the check in several shapes depending on how far checkov's HCL
evaluator got. Every check must read all of them the same way and must treat anything it
cannot read as a failure (fail-closed), never as a pass.

Shapes observed with checkov 3.3.30 (see ``tests/policy`` for fixtures exercising them):

* ``jsonencode({...})`` that checkov could evaluate arrives as a ``dict``. Terraform
  references inside it lose their ``${...}`` wrapper: both ``"${aws_iam_role.x.arn}"`` and a
  bare ``aws_iam_role.x.arn`` become the plain string ``"aws_iam_role.x.arn"``; a partial
  interpolation such as ``"arn:aws:iam::${data.aws_caller_identity.c.account_id}:root"``
  becomes ``"arn:aws:iam::data.aws_caller_identity.c.account_id:root"``. Booleans written as
  ``"false"`` may come back as ``"False"``.
* ``jsonencode(...)`` that checkov could *not* evaluate arrives as a string: either
  ``"${jsonencode({<python repr of the object>})}"`` or ``"jsonencode({<HCL text>})"`` with bare
  references (the CDKTF JSON-output style ``"${jsonencode({\\"Statement\\" = [...]})}"`` too).
  A partially evaluated repr (triggered e.g. by ``"false"`` in a ``Bool`` condition, which
  becomes ``'False'``) quotes references *inside* strings: ``"${aws_s3_bucket.b.arn}/*"``
  arrives as ``''aws_s3_bucket.b.arn'/*'`` and ``"${aws_iam_role.r.arn}"`` as
  ``''aws_iam_role.r.arn''``. :func:`parse_literal` reads all of these, joining such
  string/reference/string chains into the value checkov's full evaluation would give.
* A heredoc / JSON string is decoded to a ``dict`` by checkov already.
* ``data.aws_iam_policy_document.<name>.json`` stays a reference string; it is resolved here
  from checkov's resource graph when the data block is in the same configuration.
* Anything else (``var.x``, ``jsonencode(local.x)``, a function call) cannot be read and raises
  :class:`PolicyParseError`, which the checks turn into FAILED.

Checkov loads every ``.py`` file in the external-checks directory as a *top-level* module
(named after the file), so this module must not rely on being imported as ``checks.common``.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

Statement = dict[str, Any]
Policy = dict[str, Any]


class PolicyParseError(ValueError):
    """Raised when a policy (or a value a check depends on) cannot be read; checks FAIL on it."""


# --------------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------------

_INTERP = re.compile(r"\$\{([^{}]*)\}")


def strip_interpolation(value: str) -> str:
    """Remove ``${...}`` wrappers so both reference spellings compare equal to checkov's form."""
    previous = None
    while previous != value:
        previous, value = value, _INTERP.sub(r"\1", value)
    return value


def unwrap(value: Any) -> Any:
    """Checkov wraps every attribute value in a one-element list; return the inner value."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def as_list(value: Any) -> list[Any]:
    """IAM allows a scalar or a list for Action/Resource/principal values; always give a list."""
    if value is None:
        return []
    if isinstance(value, list):
        flat: list[Any] = []
        for item in value:
            flat.extend(as_list(item))
        return flat
    return [value]


def as_str_list(value: Any) -> list[str]:
    """Like :func:`as_list` but normalised strings (references without ``${}``)."""
    return [strip_interpolation(str(v)) for v in as_list(value)]


# --------------------------------------------------------------------------------------------
# Tolerant literal parser for unevaluated jsonencode(...) text
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<dstr>"(?:[^"\\]|\\.)*")
  | (?P<sstr>'(?:[^'\\]|\\.)*')
  | (?P<punct>[{}\[\],:=])
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<ref>[A-Za-z_][\w-]*(?:\.[\w*-]+|\[[^\]]*\])*)
    """,
    re.VERBOSE,
)
_KEYWORDS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}


@dataclass(frozen=True)
class _Token:
    kind: str  # dstr, sstr, punct, num, ref or eof
    text: str
    start: int
    end: int
    newline_before: bool  # HCL separates object items by newlines as well as commas


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    newline = False
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise PolicyParseError(f"unreadable policy text near {text[pos : pos + 40]!r}")
        kind = match.lastgroup or ""
        if kind == "ws":
            newline = newline or "\n" in match.group()
        else:
            tokens.append(_Token(kind, match.group(), match.start(), match.end(), newline))
            newline = False
        pos = match.end()
    return tokens


class _LiteralParser:
    """Strict recursive-descent reader for JSON / HCL object syntax / Python-repr literals.

    Bare traversals (``aws_iam_role.x.arn``) are returned as strings, exactly as checkov
    presents an evaluated reference; a function call is not a literal and raises. Array items
    must be separated by commas, object items by commas or newlines (HCL): anything else means
    the text was not understood and raises instead of being read some other way.

    checkov's partial evaluation renders an interpolation inside a string by quoting the
    reference *within* the string: ``"${aws_s3_bucket.b.arn}/*"`` becomes
    ``''aws_s3_bucket.b.arn'/*'`` and ``"${aws_iam_role.r.arn}"`` becomes
    ``''aws_iam_role.r.arn''``. Read as tokens that is string, reference, string with no
    space between them - never valid on its own in any of the three syntaxes - so such an
    adjacent chain is joined into one string (``aws_s3_bucket.b.arn/*``), the same value
    checkov gives when it evaluates the whole policy to a dict.
    """

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def _peek(self, ahead: int = 0) -> _Token:
        index = self.pos + ahead
        if index < len(self.tokens):
            return self.tokens[index]
        return _Token("eof", "", -1, -1, True)

    def _take(self) -> _Token:
        token = self._peek()
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self._value()
        if self._peek().kind != "eof":
            raise PolicyParseError(f"trailing text in policy: {self._peek().text!r}")
        return value

    @staticmethod
    def _string(token: _Token) -> str:
        try:
            decoded = ast.literal_eval(token.text)
        except (ValueError, SyntaxError) as exc:
            raise PolicyParseError(f"bad string literal {token.text!r}") from exc
        return str(decoded)

    def _string_chain(self, first: _Token) -> str:
        """A string token plus any directly adjacent ``<reference><string>`` pairs, joined."""
        parts = [self._string(first)]
        last = first
        while True:
            ref, closing = self._peek(), self._peek(1)
            if not (
                ref.kind == "ref"
                and ref.start == last.end
                and closing.kind in ("dstr", "sstr")
                and closing.start == ref.end
            ):
                break
            self.pos += 2
            parts.extend((ref.text, self._string(closing)))
            last = closing
        following = self._peek()
        if following.kind != "eof" and following.start == last.end and following.kind in ("ref", "num"):
            raise PolicyParseError(f"unreadable text after string: {last.text + following.text!r}")
        return strip_interpolation("".join(parts))

    def _value(self) -> Any:
        token = self._take()
        if token.kind in ("dstr", "sstr"):
            return self._string_chain(token)
        if token.kind == "num":
            return json.loads(token.text)
        if token.kind == "ref":
            if token.text in _KEYWORDS:
                return _KEYWORDS[token.text]
            return token.text
        if token.text == "{":
            return self._object()
        if token.text == "[":
            return self._array()
        raise PolicyParseError(f"unexpected {token.text or 'end of text'!r} in policy")

    def _object(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while True:
            if self._peek().text == "}":
                self._take()
                return result
            key = self._value()
            if not isinstance(key, str):
                raise PolicyParseError(f"non-string object key {key!r}")
            sep = self._take().text
            if sep not in (":", "="):
                raise PolicyParseError(f"expected ':' or '=' after key {key!r}")
            if key in result:
                raise PolicyParseError(f"duplicate object key {key!r}")
            result[key] = self._value()
            following = self._peek()
            if following.text == ",":
                self._take()
            elif following.text != "}" and not following.newline_before:
                raise PolicyParseError(f"expected ',' or '}}' after value of {key!r}, got {following.text!r}")

    def _array(self) -> list[Any]:
        result: list[Any] = []
        while True:
            if self._peek().text == "]":
                self._take()
                return result
            result.append(self._value())
            following = self._peek()
            if following.text == ",":
                self._take()
            elif following.text != "]":
                raise PolicyParseError(f"expected ',' or ']' in list, got {following.text!r}")


def parse_literal(text: str) -> Any:
    """Parse JSON, HCL object syntax or a Python repr (checkov's renderings) into Python values."""
    return _LiteralParser(text).parse()


# --------------------------------------------------------------------------------------------
# Graph helpers (checkov sets ``check.graph`` to the configuration's resource graph)
# --------------------------------------------------------------------------------------------


def iter_vertices(graph: Any) -> Iterator[dict[str, Any]]:
    """Yield vertex attribute dicts for rustworkx (default) and networkx graphs, or a list."""
    if graph is None:
        return
    if isinstance(graph, list):
        yield from (v for v in graph if isinstance(v, dict))
        return
    try:
        nodes = graph.nodes(data=True)  # networkx
    except TypeError:
        nodes = graph.nodes()  # rustworkx: payloads are (index, attributes)
    for item in nodes:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
            yield item[1]
        elif isinstance(item, dict):
            yield item


@dataclass(frozen=True)
class Block:
    """One resource or data block seen in the graph: its address and checkov-style conf."""

    block_type: str  # "resource" or "data"
    type: str  # e.g. "aws_iam_role"
    name: str
    conf: dict[str, Any]

    @property
    def provider(self) -> str:
        """Provider meta-argument (``aws.training``) or ``"aws"`` for the default provider."""
        value = unwrap(self.conf.get("provider"))
        return strip_interpolation(str(value)) if value else "aws"


def blocks(graph: Any, block_type: str, type_: str) -> list[Block]:
    """All blocks of one type (e.g. ``("resource", "aws_iam_role")``) in the graph."""
    found: list[Block] = []
    for vertex in iter_vertices(graph):
        if vertex.get("block_type_") != block_type:
            continue
        config = vertex.get("config_") or {}
        for rtype, by_name in config.items():
            if rtype != type_ or not isinstance(by_name, dict):
                continue
            for name, conf in by_name.items():
                if isinstance(conf, dict):
                    found.append(Block(block_type, rtype, name, conf))
    return found


def find_block(graph: Any, block_type: str, type_: str, name: str) -> Block | None:
    """The block ``type_.name`` or None. ``name`` may carry an index (``x[0]``), ignored."""
    base = name.split("[", 1)[0]
    for block in blocks(graph, block_type, type_):
        if block.name == base:
            return block
    return None


def provider_of(conf: dict[str, Any]) -> str:
    """Provider meta-argument of the scanned resource (``"aws"`` when not set)."""
    value = unwrap(conf.get("provider"))
    return strip_interpolation(str(value)) if value else "aws"


# --------------------------------------------------------------------------------------------
# Policy parsing
# --------------------------------------------------------------------------------------------

_DATA_DOC = re.compile(r"^data\.aws_iam_policy_document\.([\w-]+(?:\[[^\]]*\])?)\.json$")


def _policy_from_data_document(conf: dict[str, Any]) -> Policy:
    """Translate an ``aws_iam_policy_document`` data block into policy JSON.

    Documents merged from other documents cannot be seen statically and fail closed.
    """
    for opaque in ("source_json", "override_json", "source_policy_documents", "override_policy_documents"):
        if conf.get(opaque):
            raise PolicyParseError(f"aws_iam_policy_document uses {opaque}; cannot see the result")
    statements: list[Statement] = []
    for raw in as_list(conf.get("statement")):
        if not isinstance(raw, dict):
            raise PolicyParseError("unreadable statement block in aws_iam_policy_document")
        stmt: Statement = {"Effect": str(unwrap(raw.get("effect")) or "Allow")}
        for src, dst in (
            ("actions", "Action"),
            ("not_actions", "NotAction"),
            ("resources", "Resource"),
            ("not_resources", "NotResource"),
        ):
            if raw.get(src) is not None:
                stmt[dst] = as_str_list(raw.get(src))
        for src, dst in (("principals", "Principal"), ("not_principals", "NotPrincipal")):
            for block in as_list(raw.get(src)):
                ptype = str(unwrap(block.get("type")))
                ids = as_str_list(block.get("identifiers"))
                if ptype == "*":
                    stmt[dst] = "*"
                    continue
                principal = stmt.setdefault(dst, {})
                if isinstance(principal, dict):
                    principal.setdefault(ptype, []).extend(ids)
        conditions: dict[str, dict[str, list[str]]] = {}
        for block in as_list(raw.get("condition")):
            test = str(unwrap(block.get("test")))
            variable = str(unwrap(block.get("variable")))
            conditions.setdefault(test, {}).setdefault(variable, []).extend(as_str_list(block.get("values")))
        if conditions:
            stmt["Condition"] = conditions
        statements.append(stmt)
    return {"Version": "2012-10-17", "Statement": statements}


def parse_policy(value: Any, graph: Any = None) -> Policy:
    """Return the policy document behind a conf attribute value, or raise PolicyParseError."""
    value = unwrap(value)
    if isinstance(value, dict):
        policy = value
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("${") and text.endswith("}"):
            text = text[2:-1].strip()
        data_ref = _DATA_DOC.match(text)
        if data_ref:
            if graph is None:
                raise PolicyParseError(f"{text} cannot be resolved without checkov's graph")
            block = find_block(graph, "data", "aws_iam_policy_document", data_ref.group(1))
            if block is None:
                raise PolicyParseError(f"{text} is not defined in this configuration")
            policy = _policy_from_data_document(block.conf)
        else:
            if text.startswith("jsonencode(") and text.endswith(")"):
                text = text[len("jsonencode(") : -1]
            if not text.startswith("{"):
                raise PolicyParseError(f"policy is an opaque value: {value[:80]!r}")
            parsed = parse_literal(text)
            if not isinstance(parsed, dict):
                raise PolicyParseError("policy text is not an object")
            policy = parsed
    else:
        raise PolicyParseError(f"policy is missing or not readable ({type(value).__name__})")
    statements(policy)  # validates the Statement element
    return policy


def statements(policy: Policy) -> list[Statement]:
    """The policy's statements as a list; a missing or malformed Statement raises."""
    raw = policy.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        raise PolicyParseError("policy has no readable Statement list")
    return raw


def is_allow(stmt: Statement) -> bool:
    """Effect defaults to Allow when unreadable: a statement we cannot classify counts as a grant."""
    return str(stmt.get("Effect", "Allow")).strip().lower() != "deny"


def has_condition(stmt: Statement) -> bool:
    """True when the statement carries a non-empty Condition block."""
    condition = stmt.get("Condition")
    return isinstance(condition, dict) and any(bool(v) for v in condition.values())


def actions(stmt: Statement) -> list[str]:
    """Lower-cased Action values (IAM action names are case-insensitive)."""
    return [a.lower() for a in as_str_list(stmt.get("Action"))]


def action_matches(patterns: list[str], action: str) -> bool:
    """True when any policy action pattern (with IAM wildcards) covers ``action``."""
    action = action.lower()
    return any(fnmatch.fnmatchcase(action, p.lower()) for p in patterns)


def condition_values(stmt: Statement, operator: str, key: str) -> list[str] | None:
    """Values of ``Condition[operator][key]`` with case-insensitive operator/key lookup."""
    condition = stmt.get("Condition")
    if not isinstance(condition, dict):
        return None
    for op, body in condition.items():
        if str(op).lower() != operator.lower() or not isinstance(body, dict):
            continue
        for k, v in body.items():
            if str(k).lower() == key.lower():
                return as_str_list(v)
    return None


def condition_keys(stmt: Statement) -> set[str]:
    """All condition keys (lower-cased) of a statement, whatever the operator."""
    condition = stmt.get("Condition")
    keys: set[str] = set()
    if isinstance(condition, dict):
        for body in condition.values():
            if isinstance(body, dict):
                keys.update(str(k).lower() for k in body)
    return keys


# --------------------------------------------------------------------------------------------
# Principal classification
# --------------------------------------------------------------------------------------------

WILDCARD = "wildcard"
ROOT = "root"  # an account root (literal ARN, bare account id, or computed account)
ROLE_REF = "role_ref"  # reference to aws_iam_role.<name>.arn
ROLE_ARN = "role_arn"  # literal, non-wildcard role ARN
ROLE_WILDCARD = "role_wildcard"
USER = "user"
SERVICE = "service"
OTHER = "other"  # unknown reference, federated, canonical user, assumed-role, ...

_ROLE_REF = re.compile(r"^aws_iam_role\.([\w-]+(?:\[[^\]]*\])?)\.arn$")
_ROOT_ARN = re.compile(r"^arn:[^:]+:iam::(?P<account>[^:]+):root$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:[^:]+:iam::[^:]*:role/.+$")
_USER_ARN = re.compile(r"^arn:[^:]+:iam::[^:]*:user/.*$")
_CALLER_ACCOUNT = re.compile(r"^data\.aws_caller_identity\.([\w-]+)\.account_id$")


@dataclass(frozen=True)
class Principal:
    """One principal value of a statement, classified."""

    kind: str  # "AWS", "Service", "Federated", "CanonicalUser" or "*"
    value: str
    category: str


def classify_aws(value: str) -> str:
    """Classify one (normalised) AWS principal value."""
    if value == "*":
        return WILDCARD
    if _ACCOUNT_ID.match(value) or _ROOT_ARN.match(value):
        return ROOT
    if _ROLE_REF.match(value):
        return ROLE_REF
    if _ROLE_ARN.match(value):
        return ROLE_WILDCARD if "*" in value or "?" in value else ROLE_ARN
    if _USER_ARN.match(value):
        return USER
    if "*" in value:
        return WILDCARD
    return OTHER


def principals(stmt: Statement) -> list[Principal]:
    """Every principal of a statement. ``NotPrincipal`` is reported as a wildcard grant."""
    result: list[Principal] = []
    if "NotPrincipal" in stmt:
        result.append(Principal("*", "NotPrincipal", WILDCARD))
    raw = stmt.get("Principal")
    if raw is None:
        return result
    if isinstance(raw, str):
        value = strip_interpolation(raw)
        result.append(Principal("*", value, WILDCARD if value == "*" else OTHER))
        return result
    if not isinstance(raw, dict):
        raise PolicyParseError("unreadable Principal element")
    for kind, values in raw.items():
        for value in as_str_list(values):
            if kind == "AWS":
                category = classify_aws(value)
            elif kind == "Service":
                category = WILDCARD if "*" in value else SERVICE
            else:
                category = OTHER
            result.append(Principal(str(kind), value, category))
    return result


def role_exists(graph: Any, value: str) -> bool:
    """True when ``value`` is ``aws_iam_role.<name>.arn`` and that role is in this configuration."""
    match = _ROLE_REF.match(value)
    return bool(match) and find_block(graph, "resource", "aws_iam_role", match.group(1)) is not None


def provider_account(graph: Any, provider: str) -> str | None:
    """The one account a provider configuration is pinned to, or None when not provable.

    ``provider`` is a resource's provider meta-argument as :func:`provider_of` gives it
    (``"aws"`` for the default configuration, ``"aws.shared"`` for an alias). The account is
    known only when exactly one ``provider`` block of the graph (the scanned module) has that
    name and its ``allowed_account_ids`` holds exactly one literal 12-digit id: Terraform then
    refuses to run that provider against any other account. A missing block (e.g. inherited
    from a calling module), duplicates, several ids, a variable or ``forbidden_account_ids``
    alone give None.
    """
    local, _, alias = provider.partition(".")
    matches: list[dict[str, Any]] = []
    for vertex in iter_vertices(graph):
        if vertex.get("block_type_") != "provider":
            continue
        config = vertex.get("config_") or {}
        for name, conf in config.items():
            if name != local or not isinstance(conf, dict):
                continue
            conf_alias = unwrap(conf.get("alias"))
            if (strip_interpolation(str(conf_alias)) if conf_alias else "") == alias:
                matches.append(conf)
    if len(matches) != 1:
        return None
    ids = as_list(matches[0].get("allowed_account_ids"))
    if len(ids) != 1 or isinstance(ids[0], bool):
        return None
    account = str(ids[0])
    return account if _ACCOUNT_ID.match(account) else None


def is_own_root(graph: Any, value: str, resource_provider: str) -> bool:
    """True when ``value`` is the root ARN of the account the resource itself lives in.

    Provable in two ways, both tied to the resource's *own* provider (alias):

    * the account id is ``data.aws_caller_identity.<n>.account_id`` and that data source is
      read through the same provider as the resource;
    * the account id is a literal that equals the single ``allowed_account_ids`` entry of the
      resource's provider block (:func:`provider_account`).

    Any other literal id (or a bare account id instead of the root ARN) could be any account.
    """
    match = _ROOT_ARN.match(value)
    if not match:
        return False
    account_id = match.group("account")
    if _ACCOUNT_ID.match(account_id):
        return provider_account(graph, resource_provider) == account_id
    account = _CALLER_ACCOUNT.match(account_id)
    if not account:
        return False
    identity = find_block(graph, "data", "aws_caller_identity", account.group(1))
    return identity is not None and identity.provider == resource_provider


# --------------------------------------------------------------------------------------------
# KMS action classes (used by checks 2 and 6)
# --------------------------------------------------------------------------------------------

KMS_USE_ACTIONS = (
    "kms:encrypt",
    "kms:decrypt",
    "kms:reencryptfrom",
    "kms:reencryptto",
    "kms:generatedatakey",
    "kms:generatedatakeypair",
    "kms:generatedatakeypairwithoutplaintext",
    "kms:generatedatakeywithoutplaintext",
    "kms:generatemac",
    "kms:verifymac",
    "kms:sign",
    "kms:verify",
    "kms:derivesharedsecret",
    "kms:creategrant",
)
# Exactly the action strings of AWS's documented "Allow access for Key Administrators"
# statement (plus rotation/tagging). kms:Create* technically covers kms:CreateGrant; it is
# accepted because it is the documented pattern - prefer explicit actions in new policies.
KMS_ADMIN_ACTIONS = (
    "kms:create*",
    "kms:describe*",
    "kms:enable*",
    "kms:list*",
    "kms:put*",
    "kms:update*",
    "kms:revoke*",
    "kms:disable*",
    "kms:get*",
    "kms:delete*",
    "kms:tagresource",
    "kms:untagresource",
    "kms:schedulekeydeletion",
    "kms:cancelkeydeletion",
    "kms:rotatekeyondemand",
)


def is_kms_admin_only(stmt: Statement) -> bool:
    """True when every action is administrative: a listed admin pattern, or a concrete
    (wildcard-free) action covered by one that is not a key-use action."""
    acts = actions(stmt)
    if not acts or "NotAction" in stmt:
        return False
    for action in acts:
        if action in KMS_ADMIN_ACTIONS:
            continue
        if "*" in action or "?" in action:
            return False
        if action in KMS_USE_ACTIONS or not action_matches(list(KMS_ADMIN_ACTIONS), action):
            return False
    return True


def grants_kms_use(stmt: Statement) -> bool:
    """True when any action (wildcards expanded) is a key-use action, or NotAction is used."""
    if "NotAction" in stmt:
        return True
    return any(action_matches(actions(stmt), use) for use in KMS_USE_ACTIONS)


# --------------------------------------------------------------------------------------------
# Fail-closed base class
# --------------------------------------------------------------------------------------------


class FailClosedCheck(BaseResourceCheck):
    """Base for CKV_MLP checks: ``evaluate`` returns problems; no problem list means PASSED.

    checkov turns an exception inside a check into UNKNOWN, which a gate treats as "not
    failed". Here any exception (including :class:`PolicyParseError`) becomes FAILED, with the
    reason in the report's ``details`` so the generator author can see what to change.
    """

    def __init__(self, name: str, id: str, supported_resources: tuple[str, ...]) -> None:
        super().__init__(
            name=name,
            id=id,
            categories=(CheckCategories.IAM,),
            supported_resources=supported_resources,
        )

    _scanned_file: str = ""
    #: Vertices of the scanned resource's own Terraform module (directory), or None when the
    #: graph is unavailable. Set before :meth:`evaluate`; use it instead of ``self.graph``.
    scope: list[dict[str, Any]] | None = None

    def evaluate(self, conf: dict[str, Any]) -> list[str]:  # pragma: no cover - abstract
        """Return a list of human-readable problems (empty when the resource passes)."""
        raise NotImplementedError

    def run(
        self,
        scanned_file: str,
        entity_configuration: dict[str, Any],
        entity_name: str,
        entity_type: str,
        skip_info: Any,
    ) -> Any:
        """Remember which file is scanned so :meth:`_module_scope` can find its directory."""
        self._scanned_file = scanned_file
        return super().run(
            scanned_file=scanned_file,
            entity_configuration=entity_configuration,
            entity_name=entity_name,
            entity_type=entity_type,
            skip_info=skip_info,
        )

    def _module_scope(self, conf: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Vertices in the same directory (= Terraform module) as the scanned resource.

        checkov builds ONE graph for everything under ``-d``; without this, a role named
        ``pipeline`` in one directory would satisfy a reference in another. ``scanned_file`` is
        relative to the scan root, vertex paths are absolute: among vertices with this address
        whose path ends with it, the shortest path is the scanned one (the root is common).
        """
        if self.graph is None:
            return None
        vertices = list(iter_vertices(self.graph))
        address = conf.get("__address__")
        candidates = [
            str(v.get("file_path_", ""))
            for v in vertices
            if v.get("__address__") == address and str(v.get("file_path_", "")).endswith(self._scanned_file)
        ]
        if not candidates:
            return None
        directory = os.path.dirname(min(candidates, key=len))
        return [v for v in vertices if os.path.dirname(str(v.get("file_path_", ""))) == directory]

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        try:
            self.scope = self._module_scope(conf)
            problems = self.evaluate(conf)
        except Exception as exc:  # fail closed on anything unexpected
            problems = [f"cannot evaluate ({type(exc).__name__}): {exc}"]
        self.details.extend(problems)
        return CheckResult.FAILED if problems else CheckResult.PASSED

    def policy_attrs(self, conf: dict[str, Any]) -> list[tuple[str, Any]]:
        """(label, raw value) of every policy-bearing attribute of the scanned resource.

        A required policy attribute that is missing is returned as ``None`` so that it fails.
        """
        attrs: list[tuple[str, Any]] = []
        rtype = self.entity_type
        if rtype == "aws_iam_role":
            attrs.append(("assume_role_policy", conf.get("assume_role_policy")))
            for index, block in enumerate(as_list(conf.get("inline_policy"))):
                if isinstance(block, dict) and block.get("policy") is not None:
                    attrs.append((f"inline_policy[{index}].policy", block.get("policy")))
        elif rtype == "aws_kms_key":
            if conf.get("policy") is not None:
                attrs.append(("policy", conf.get("policy")))
        else:
            attrs.append(("policy", conf.get("policy")))
        return attrs


# --------------------------------------------------------------------------------------------
# ARNs, references, statements and pinned accounts (used by checks 7, 8 and 9)
# --------------------------------------------------------------------------------------------

_WILDCARD_CHARS = re.compile(r"[*?]")


def has_wildcard(value: str) -> bool:
    """True when an IAM string contains a wildcard character (``*`` or ``?``)."""
    return bool(_WILDCARD_CHARS.search(value))


def wildcard_only(value: str) -> bool:
    """True when a field is empty or made of wildcards only (``*``, ``**``, ``?*``): it names nothing."""
    return not _WILDCARD_CHARS.sub("", value)


def could_start_with(pattern: str, prefix: str) -> bool:
    """True when some string matched by the IAM ``pattern`` starts with ``prefix``.

    ``role/x`` and ``r*`` can name a role (``prefix="role/"``); ``user/*`` cannot.
    """
    literal = _WILDCARD_CHARS.split(pattern, 1)[0]
    if literal == pattern:
        return pattern.startswith(prefix)
    return prefix.startswith(literal) or literal.startswith(prefix)


@dataclass(frozen=True)
class Arn:
    """The six fields of a literal ARN; ``resource`` keeps its own colons (``log-group:x:*``)."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(value: str) -> Arn | None:
    """Split a (normalised) literal ARN; None when ``value`` is not ``arn:`` with all six fields.

    Fields may hold references checkov left in place (``arn:aws:iam::data.x.account_id:root``).
    """
    if not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    if len(parts) != 6:
        return None
    return Arn(parts[1], parts[2].lower(), parts[3], parts[4], parts[5])


@dataclass(frozen=True)
class Reference:
    """A Terraform reference as checkov presents it: ``[data.]<type>.<name>[idx].<attr><rest>``."""

    data: bool
    type: str
    name: str  # without the index
    attr: str
    rest: str  # text glued after the attribute, e.g. ``/data/*`` from ``"${x.arn}/data/*"``


_REFERENCE = re.compile(
    r"^(?P<data>data\.)?(?P<type>[a-z][a-z0-9]*_[a-z0-9_]+)\.(?P<name>[\w-]+)(?:\[[^\]]*\])?"
    r"\.(?P<attr>[\w-]+)(?P<rest>.*)$",
    re.DOTALL,
)


def parse_reference(value: str) -> Reference | None:
    """The resource or data-source reference at the start of ``value``, or None.

    ``var.x``, ``local.x``, ``module.x.y`` and literals are not references to a block and give None.
    """
    match = _REFERENCE.match(value)
    if not match:
        return None
    return Reference(
        data=bool(match.group("data")),
        type=match.group("type"),
        name=match.group("name"),
        attr=match.group("attr"),
        rest=match.group("rest"),
    )


def covers_service(stmt: Statement, service: str) -> bool:
    """True when the statement's actions can grant some action of ``service`` (e.g. ``"s3"``).

    ``*``, ``s3:*``, ``s?:Get*`` and ``s3*`` cover ``s3``; ``NotAction`` is treated as covering
    every service (Allow with NotAction grants everything not listed).
    """
    if "NotAction" in stmt:
        return True
    service = service.lower()
    for pattern in actions(stmt):
        svc, sep, _ = pattern.partition(":")
        if sep:
            if fnmatch.fnmatchcase(service, svc):
                return True
        elif has_wildcard(pattern) and could_start_with(pattern, f"{service}:"):
            return True
    return False


def statement_label(label: str, index: int, stmt: Statement) -> str:
    """``policy Statement[2] (Sid 'ReadData')``: how failure messages name a statement."""
    sid = stmt.get("Sid")
    return f"{label} Statement[{index}]" + (f" (Sid {strip_interpolation(str(sid))!r})" if sid else "")


def pinned_accounts(graph: Any) -> set[str]:
    """Every account an ``aws`` provider configuration of the graph (module) is provably pinned to.

    Each ``provider "aws"`` block (default or alias) contributes its account when
    :func:`provider_account` proves it (exactly one literal ``allowed_account_ids`` entry); a
    block that is unpinned, pinned to several accounts or to a variable contributes nothing.
    """
    accounts: set[str] = set()
    for vertex in iter_vertices(graph):
        if vertex.get("block_type_") != "provider":
            continue
        for name, conf in (vertex.get("config_") or {}).items():
            if name != "aws" or not isinstance(conf, dict):
                continue
            alias = unwrap(conf.get("alias"))
            account = provider_account(graph, f"aws.{strip_interpolation(str(alias))}" if alias else "aws")
            if account:
                accounts.add(account)
    return accounts


def caller_identity_account(graph: Any, value: str) -> bool:
    """True when ``value`` is ``data.aws_caller_identity.<n>.account_id`` declared in the graph:
    the account one of the module's own provider configurations runs in."""
    match = _CALLER_ACCOUNT.match(value)
    return bool(match) and find_block(graph, "data", "aws_caller_identity", match.group(1)) is not None


IDENTITY_POLICY_RESOURCES = (
    "aws_iam_policy",
    "aws_iam_role_policy",
    "aws_iam_user_policy",
    "aws_iam_group_policy",
    "aws_iam_role",  # its inline_policy blocks; the trust policy is not an identity policy
)


def permission_policy_attrs(check: FailClosedCheck, conf: dict[str, Any]) -> list[tuple[str, Any]]:
    """:meth:`FailClosedCheck.policy_attrs` without a role's trust policy (which has no Resource)."""
    return [(label, raw) for label, raw in check.policy_attrs(conf) if label != "assume_role_policy"]
