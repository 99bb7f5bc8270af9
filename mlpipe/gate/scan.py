"""The policy gate: checkov (built-in + our cross-account checks) and parliament, before Terraform.

The gate is fail-closed: failed checks, checks checkov could not evaluate (parsing errors) and
policy lint findings all stop the run. It scans the *staged* copy of every stack (the directory
Terraform will run in) and records a fingerprint of exactly the bytes it scanned, taken before
and after the scan: a directory that changed while it was scanned is refused, and `plan` and
`apply` refuse any directory whose bytes differ from the record. The only override
(`--i-accept-failed-scan`) prints a banner and writes an audit line.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpipe.core.errors import Interrupted, ScanFailed
from mlpipe.core.processes import CHILDREN
from mlpipe.gate.fingerprint import directory_fingerprint
from mlpipe.gate.placeholders import with_placeholders

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
CHECKOV_ENV = {
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "BC_SKIP_MAPPING": "TRUE",
    "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    "LOG_LEVEL": "WARNING",
}
GATE_RECORD = "gate.json"


@dataclass(frozen=True)
class Finding:
    """One failed check, located in the generated HCL."""

    check_id: str
    check_name: str
    resource: str
    file: str
    lines: tuple[int, int]

    def render(self) -> str:
        return (
            f"FAILED {self.check_id} {self.resource} ({self.file}:{self.lines[0]}-{self.lines[1]}): {self.check_name}"
        )


@dataclass(frozen=True)
class Skip:
    check_id: str
    resource: str
    reason: str
    file: str = ""


@dataclass
class ScanReport:
    """Everything the gate decided, for every stack of one configuration."""

    passed: int
    failed: list[Finding]
    skipped: list[Skip]
    parsing_errors: list[str]
    lint_findings: list[str]
    access_findings: list[str]
    fingerprints: dict[str, str]
    seconds: float
    reports: dict[str, Path] = field(default_factory=dict)
    passed_by_stack: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.parsing_errors or self.lint_findings or self.access_findings)

    @property
    def failed_ids(self) -> list[str]:
        ids = {f.check_id for f in self.failed}
        ids |= {"PARSING_ERROR"} if self.parsing_errors else set()
        ids |= {"POLICY_LINT"} if self.lint_findings else set()
        ids |= {"ACCESS_PROOF"} if self.access_findings else set()
        return sorted(ids)

    def render(self) -> str:
        stacks = ", ".join(f"{name} {count}" for name, count in self.passed_by_stack.items())
        lines = [
            f"scan: {self.passed} passed ({stacks}), {len(self.failed)} failed, {len(self.skipped)} skipped, "
            f"{len(self.parsing_errors)} parsing errors, {len(self.lint_findings)} policy lint findings, "
            f"{len(self.access_findings)} access findings ({self.seconds:.1f} s)"
        ]
        lines += [f"  {f.render()}" for f in self.failed]
        lines += [f"  PARSING ERROR {p}" for p in self.parsing_errors]
        lines += [f"  LINT {f}" for f in self.lint_findings]
        lines += [f"  ACCESS {f}" for f in self.access_findings]
        lines += [f"  skipped {s.check_id} on {s.file}{s.resource}: {s.reason}" for s in self.skipped]
        lines += [f"  report: {kind} -> {path}" for kind, path in sorted(self.reports.items())]
        return "\n".join(lines)


def checkov_command(stacks_dir: Path, reports_dir: Path) -> list[str]:
    """The exact checkov invocation: offline, HCL only, our checks loaded, three report formats.

    One run over the directory of all stacks: checkov keeps each stack's files apart (results carry
    the file path), and its start-up (~4 s) is paid once, not once per pipeline.
    """
    checkov = Path(sys.executable).with_name("checkov")
    return [
        str(checkov),
        "--directory", str(stacks_dir),
        "--framework", "terraform",
        "--external-checks-dir", str(CHECKS_DIR),
        "--skip-download",
        "--compact",
        "--output", "json",
        "--output", "sarif",
        "--output", "junitxml",
        "--output-file-path", str(reports_dir),
    ]  # fmt: skip


Runner = Callable[[list[str], Mapping[str, str]], subprocess.CompletedProcess[str]]


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        argv,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches checkov only through CHILDREN
    )
    with CHILDREN.track(proc):
        stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def run_checkov(stacks_dir: Path, reports_dir: Path, runner: Runner = _run) -> dict[str, Any]:
    """Run checkov and return its JSON results (one framework: terraform)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    results_file = reports_dir / "results_json.json"
    results_file.unlink(missing_ok=True)  # never read a previous run's results
    proc = runner(checkov_command(stacks_dir, reports_dir), {**os.environ, **CHECKOV_ENV})
    if CHILDREN.interrupted.is_set():
        raise Interrupted("scan interrupted: nothing was recorded", "run the command again")
    if proc.returncode not in (0, 1) or not results_file.is_file():
        raise ScanFailed(
            f"checkov could not scan {stacks_dir} (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}",
            "the gate fails closed: fix the error above and scan again",
        )
    data = json.loads(results_file.read_text())
    if isinstance(data, list):  # several frameworks: keep terraform's
        data = next((d for d in data if d.get("check_type") == "terraform"), {})
    if not data:
        # checkov prints an empty report when it found nothing to scan at all
        raise ScanFailed(f"checkov found no Terraform to scan in {stacks_dir}", "run synth first")
    return data


