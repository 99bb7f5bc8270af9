"""The access proof's one entry point for the gate and the ``mlpipe graph`` command.

Why: the callers should not know the pieces. ``run_access_gate`` analyzes one synthesis and writes every report
(JSON, Markdown with the Mermaid graph, SARIF, SVG); the gate fails on ``report.findings``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlpipe.core.config import ProjectConfig
from mlpipe.core.errors import ScanFailed
from mlpipe.core.paths import STACK_MANIFEST
from mlpipe.gate.access.analysis import AccessReport, analyze
from mlpipe.gate.access.graph import render_svg
from mlpipe.gate.access.report import SARIF_REPORT, sarif_log, write_reports

SVG_REPORT = "access-graph.svg"


def load_manifests(stacks_dir: Path, stacks: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each stack's synthesized manifest, by stack name; a missing one stops the gate (it fails closed)."""
    manifests = {}
    for stack in stacks:
        path = stacks_dir / stack / STACK_MANIFEST
        if not path.is_file():
            raise ScanFailed(f"no {STACK_MANIFEST} for stack {stack} in {stacks_dir}", "run synth again")
        manifests[stack] = json.loads(path.read_text(encoding="utf-8"))
    return manifests


def run_access_gate(
    config: ProjectConfig,
    manifests: Mapping[str, Mapping[str, Any]],
    reports_dir: Path,
    stacks_dir: Path | None = None,
) -> AccessReport:
    """Analyze and write ``access-calls.json``, ``access-calls.md``, ``access-calls.sarif`` and
    ``access-graph.svg`` into ``reports_dir``; ``stacks_dir`` lets SARIF results carry the cdk.tf line.
    """
    report = analyze(config, manifests)
    write_reports(report, reports_dir)
    sarif = json.dumps(sarif_log(report, stacks_dir), indent=2) + "\n"
    (reports_dir / SARIF_REPORT).write_text(sarif, encoding="utf-8")
    render_svg(report, reports_dir / SVG_REPORT)
    return report
