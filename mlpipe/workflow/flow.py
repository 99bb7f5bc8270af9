"""The ordered workflow: synth -> scan (gate) -> init -> plan (saved) -> show -> apply that plan.

Each step is a method so the CLI, `demo`, the tests and the benchmark drive the same code. A plan
is recorded with a fingerprint of what was scanned (the synthesized directory, the configuration
file and the variables); `apply` refuses a plan whose fingerprint no longer matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipe.core.config import PipelineConfig, load_config
from mlpipe.core.errors import EmulatorError, PipelineError, StalePlan
from mlpipe.emulator import process as emulator
from mlpipe.engine.terraform import (
    Engine,
    PlanSummary,
    Terraform,
    default_mirror,
    find_engine,
    summarize_plan,
    write_cli_config,
)
from mlpipe.gate.scan import ScanReport, enforce, scan
from mlpipe.synth.runner import SynthResult, synthesize
from mlpipe.workflow.seed import seed_repository
from mlpipe.workflow.workspace import Workspace

FINGERPRINT_SKIP = {".terraform", ".terraform.lock.hcl"}


@dataclass(frozen=True)
class PlanRecord:
    """What was planned, so apply can prove it applies the same thing."""

    plan_file: Path
    fingerprint: str
    variables: dict[str, str]
    changes_present: bool
    summary: str


def fingerprint(stack_dir: Path, config_path: Path, variables: dict[str, str]) -> str:
    """SHA-256 over every synthesized file, the configuration file and the variables."""
    digest = hashlib.sha256()
    for path in sorted(p for p in stack_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(stack_dir)
        if relative.parts[0] in FINGERPRINT_SKIP or path.suffix == ".tfplan":
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(config_path.read_bytes())
    digest.update(json.dumps(variables, sort_keys=True).encode())
    return digest.hexdigest()


class Workflow:
    """One configuration in one workspace."""

    def __init__(
        self,
        config_path: Path,
        workspace: Workspace,
        echo: Callable[[str], None] = print,
        emulator_url: str | None = None,
        accept_failed_scan: bool = False,
        mirror: Path | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.config: PipelineConfig = load_config(self.config_path)
        self.workspace = workspace
        self.echo = echo
        self._emulator_url = emulator_url
        self.accept_failed_scan = accept_failed_scan
        self.mirror = mirror if mirror is not None else default_mirror()
        self._engine: Engine | None = None
        self.timings: dict[str, float] = {}

    # -- steps -------------------------------------------------------------------------------

    def step(self, name: str) -> _Step:
        return _Step(self, name)

    def synth(self) -> SynthResult:
        with self.step("synth"):
            result = synthesize(self.config_path, self.workspace.outdir)
        self.echo(f"synth: {result.hcl_path} ({len(result.skips)} resources with declared checkov skips)")
        return result

    def scan(self, synth: SynthResult | None = None) -> ScanReport:
        synth = synth or self.synth()
        with self.step("scan"):
            report = scan(synth.stack_dir, self.workspace.reports_dir, synth.policies)
        self.echo(report.render())
        enforce(report, self.accept_failed_scan, self.workspace.audit_log)
        return report

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = find_engine(os.environ)
            self.echo(f"engine: {self._engine.description}")
        return self._engine

    def emulator_url(self) -> str:
        if self._emulator_url is None:
            self._emulator_url = emulator.ensure_running(self.workspace.emulator_dir)
            self.echo(f"emulator: local AWS emulator at {self._emulator_url} (3 simulated accounts)")
        return self._emulator_url

    def variables(self) -> dict[str, str]:
        return {"emulator_url": self.emulator_url()} if self.config.uses_emulator else {}

    def terraform(self) -> Terraform:
        write_cli_config(self.workspace.cli_config, self.mirror)
        data_dir = self.workspace.tf_data_dir(self.config.name_prefix)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.workspace.state_file(self.config.name_prefix).parent.mkdir(parents=True, exist_ok=True)
        return Terraform(
            self.workspace.stack_dir,
            self.engine,
            self.workspace.cli_config,
            env_extra={"TF_DATA_DIR": str(data_dir.resolve())},
            echo=self.echo,
            color=sys.stdout.isatty(),
        )

    def init(self) -> Terraform:
        tf = self.terraform()
        with self.step("init"):
            tf.init()
        return tf

    def plan(self, destroy: bool = False) -> PlanRecord:
        """synth -> scan -> init -> plan -out -> show -json -> summary; records the plan."""
        synth = self.synth()
        self.scan(synth)
        variables = self.variables()
        tf = self.init()
        plan_file = self.workspace.plan_file(self.config.name_prefix)
        plan_file.parent.mkdir(parents=True, exist_ok=True)
        with self.step("plan"):
            outcome = tf.plan(str(plan_file.resolve()), variables, destroy=destroy)
        with self.step("show"):
            summary: PlanSummary = summarize_plan(tf.show_json(str(plan_file.resolve())))
        rendered = summary.render()
        self.echo(rendered)
        record = PlanRecord(
            plan_file=plan_file,
            fingerprint=fingerprint(synth.stack_dir, self.config_path, variables),
            variables=variables,
            changes_present=outcome.changes_present,
            summary=rendered,
        )
        self.workspace.plan_record(self.config.name_prefix).write_text(
            json.dumps({**record.__dict__, "plan_file": str(plan_file), "destroy": destroy}, indent=2)
        )
        return record

    def apply(self) -> dict[str, Any]:
        """Apply exactly the saved plan, after proving nothing changed since it was scanned."""
        record_path = self.workspace.plan_record(self.config.name_prefix)
        plan_file = self.workspace.plan_file(self.config.name_prefix)
        if not record_path.is_file() or not plan_file.is_file():
            raise StalePlan(f"no saved plan for {self.config.name_prefix}", "run `mlpipe plan` first (or `make plan`)")
        record = json.loads(record_path.read_text())
        variables = record["variables"]
        if self.config.uses_emulator and not emulator.is_ready(variables["emulator_url"]):
            raise EmulatorError(
                f"the plan was made against the emulator at {variables['emulator_url']}, which is not running",
                "run `mlpipe plan` again (it starts the emulator)",
            )
        current = fingerprint(self.workspace.stack_dir, self.config_path, variables)
        if current != record["fingerprint"]:
            raise StalePlan(
                "the configuration or the synthesized Terraform changed since the plan was made and scanned",
                "run `mlpipe plan` again, review it, then apply",
            )
        tf = self.terraform()
        with self.step("apply"):
            tf.apply(str(plan_file.resolve()))
        plan_file.unlink()
        record_path.unlink()
        outputs = self.outputs(tf)
        if not record.get("destroy"):
            self.seed(outputs)
        return outputs

    def seed(self, outputs: dict[str, Any]) -> None:
        with self.step("seed"):
            message = seed_repository(self.config, outputs, self._emulator_url if self.config.uses_emulator else None)
        self.echo(f"seed: {message}")

    def outputs(self, tf: Terraform | None = None) -> dict[str, Any]:
        tf = tf or self.terraform()
        return {name: item["value"] for name, item in tf.output().items()}

    def destroy(self) -> None:
        variables = self.variables()
        tf = self.init()
        with self.step("destroy"):
            tf.destroy(variables)

    def demo(self) -> dict[str, Any]:
        """The README's first command: everything, against the local emulator, then a no-change check."""
        if not self.config.uses_emulator:
            raise PipelineError(
                f"{self.config_path} targets real AWS; demo runs only against the local emulator",
                "use config/local.toml (the default) for the demo, or run plan/apply for real AWS",
            )
        self.plan()
        outputs = self.apply()
        second = self.plan()
        if second.changes_present:
            raise PipelineError(
                "the second plan after apply still reports changes: the configuration does not converge",
                f"see the plan summary above:\n{second.summary}",
            )
        self.echo("second plan: no changes (the applied pipeline matches the configuration)")
        self.workspace.plan_file(self.config.name_prefix).unlink(missing_ok=True)
        self.workspace.plan_record(self.config.name_prefix).unlink(missing_ok=True)
        return outputs


class _Step:
    """Times a step and prints progress, so long steps are visible."""

    def __init__(self, workflow: Workflow, name: str) -> None:
        self.workflow = workflow
        self.name = name
        self.started = 0.0

    def __enter__(self) -> _Step:
        self.workflow.echo(f"==> {self.name} ...")
        self.started = time.monotonic()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        seconds = time.monotonic() - self.started
        self.workflow.timings[self.name] = seconds
        state = "failed" if exc_type else "done"
        self.workflow.echo(f"==> {self.name} {state} in {seconds:.1f} s")