def _stack_of(file_path: str) -> str:
    return file_path.strip("/").split("/", 1)[0]


def scan(
    stacks_dir: Path,
    stacks: list[str],
    reports_dir: Path,
    region: str,
    access: Callable[[], list[str]] | None = None,
    runner: Runner = _run,
) -> ScanReport:
    """Run the whole gate on the staged stacks; never raises for findings, see `enforce`."""
    from mlpipe.gate.policy_lint import lint_policies

    started = time.monotonic()
    before = {stack: directory_fingerprint(stacks_dir / stack) for stack in stacks}
    data = run_checkov(stacks_dir, reports_dir, runner)
    results = data.get("results", {})
    scanned = {
        _stack_of(r.get("file_path", "")) for kind in ("passed_checks", "failed_checks") for r in results.get(kind, [])
    }
    if missing := sorted(set(stacks) - scanned):
        raise ScanFailed(f"checkov reported nothing for stack(s) {missing}", "the gate fails closed: scan again")
    failed = [
        Finding(
            check_id=r["check_id"],
            check_name=r.get("check_name", ""),
            resource=r["resource"],
            file=r.get("file_path", "").lstrip("/"),
            lines=tuple(r.get("file_line_range") or (0, 0)),  # type: ignore[arg-type]
        )
        for r in results.get("failed_checks", [])
    ]
    skipped = [
        Skip(
            r["check_id"],
            r["resource"],
            (r.get("check_result") or {}).get("suppress_comment", ""),
            f"{_stack_of(r.get('file_path', ''))}:",
        )
        for r in results.get("skipped_checks", [])
    ]
    passed_by_stack = {stack: 0 for stack in stacks}
    for r in results.get("passed_checks", []):
        passed_by_stack[_stack_of(r.get("file_path", ""))] = passed_by_stack.get(_stack_of(r["file_path"]), 0) + 1
    parsing = [str(p) for p in results.get("parsing_errors", [])]
    lint: list[str] = []
    for stack in stacks:
        manifest = json.loads((stacks_dir / stack / "mlpipe-stack.json").read_text())
        try:
            documents = {name: with_placeholders(doc, region) for name, doc in manifest["policies"].items()}
        except ValueError as exc:
            raise ScanFailed(f"{stack}: cannot lint the policy documents: {exc}", "the gate fails closed") from exc
        lint += [f"{stack}: {f.policy}: {f.issue} ({f.severity}) {f.detail}" for f in lint_policies(documents)]
    access_findings = access() if access is not None else []
    merge_sarif(reports_dir / "results_sarif.sarif", reports_dir / "access-calls.sarif")
    after = {stack: directory_fingerprint(stacks_dir / stack) for stack in stacks}
    if changed := sorted(s for s in stacks if before[s] != after[s]):
        raise ScanFailed(
            f"stack(s) {changed} changed on disk while they were being scanned; nothing was recorded",
            "make sure no other process writes to the workspace, then scan again",
        )
    report = ScanReport(
        passed=sum(passed_by_stack.values()),
        failed=sorted(failed, key=lambda f: (f.file, f.check_id, f.resource)),
        skipped=sorted(skipped, key=lambda s: (s.file, s.check_id, s.resource)),
        parsing_errors=parsing,
        lint_findings=lint,
        access_findings=access_findings,
        fingerprints=after,
        seconds=time.monotonic() - started,
        reports={
            "json": reports_dir / "results_json.json",
            "sarif": reports_dir / "results_sarif.sarif",
            "junit": reports_dir / "results_junitxml.xml",
            **(
                {"access": reports_dir / "access-calls.md", "graph": reports_dir / "access-graph.svg"}
                if access is not None
                else {}
            ),
        },
        passed_by_stack=passed_by_stack,
    )
    summary = reports_dir / "summary.txt"
    summary.write_text(report.render() + "\n")
    report.reports["summary"] = summary
    return report


