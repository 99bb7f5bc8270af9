"""Decide every call of the call list against the synthesized policies and report what is not as it must be.

``analyze`` fills the call list (calls.py) with each pipeline's deployed names (vocabulary.py), evaluates every
call with AWS's rules (evaluator.py) against the documents of all stacks (inventory.py), and turns every surprise
into a finding: a needed call that is not ALLOWED, a forbidden call that is not denied, anything UNDECIDABLE, and
any permission attachment the proof cannot read. Forbidden calls are the list's own negatives, plus one derived
rule: every call a pipeline's role makes on its own pipeline's resources must be denied on every other pipeline's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlpipe.core.config import PipelineSpec, ProjectConfig
from mlpipe.gate.access import advice
from mlpipe.gate.access.calls import CROSS_PIPELINE, FORBIDDEN, NEEDED, PLATFORM_FORBIDDEN, CallSpec
from mlpipe.gate.access.evaluator import Call, Decision, Document, Outcome, PolicySet, evaluate
from mlpipe.gate.access.inventory import Inventory, Unresolvable
from mlpipe.gate.access.vocabulary import Values, outsiders, pipeline_values, platform_values

PLATFORM = "platform"  # the pseudo-pipeline of checks on what all pipelines share
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
ADMINISTRATOR = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "AssumedAdministrator", "Effect": "Allow", "Action": "*", "Resource": "*"}],
}


class Expectation(StrEnum):
    NEEDED = "needed"
    FORBIDDEN = "forbidden"
    OUTSIDE = "outside"  # authorized by something the generated policies do not hold; listed, not evaluated


class FindingKind(StrEnum):
    NEEDED_DENIED = "needed-call-denied"
    FORBIDDEN_ALLOWED = "forbidden-call-allowed"
    UNDECIDABLE = "undecidable-call"
    UNMODELLED = "unmodelled-permissions"


@dataclass(frozen=True)
class CheckedCall:
    """One call of one pipeline, as decided; ``call`` is None when a name it needs could not be derived."""

    pipeline: str
    stack: str
    step: str
    expectation: Expectation
    label: str
    spec: CallSpec
    principal: str
    action: str
    resource: str
    call: Call | None
    decision: Decision | None  # None for calls outside the generated policies
    origin: str = ""  # "churn -> fraud" for a cross-pipeline check

    @property
    def outcome(self) -> str:
        return self.decision.outcome.value if self.decision else "OUTSIDE"

    @property
    def ok(self) -> bool:
        if self.decision is None:
            return True
        if self.expectation is Expectation.NEEDED:
            return self.decision.outcome is Outcome.ALLOWED
        return self.decision.outcome in (Outcome.EXPLICIT_DENY, Outcome.IMPLICIT_DENY)

    @property
    def deciding(self) -> list[str]:
        return [f"{doc} / {sid}" for doc, sid in self.decision.deciding] if self.decision else []

    def describe(self) -> str:
        where = f"{self.pipeline} {self.step}" + (f" ({self.origin})" if self.origin else "")
        return f"{where}: {self.expectation.value} call {self.principal} {self.action} {self.resource}"


@dataclass(frozen=True)
class Finding:
    """One line naming the call (or attachment) and the deciding or missing statement, and a ``fix:`` line."""

    kind: FindingKind
    line: str
    fix: str
    stack: str
    address: str | None = None
    checked: CheckedCall | None = None

    def __str__(self) -> str:
        return f"{self.line}\n  fix: {self.fix}"


@dataclass
class AccessReport:
    """Every call decided for one configuration, and the findings; ``ok`` when there are none."""

    config: ProjectConfig
    calls: list[CheckedCall]
    issues: list[Finding]
    roles: list[tuple[str, str]]  # (stack, role ARN) of every role in the manifests
    labels: dict[str, str] = field(default_factory=dict)  # ARN -> short name (roles, buckets, key aliases)

    @property
    def findings(self) -> list[str]:
        """Each finding as its line plus its ``fix:`` line (what the gate prints)."""
        return [str(f) for f in self.issues]

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def accounts(self) -> dict[str, str]:
        """Account id -> account key (shared, training, production)."""
        return {a.account_id: key for key, a in self.config.accounts.items()}

    def count(self, expectation: Expectation | None = None, pipeline: str | None = None) -> int:
        return sum(
            1
            for c in self.calls
            if (expectation is None or c.expectation is expectation) and (pipeline is None or c.pipeline == pipeline)
        )

    def summary(self) -> dict[str, dict[str, int]]:
        """Pipeline (and ``platform``) -> expectation -> number of calls."""
        counts = Counter((c.pipeline, c.expectation.value) for c in self.calls)
        pipelines = [p.name for p in self.config.pipelines] + [PLATFORM]
        return {p: {e.value: counts[p, e.value] for e in Expectation} for p in pipelines}

    def render(self) -> str:
        parts = ", ".join(f"{p}: {n['needed']} needed/{n['forbidden']} forbidden" for p, n in self.summary().items())
        head = f"access proof: {len(self.issues)} finding(s); {parts}"
        return "\n".join([head, *self.findings])


def _fill(template: str, values: Values) -> str:
    def one(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:
            raise Unresolvable(f"the call list uses an unknown placeholder {{{match.group(1)}}}")
        if isinstance(value, Unresolvable):
            raise value
        return value

    return _PLACEHOLDER.sub(one, template)


def _display(template: str, values: Values) -> str:
    """The template with what can be filled filled (for naming calls that cannot be built)."""
    return _PLACEHOLDER.sub(lambda m: v if isinstance(v := values.get(m.group(1)), str) else m.group(0), template)


class _Analysis:
    """The state of one analysis: inventory, policies, values per pipeline, and what was checked so far."""

    def __init__(self, config: ProjectConfig, manifests: Mapping[str, Mapping[str, Any]]) -> None:
        self.config = config
        self.inventory = Inventory(config, manifests)
        admin = {
            arn: [Document(f"assumed:{arn.rsplit('/', 1)[1]}@{arn.split(':')[4]}", ADMINISTRATOR)]
            for arn in outsiders(self.inventory).values()
        }
        self.policies: PolicySet = self.inventory.policy_set(admin)
        self.values = {spec.name: pipeline_values(self.inventory, spec) for spec in config.pipelines}
        self.checked: list[CheckedCall] = []
        self._seen: set[tuple[Any, ...]] = set()

    def build(self, spec: CallSpec, actor: Values, target: Values) -> Call:
        principal = _fill(spec.principal, actor)
        resource = _fill(spec.resource, target)
        context: dict[str, str] = {k: _fill(v, target) for k, v in spec.context.items()}
        context.setdefault("aws:SecureTransport", "true")  # every SDK and service call is HTTPS
        account = _fill(spec.principal_account, target) if spec.principal_account else None
        bucket_account = None
        if resource.startswith(f"arn:{self.config.partition}:s3:::"):
            bucket_account = self.inventory.bucket_account(resource.split(":::", 1)[1].split("/", 1)[0])
        return Call(principal, spec.action, resource, context, account, bucket_account)

    def check(
        self,
        spec: CallSpec,
        pipeline: str,
        stack: str,
        expectation: Expectation,
        actor: Values,
        target: Values,
        label: str | None = None,
        origin: str = "",
    ) -> None:
        display = (_display(spec.principal, actor), spec.action, _display(spec.resource, target))
        try:
            call: Call | None = self.build(spec, actor, target)
        except Unresolvable as exc:
            call = None
            decision: Decision | None = Decision(Outcome.UNDECIDABLE, f"cannot derive the call: {exc}")
        else:
            decision = None if spec.outside else evaluate(self.policies, call)
            display = (call.principal, call.action, call.resource)
        if spec.outside and call is not None:
            expectation = Expectation.OUTSIDE
        key = (pipeline, expectation, *display, tuple(sorted(call.context.items())) if call else ())
        if key in self._seen:
            return
        self._seen.add(key)
        self.checked.append(
            CheckedCall(
                pipeline, stack, spec.step, expectation, label or spec.label, spec, *display, call, decision, origin
            )
        )

    def run(self) -> list[CheckedCall]:
        platform = platform_values(self.inventory)
        for spec in self.config.pipelines:
            values = self.values[spec.name]
            for call in NEEDED:
                self.check(call, spec.name, spec.name, Expectation.NEEDED, values, values)
            for call in FORBIDDEN:
                self.check(call, spec.name, spec.name, Expectation.FORBIDDEN, values, values)
        for actor in self.config.pipelines:
            for target in self.config.pipelines:
                if actor.name != target.name:
                    self.cross_pipeline(actor, target)
        for call in PLATFORM_FORBIDDEN:
            self.check(call, PLATFORM, "foundation", Expectation.FORBIDDEN, platform, platform)
        return self.checked

    def cross_pipeline(self, actor: PipelineSpec, target: PipelineSpec) -> None:
        """What ``actor``'s roles do to their own pipeline's resources, aimed at ``target``'s: must be denied."""
        own, other = self.values[actor.name], self.values[target.name]
        for spec in (*NEEDED, *CROSS_PIPELINE):
            if not spec.by_role or spec.outside or spec.action in READ_ANYWHERE:
                continue
            try:
                if _owner(self.build(spec, own, own).resource) == _owner(self.build(spec, own, other).resource):
                    continue  # an account-wide resource ("*", a log group a service shares): not the pipeline's
            except Unresolvable:
                continue  # the needed call of one of the two pipelines already reports it
            label = spec.label if spec in CROSS_PIPELINE else f"pipelines are isolated ({spec.label})"
            origin = f"{actor.name} -> {target.name}"
            self.check(spec, actor.name, actor.name, Expectation.FORBIDDEN, own, other, label, origin)


