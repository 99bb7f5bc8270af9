"""Write the access proof down: JSON for tools, Markdown for reviewers, SARIF for the gate's code-scanning file.

Why three forms: the JSON keeps every call with its decision for diffing and scripts; the Markdown is what a
reviewer reads (findings first, then the graph and the table of every call); SARIF results let the gate append the
findings to checkov's file, located at the stack's ``cdk.tf`` resource that holds the document to fix.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlpipe.gate.access.analysis import AccessReport, CheckedCall, Expectation, Finding, FindingKind
from mlpipe.gate.access.graph import mermaid

JSON_REPORT = "access-calls.json"
MARKDOWN_REPORT = "access-calls.md"
SARIF_REPORT = "access-calls.sarif"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "mlpipe-access"

RULES: dict[FindingKind, tuple[str, str, str]] = {
    FindingKind.NEEDED_DENIED: (
        "MLPIPE_ACCESS_1",
        "NeededCallDenied",
        "A call a pipeline run makes is not allowed by the generated policies: the run would fail with AccessDenied.",
    ),
    FindingKind.FORBIDDEN_ALLOWED: (
        "MLPIPE_ACCESS_2",
        "ForbiddenCallAllowed",
        "A call that must be denied (isolation between accounts, pipelines and roles) is allowed.",
    ),
    FindingKind.UNDECIDABLE: (
        "MLPIPE_ACCESS_3",
        "UndecidableCall",
        "A call cannot be decided before apply (an unresolvable reference or an unsupported policy element).",
    ),
    FindingKind.UNMODELLED: (
        "MLPIPE_ACCESS_4",
        "UnmodelledPermissions",
        "A permission is attached in a form the access proof cannot read, so it cannot prove the calls it affects.",
    ),
}


def _call_json(c: CheckedCall) -> dict[str, Any]:
    return {
        "pipeline": c.pipeline,
        "step": c.step,
        "expectation": c.expectation.value,
        "label": c.label,
        "origin": c.origin or None,
        "principal": c.principal,
        "action": c.action,
        "resource": c.resource,
        "context": dict(c.call.context) if c.call else None,
        "decision": c.outcome,
        "ok": c.ok,
        "deciding": c.deciding,
        "reason": c.decision.reason if c.decision else c.spec.outside,
        "missing": list(c.decision.missing) if c.decision else [],
    }


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"kind": f.kind.value, "line": f.line, "fix": f.fix, "stack": f.stack, "address": f.address}


def to_json(report: AccessReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "summary": report.summary(),
        "findings": [_finding_json(f) for f in report.issues],
        "calls": [_call_json(c) for c in report.calls],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short(report: AccessReport, arn: str) -> str:
    """A role by its name and account, anything else as given."""
    if arn.startswith("arn:") and ":iam::" in arn:
        account = report.accounts.get(arn.split(":")[4], arn.split(":")[4])
        return f"{account}:{report.labels.get(arn, arn.rsplit('/', 1)[-1])}"
    return arn


def to_markdown(report: AccessReport) -> str:
    summary = report.summary()
    needed, forbidden = report.count(Expectation.NEEDED), report.count(Expectation.FORBIDDEN)
    lines = ["# Access proof", ""]
    if report.ok:
        lines.append(f"All {needed} needed calls are allowed and all {forbidden} forbidden calls are denied.")
    else:
        lines.append(f"**{len(report.issues)} finding(s)** in {needed} needed and {forbidden} forbidden calls.")
    lines += ["", "| Pipeline | Needed | Forbidden | Outside the policies |", "| --- | --- | --- | --- |"]
    lines += [f"| {p} | {n['needed']} | {n['forbidden']} | {n['outside']} |" for p, n in summary.items()]
    if report.issues:
        lines += ["", "## Findings", "", "```text", *report.findings, "```"]
    lines += ["", "## Access graph", "", "Allowed needed calls, by account and pipeline.", "", "```mermaid"]
    lines += [mermaid(report).rstrip("\n"), "```"]
    outside = [c for c in report.calls if c.expectation is Expectation.OUTSIDE]
    if outside:
        lines += ["", "## Outside the generated policies", ""]
        lines += [
            f"- {c.pipeline} {c.step}: `{_short(report, c.principal)}` `{c.action}` `{c.resource}`: {c.spec.outside}"
            for c in outside
        ]
    lines += [
        "",
        "## Calls",
        "",
        "| Pipeline | Step | Expected | Principal | Action | Resource | Decision | Deciding |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in report.calls:
        expected = c.expectation.value + (f" ({c.origin})" if c.origin else "")
        deciding = "<br>".join(_cell(d) for d in c.deciding)
        mark = "" if c.ok else " ❌"
        lines.append(
            f"| {c.pipeline} | {c.step} | {_cell(expected)} | `{_cell(_short(report, c.principal))}` | `{c.action}` "
            f"| `{_cell(c.resource)}` | {c.outcome}{mark} | {deciding} |"
        )
    return "\n".join(lines) + "\n"


def write_reports(report: AccessReport, directory: Path) -> dict[str, Path]:
    """Write ``access-calls.json`` and ``access-calls.md`` (with the Mermaid graph) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / JSON_REPORT, "markdown": directory / MARKDOWN_REPORT}
    paths["json"].write_text(json.dumps(to_json(report), indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(to_markdown(report), encoding="utf-8")
    return paths


def _line_of(stacks_dir: Path | None, stack: str, address: str | None) -> int | None:
    """The line of ``resource "<type>" "<name>"`` (or ``data ...``) in the stack's cdk.tf."""
    if stacks_dir is None or address is None:
        return None
    path = stacks_dir / stack / "cdk.tf"
    if not path.is_file():
        return None
    kind, rest = ("data", address.removeprefix("data.")) if address.startswith("data.") else ("resource", address)
    rtype, _, name = rest.partition(".")
    pattern = re.compile(rf'^\s*{kind}\s+"{re.escape(rtype)}"\s+"{re.escape(name)}"\s*\{{')
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if pattern.match(line):
            return number
    return None


def sarif_run(report: AccessReport, stacks_dir: Path | None = None) -> dict[str, Any]:
    """One SARIF 2.1.0 ``run``: a rule per kind of finding, an error result per finding at its stack's cdk.tf.

    ``stacks_dir`` (the directory holding ``<stack>/cdk.tf``) adds the line of the resource to fix; URIs are
    relative to it, as in checkov's results for the same directory.
    """
    kinds = list(RULES)
    rules = [
        {
            "id": rule_id,
            "name": name,
            "shortDescription": {"text": name},
            "fullDescription": {"text": text},
            "defaultConfiguration": {"level": "error"},
        }
        for rule_id, name, text in RULES.values()
    ]
    results = []
    for f in report.issues:
        location: dict[str, Any] = {"artifactLocation": {"uri": f"{f.stack}/cdk.tf"}}
        if (line := _line_of(stacks_dir, f.stack, f.address)) is not None:
            location["region"] = {"startLine": line}
        results.append(
            {
                "ruleId": RULES[f.kind][0],
                "ruleIndex": kinds.index(f.kind),
                "level": "error",
                "message": {"text": f.line},
                "locations": [{"physicalLocation": location}],
                "properties": {"fix": f.fix, "resource": f.address},
            }
        )
    return {"tool": {"driver": {"name": TOOL_NAME, "rules": rules}}, "results": results}


def sarif_log(report: AccessReport, stacks_dir: Path | None = None) -> dict[str, Any]:
    """A complete SARIF 2.1.0 file holding only the access proof's run."""
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [sarif_run(report, stacks_dir)]}