def merge_sarif(checkov_sarif: Path, access_sarif: Path) -> None:
    """Put the access proof's run next to checkov's, so code scanning shows every finding of the gate."""
    if not (checkov_sarif.is_file() and access_sarif.is_file()):
        return
    combined = json.loads(checkov_sarif.read_text())
    runs = [r for r in combined.get("runs", []) if r.get("tool", {}).get("driver", {}).get("name") != "mlpipe-access"]
    combined["runs"] = [*runs, *json.loads(access_sarif.read_text()).get("runs", [])]
    checkov_sarif.write_text(json.dumps(combined, indent=2) + "\n")


def audit(log: Path, event: str, **fields: Any) -> None:
    """Append one JSON line to the audit log: who, when, what (the log survives `make clean`)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "user": _user(), "event": event, **fields}
    with log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


OVERRIDE_BANNER = (
    "!!! SCAN FAILED AND WAS OVERRIDDEN with --i-accept-failed-scan: Terraform will run on a configuration "
    "that failed the policy gate ({ids}) !!!"
)


def enforce(
    report: ScanReport,
    accept_failed_scan: bool,
    log: Path,
    config_path: Path,
    record_path: Path,
    extra: dict[str, Any] | None = None,
) -> None:
    """Record what was scanned, then stop everything unless the scan is clean or loudly overridden."""
    overridden = not report.ok and accept_failed_scan
    record = {
        "ok": report.ok,
        "overridden": overridden,
        "failed_ids": report.failed_ids,
        "fingerprints": report.fingerprints,
        "config": str(config_path.resolve()),
        "time": time.time(),
        **(extra or {}),
    }
    record_path.parent.mkdir(parents=True, exist_ok=True)
    if report.ok or overridden:
        tmp = record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        tmp.replace(record_path)
    else:
        record_path.unlink(missing_ok=True)  # a failed scan never leaves a record a later plan could take for a pass
    if report.ok:
        return
    if overridden:
        print(OVERRIDE_BANNER.format(ids=", ".join(report.failed_ids)), file=sys.stderr)
        audit(
            log,
            "scan-override",
            config=str(config_path.resolve()),
            failed_checks=report.failed_ids,
            fingerprints=report.fingerprints,
        )
        return
    raise ScanFailed(
        f"the policy gate failed; Terraform was not run.\n{report.render()}",
        "fix the generated configuration (or the check) so the scan passes; skips need a per-resource reason",
    )