# Reads that AWS authorizes account-wide, whatever resource they concern: Application Auto Scaling
# validates its caller's cloudwatch:DescribeAlarms on "*" before RegisterScalableTarget. Seeing
# another pipeline's alarm definitions is metadata, not data, so it is not an isolation breach.
READ_ANYWHERE = frozenset({"cloudwatch:DescribeAlarms"})


def _owner(resource: str) -> str:
    """The resource a call really reaches (log streams count on their own: each pipeline writes its own)."""
    return resource


def _finding(c: CheckedCall, analysis: _Analysis) -> Finding | None:
    """The finding for a call decided the wrong way (None when it is decided as it must be)."""
    if c.ok or c.decision is None:
        return None
    documents, config = analysis.inventory.documents, analysis.config
    decision, named = c.decision, []
    if decision.outcome is Outcome.UNDECIDABLE:
        kind = FindingKind.UNDECIDABLE
        detail = f"UNDECIDABLE: {decision.reason}"
        fix = advice.fix_undecidable(decision.reason, c.call is None)
    elif c.expectation is Expectation.NEEDED:
        assert c.call is not None
        kind = FindingKind.NEEDED_DENIED
        fix, named = advice.fix_denied(c.call, decision, analysis.policies, documents, config)
        if decision.deciding:
            detail = f"{decision.outcome.value}: denied by {', '.join(c.deciding)}"
        else:
            missing = ", ".join(named) or "; ".join(decision.missing)
            detail = f"{decision.outcome.value}: missing an allowing statement in {missing}"
    else:
        assert c.call is not None
        kind = FindingKind.FORBIDDEN_ALLOWED
        fix, named = advice.fix_allowed(c.call, decision, documents, config)
        detail = f"ALLOWED but must be denied ({c.label}): allowed by {', '.join(c.deciding)}"
    origin = next((documents[n] for n in named if n in documents), None)
    stack, address = (origin.stack, origin.address) if origin else (c.stack, None)
    return Finding(kind, f"{c.describe()} -> {detail}", fix, stack, address, c)


def analyze(config: ProjectConfig, manifests: Mapping[str, Mapping[str, Any]]) -> AccessReport:
    """Decide every needed and forbidden call of every pipeline; ``manifests`` by stack name, foundation included."""
    analysis = _Analysis(config, manifests)
    checked = analysis.run()
    issues = [
        Finding(
            FindingKind.UNMODELLED,
            f"{stack}: {address}: {what}",
            "the access proof cannot read this permission, so the calls it could affect are undecidable: express it "
            "as a recorded policy document (modules/stack.py) or teach mlpipe/gate/access/inventory.py to read it",
            stack,
            address,
        )
        for stack, address, what in analysis.inventory.problems
    ]
    issues += [f for c in checked if (f := _finding(c, analysis)) is not None]
    labels = dict(analysis.inventory.labels)
    for key, arn in outsiders(analysis.inventory).items():
        labels[arn] = f"administrator of the {key.removeprefix('outsider_')} account (named by no policy)"
    return AccessReport(config, checked, issues, analysis.inventory.roles(), labels)
