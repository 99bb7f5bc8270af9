"""The policy gate: checkov (built-in + our cross-account checks) and parliament, before Terraform.

The gate is fail-closed: failed checks, checks checkov could not evaluate (parsing errors) and
policy lint findings all stop the run. There is no flag that bypasses it silently; the only
override (`--i-accept-failed-scan`) prints a banner, and is written to the scan log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpipe.core.errors import ScanFailed

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
CHECKOV_ENV = {
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "BC_SKIP_MAPPING": "TRUE",
    "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    "LOG_LEVEL": "WARNING",
}


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


@dataclass
class ScanReport:
    """Everything the gate decided, with where its reports were written."""

    passed: int
    failed: list[Finding]
    skipped: list[Skip]
    parsing_errors: list[str]
    lint_findings: list[str]
    seconds: float
    reports: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.parsing_errors or self.lint_findings)

    def render(self) -> str:
        lines = [
            f"scan: {self.passed} passed, {len(self.failed)} failed, {len(self.skipped)} skipped, "
            f"{len(self.parsing_errors)} parsing errors, {len(self.lint_findings)} policy lint findings "
            f"({self.seconds:.1f} s)"
        ]
        lines += [f"  {f.render()}" for f in self.failed]
        lines += [f"  PARSING ERROR {p}" for p in self.parsing_errors]
        lines += [f"  LINT {f}" for f in self.lint_findings]
        lines += [f"  skipped {s.check_id} on {s.resource}: {s.reason}" for s in self.skipped]
        lines += [f"  report: {kind} -> {path}" for kind, path in sorted(self.reports.items())]
        return "\n".join(lines)


def checkov_command(stack_dir: Path, reports_dir: Path) -> list[str]:
    """The exact checkov invocation: offline, HCL only, our checks loaded, three report formats."""
    checkov = Path(sys.executable).with_name("checkov")
    return [
        str(checkov),
        "--directory", str(stack_dir),
        "--framework", "terraform",
        "--external-checks-dir", str(CHECKS_DIR),
        "--skip-download",
        "--compact",
        "--output", "json",
        "--output", "sarif",
        "--output", "junitxml",
        "--output-file-path", str(reports_dir),
    ]  # fmt: skip


def run_checkov(stack_dir: Path, reports_dir: Path) -> dict[str, Any]:
    """Run checkov and return its JSON results (one framework: terraform)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        checkov_command(stack_dir, reports_dir),
        env={**os.environ, **CHECKOV_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    results_file = reports_dir / "results_json.json"
    if proc.returncode not in (0, 1) or not results_file.is_file():
        raise ScanFailed(
            f"checkov could not scan {stack_dir} (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}",
            "the gate fails closed: fix the error above and scan again",
        )
    data = json.loads(results_file.read_text())
    if isinstance(data, list):  # several frameworks: keep terraform's
        data = next((d for d in data if d.get("check_type") == "terraform"), {})
    if not data:
        # checkov prints an empty report when it found nothing to scan at all
        raise ScanFailed(f"checkov found no Terraform to scan in {stack_dir}", "run synth first")
    return data


def _relative_file(path: str) -> str:
    return path.lstrip("/")


def scan(stack_dir: Path, reports_dir: Path, policies: dict[str, dict[str, Any]]) -> ScanReport:
    """Run the whole gate on a synthesized stack; never raises for findings, see `enforce`."""
    from mlpipe.gate.policy_lint import lint_policies

    started = time.monotonic()
    data = run_checkov(stack_dir, reports_dir)
    results = data.get("results", {})
    failed = [
        Finding(
            check_id=r["check_id"],
            check_name=r.get("check_name", ""),
            resource=r["resource"],
            file=_relative_file(r.get("file_path", "")),
            lines=tuple(r.get("file_line_range") or (0, 0)),  # type: ignore[arg-type]
        )
        for r in results.get("failed_checks", [])
    ]
    skipped = [
        Skip(r["check_id"], r["resource"], (r.get("check_result") or {}).get("suppress_comment", ""))
        for r in results.get("skipped_checks", [])
    ]
    parsing = [str(p) for p in results.get("parsing_errors", [])]
    lint = [f"{f.policy}: {f.issue} ({f.severity}) {f.detail}" for f in lint_policies(policies)]
    report = ScanReport(
        passed=len(results.get("passed_checks", [])),
        failed=sorted(failed, key=lambda f: (f.check_id, f.resource)),
        skipped=sorted(skipped, key=lambda s: (s.check_id, s.resource)),
        parsing_errors=parsing,
        lint_findings=lint,
        seconds=time.monotonic() - started,
        reports={
            "json": reports_dir / "results_json.json",
            "sarif": reports_dir / "results_sarif.sarif",
            "junit": reports_dir / "results_junitxml.xml",
        },
    )
    summary = reports_dir / "summary.txt"
    summary.write_text(report.render() + "\n")
    report.reports["summary"] = summary
    return report


def enforce(report: ScanReport, accept_failed_scan: bool = False, log: Path | None = None) -> None:
    """Stop everything unless the scan is clean (or the user loudly, knowingly overrides)."""
    if report.ok:
        return
    if accept_failed_scan:
        banner = (
            "!!! SCAN FAILED AND WAS OVERRIDDEN with --i-accept-failed-scan: Terraform will run on a "
            f"configuration with {len(report.failed)} failed checks, {len(report.parsing_errors)} parsing "
            f"errors and {len(report.lint_findings)} lint findings !!!"
        )
        print(banner, file=sys.stderr)
        if log is not None:
            with log.open("a") as handle:
                handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {banner}\n")
        return
    raise ScanFailed(
        f"the policy gate failed; Terraform was not run.\n{report.render()}",
        "fix the generated configuration (or the check) so the scan passes; skips need a per-resource reason",
    )
