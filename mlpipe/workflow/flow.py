"""The ordered workflow over a configuration's stacks: synth -> stage -> gate -> init -> plan -> apply.

Each step is a method so the CLI, ``demo``, the tests and the benchmark drive the same code.

* Synth writes every stack to ``cdktf.out/``; staging copies each stack into the configuration's
  own directory, where Terraform runs. The gate scans those staged bytes and records their
  fingerprint; ``plan`` refuses a stack whose bytes differ from the record, and ``apply`` refuses
  one whose bytes, gate record or configuration differ from what was planned. So what Terraform
  plans and applies is exactly what the gate scanned, whatever else writes to ``cdktf.out/``.
* The foundation runs first; pipeline stacks then run in parallel (``jobs`` workers), each with
  its own state, data dir, saved plan and fingerprint. ``pipelines`` limits a run to some
  pipelines and touches no other pipeline's state. A pipeline whose stack has state but is no
  longer in the configuration is reported as orphaned and never destroyed silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlpipe.core.config import ProjectConfig, load_config
from mlpipe.core.errors import (
    AlreadyExists,
    ConfigError,
    EmulatorError,
    Interrupted,
    NotDeployed,
    PipelineError,
    ScanFailed,
    StalePlan,
    TerraformError,
)
from mlpipe.core.names import FOUNDATION_STACK
from mlpipe.core.processes import CHILDREN
from mlpipe.emulator import process as emulator
from mlpipe.engine.terraform import (
    Engine,
    PlanSummary,
    Terraform,
    default_mirror,
    find_engine,
    format_directory,
    summarize_plan,
    write_cli_config,
)
from mlpipe.gate.access.gate import load_manifests, run_access_gate
from mlpipe.gate.fingerprint import directory_fingerprint
from mlpipe.gate.scan import ScanReport, audit, enforce, scan
from mlpipe.synth.runner import SynthResult, file_sha256, output_fingerprint, read_synth_record, synthesize
from mlpipe.workflow.adopt import adoptable, blocking_leftovers, describe, render_imports
from mlpipe.workflow.cache import gate_inputs, synth_inputs
from mlpipe.workflow.clients import Target, check_credentials
from mlpipe.workflow.seed import seed_repository
from mlpipe.workflow.workspace import ConfigWorkspace, Workspace

DEFAULT_JOBS = 2  # each plan starts three provider processes of ~600 MB; 2 cores
FOUNDATION_OUTPUTS = ("access_log_bucket", "training_logs_key_arn", "production_logs_key_arn")
STAGED_KEEP = {".terraform.lock.hcl", "imports.tf"}  # survive re-staging; imports.tf is re-staged by adopt


@dataclass
class StackPlan:
    """What was planned for one stack, so apply can prove it applies the same thing."""

    stack: str
    fingerprint: str
    config_sha256: str
    variables: dict[str, str]
    changes_present: bool
    destroy: bool
    overridden: bool
    summary: str
    creates: list[str] = field(default_factory=list)  # addresses this plan creates (checked before apply)


@dataclass
class PlanResult:
    """The plan of every selected stack, plus the ones that could not be planned yet and the orphans."""

    stacks: dict[str, StackPlan] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)  # pipelines waiting for the foundation's first apply
    orphans: list[str] = field(default_factory=list)

    @property
    def changes_present(self) -> bool:
        return any(p.changes_present for p in self.stacks.values()) or bool(self.blocked)


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
        jobs: int = DEFAULT_JOBS,
        pipelines: Iterable[str] = (),
        force: bool = False,
    ) -> None:
        self.config_path = Path(config_path)
        self.config: ProjectConfig = load_config(self.config_path)
        self.workspace = workspace
        self.files: ConfigWorkspace = workspace.for_config(self.config_path)
        self._echo_lock = threading.Lock()
        self._echo = echo
        self._emulator_url = emulator_url
        self.accept_failed_scan = accept_failed_scan
        self.mirror = mirror if mirror is not None else default_mirror()
        self.jobs = max(1, jobs)
        self.force = force
        self.only = list(dict.fromkeys(pipelines))
        self._engine: Engine | None = None
        self.timings: dict[str, float] = {}
        self.stack_timings: dict[str, dict[str, float]] = {}

    # -- output ------------------------------------------------------------------------------

    def echo(self, line: str) -> None:
        with self._echo_lock:
            self._echo(line)

    def _stack_echo(self, stack: str) -> Callable[[str], None]:
        return lambda line: self.echo(f"[{stack}] {line}")

    def step(self, name: str) -> _Step:
        return _Step(self, name)

    # -- selection ---------------------------------------------------------------------------

    def selected(self) -> list[str]:
        """The stacks this run works on, in dependency order (the foundation first)."""
        for name in self.only:
            if name != FOUNDATION_STACK:
                self.config.pipeline(name)  # unknown names fail here, naming the pipelines that exist
        if not self.only:
            return list(self.config.stacks)
        return [s for s in self.config.stacks if s in self.only]

    # -- synth, stage, gate ------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = find_engine(os.environ)
            self.echo(f"engine: {self._engine.description}")
        return self._engine

    def synth(self) -> SynthResult:
        """Synthesize, unless the output on disk came from exactly these inputs and is unchanged."""
        inputs = synth_inputs(self.config_path, self.engine.version)
        outdir = self.workspace.outdir
        record = read_synth_record(outdir)
        if (
            not self.force
            and record is not None
            and record.get("inputs_sha256") == inputs
            and record.get("config") == str(self.config_path.resolve())
            and output_fingerprint(outdir, record.get("stacks", [])) == record.get("output_sha256")
        ):
            self.echo("synth: up to date (inputs unchanged; --force to synthesize anyway)")
            return SynthResult(outdir.resolve(), record["config_sha256"], tuple(record["stacks"]), 0.0)
        with self.step("synth"):
            result = synthesize(
                self.config_path, outdir, lambda d: format_directory(self.engine, d), inputs_sha256=inputs
            )
        self.echo(f"synth: {len(result.stacks)} stacks in {result.outdir}/stacks: {', '.join(result.stacks)}")
        return result

    def stage(self, synth: SynthResult) -> None:
        """Copy each synthesized stack to where Terraform runs; keep its lock file, drop the rest."""
        record = read_synth_record(synth.outdir)
        if record is None or record.get("config_sha256") != file_sha256(self.config_path):
            raise StalePlan(
                f"{synth.outdir} was not synthesized from {self.config_path} as it is now",
                "run the command again: it synthesizes this configuration first",
            )
        for stack in self.config.stacks:
            target = self.files.stack_dir(stack)
            target.mkdir(parents=True, exist_ok=True)
            for child in target.iterdir():
                if child.name in STAGED_KEEP or child.name == ".terraform":
                    continue
                shutil.rmtree(child) if child.is_dir() else child.unlink()
            shutil.copytree(synth.stack_dir(stack), target, dirs_exist_ok=True)
            imports = self.files.imports_dir / f"{stack}.tf"
            staged_imports = target / "imports.tf"
            if imports.is_file():
                shutil.copyfile(imports, staged_imports)
            else:
                staged_imports.unlink(missing_ok=True)

    def scan(self) -> ScanReport | None:
        """synth -> stage -> gate over every stack of the configuration (the gate always sees them all).

        The gate is skipped (None) when the staged bytes, the checks and the scanners are exactly
        those of the last scan and that scan passed without an override.
        """
        synth = self.synth()
        self.stage(synth)
        if not self.force and self._gate_up_to_date():
            self.echo("scan: up to date (scanned bytes, checks and scanners unchanged; last result passed)")
            return None
        with self.step("scan"):
            report = scan(
                self.files.staged_stacks,
                list(self.config.stacks),
                self.files.reports_dir,
                self.config.region,
                access=self._access_proof,
            )
        self.echo(report.render())
        previous = self._previous_orphan_fingerprints()
        enforce(
            report,
            self.accept_failed_scan,
            self.workspace.audit_log,
            self.config_path,
            self.files.gate_record,
            extra={"gate_inputs": gate_inputs(), "passed": report.passed},
        )
        if previous and self.files.gate_record.is_file():
            # Orphaned stacks keep their last scanned configuration, so `destroy --pipeline` can use it.
            record = json.loads(self.files.gate_record.read_text())
            record["fingerprints"] = {**previous, **record["fingerprints"]}
            self.files.gate_record.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        return report

    def _gate_up_to_date(self) -> bool:
        try:
            record = json.loads(self.files.gate_record.read_text())
        except (OSError, ValueError):
            return False
        if not record.get("ok") or record.get("overridden") or record.get("gate_inputs") != gate_inputs():
            return False
        recorded = record.get("fingerprints", {})
        return all(recorded.get(s) == directory_fingerprint(self.files.stack_dir(s)) for s in self.config.stacks)

    def _access_proof(self) -> list[str]:
        """Every runtime call decided from the staged documents (the gate's strongest check)."""
        report = run_access_gate(
            self.config,
            load_manifests(self.files.staged_stacks, self.config.stacks),
            self.files.reports_dir,
            self.files.staged_stacks,
        )
        self.echo(report.render().splitlines()[0])
        return list(report.findings)

    def graph(self) -> Path:
        """synth -> stage -> the access analysis alone: the graph (SVG) and the call table."""
        self.stage(self.synth())
        self.files.reports_dir.mkdir(parents=True, exist_ok=True)
        self._access_proof()
        return self.files.reports_dir / "access-graph.svg"

    def _previous_orphan_fingerprints(self) -> dict[str, str]:
        try:
            old = json.loads(self.files.gate_record.read_text()).get("fingerprints", {})
        except (OSError, ValueError):
            return {}
        kept = {}
        for stack, fingerprint in old.items():
            directory = self.files.stack_dir(stack)
            orphaned = stack not in self.config.stacks and directory.is_dir()
            if orphaned and directory_fingerprint(directory) == fingerprint:
                kept[stack] = fingerprint
        return kept

    def _gate_record(self) -> dict[str, Any]:
        try:
            record = json.loads(self.files.gate_record.read_text())
        except (OSError, ValueError):
            raise ScanFailed(
                f"no passing gate record for {self.config_path}",
                "run `mlpipe plan` (it scans first); a failed scan never leaves a record",
            ) from None
        return record

    def _verified_fingerprint(self, stack: str, record: dict[str, Any]) -> str:
        """The staged stack's fingerprint, if and only if it is what the gate scanned."""
        expected = record.get("fingerprints", {}).get(stack)
        actual = directory_fingerprint(self.files.stack_dir(stack))
        if expected is None or actual != expected:
            raise StalePlan(
                f"stack {stack}: the Terraform in {self.files.stack_dir(stack)} is not what the gate scanned",
                "something changed it after the scan; run `mlpipe plan` again (it synthesizes and scans first)",
            )
        return actual

    # -- targets and Terraform ---------------------------------------------------------------

    def emulator_url(self) -> str:
        """The emulator this run uses: MLPIPE_EMULATOR_URL (one shared by tests or tools), else the daemon."""
        if self._emulator_url is None:
            self._emulator_url = os.environ.get("MLPIPE_EMULATOR_URL") or emulator.ensure_running(
                self.workspace.emulator_dir
            )
            Target("emulator", self._emulator_url)  # loopback only, or refuse here
            self.echo(f"emulator: local AWS emulator at {self._emulator_url} (3 simulated accounts)")
        return self._emulator_url

    def target(self, variables: dict[str, str] | None = None) -> Target:
        """Where AWS calls go: the emulator of the plan (or the running one), else real AWS."""
        if not self.config.uses_emulator:
            return Target("aws")
        url = (variables or {}).get("emulator_url") or self.emulator_url()
        return Target("emulator", url)

    def check_target(self) -> None:
        """Real AWS: credentials first, in seconds, before any synth or scan."""
        if not self.config.uses_emulator:
            with self.step("credentials"):
                identity = check_credentials(self.config)
            self.echo(f"credentials: {identity}")

    def variables(self, stack: str) -> dict[str, str]:
        values: dict[str, str] = {}
        if self.config.uses_emulator:
            values["emulator_url"] = self.emulator_url()
        if stack != FOUNDATION_STACK and self.config.state.backend == "local":
            state = self.workspace.state_file(self.config.name_prefix, FOUNDATION_STACK)
            values["foundation_state_path"] = str(state.resolve())
        return values

    def terraform(self, stack: str, quiet: bool = False) -> Terraform:
        data_dir = self.files.data_dir(stack)
        data_dir.mkdir(parents=True, exist_ok=True)
        return Terraform(
            self.files.stack_dir(stack),
            self.engine,
            self.workspace.cli_config,
            env_extra={"TF_DATA_DIR": str(data_dir.resolve())},
            echo=None if quiet else self._stack_echo(stack),
            color=sys.stdout.isatty(),
        )

    def init(self, stack: str, quiet: bool = False) -> Terraform:
        """``terraform init``, skipped when this data dir was initialised with exactly these inputs."""
        tf = self.terraform(stack, quiet)
        backend: dict[str, str] = {}
        if self.config.state.backend == "local":
            state = self.workspace.state_file(self.config.name_prefix, stack)
            state.parent.mkdir(parents=True, exist_ok=True)
            backend["path"] = str(state.resolve())
        stamp_file = self.files.data_dir(stack) / "mlpipe-init.json"
        stamp = self._init_stamp(stack, backend)
        try:
            done = json.loads(stamp_file.read_text()) == stamp
        except (OSError, ValueError):
            done = False
        if not done or not (self.files.data_dir(stack) / "terraform.tfstate").is_file():
            stamp_file.unlink(missing_ok=True)
            tf.init(backend_config=backend)
            stamp_file.write_text(json.dumps(self._init_stamp(stack, backend)))  # init may write the lock file
        return tf

    def _init_stamp(self, stack: str, backend: dict[str, str]) -> dict[str, str]:
        """What init depends on: the terraform block, the backend arguments, the CLI config, the lock file."""
        directory = self.files.stack_dir(stack)
        hcl = (directory / "cdk.tf").read_text() if (directory / "cdk.tf").is_file() else ""
        head = hcl.split("\n}\n", 1)[0]  # the `terraform { ... }` block comes first
        lock = directory / ".terraform.lock.hcl"
        return {
            "terraform_block": hashlib.sha256(head.encode()).hexdigest(),
            "backend": json.dumps(backend, sort_keys=True),
            "cli_config": hashlib.sha256(self.workspace.cli_config.read_bytes()).hexdigest(),
            "lock": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else "",
            "engine": self.engine.description,
        }

    def _prepare_terraform(self) -> None:
        write_cli_config(self.workspace.cli_config, self.mirror)
        _ = self.engine

    # -- plan ----------------------------------------------------------------------------------

    def plan(self, destroy: bool = False) -> PlanResult:
        """Credentials -> synth -> stage -> gate -> per stack: init -> plan -out -> show -> summary."""
        stacks = self.selected()  # an unknown --pipeline fails before anything runs
        self.check_target()
        self.scan()
        record = self._gate_record()
        self._prepare_terraform()
        result = PlanResult(orphans=self.orphans())
        if destroy:
            stacks = list(reversed(stacks))  # pipelines before the foundation they read from
        pipelines = [s for s in stacks if s != FOUNDATION_STACK]
        foundation_ready = destroy or not pipelines or self._foundation_applied()

        def plan_stack(stack: str) -> None:
            if stack != FOUNDATION_STACK and not foundation_ready:
                result.blocked.append(stack)
                self.echo(f"[{stack}] not planned: the foundation has not been applied yet")
                return
            result.stacks[stack] = self._plan_stack(stack, record, destroy)

        self._run_stacks(stacks, plan_stack, "plan", foundation_first=not destroy)
        self._report_plan(result)
        return result

    def _plan_stack(self, stack: str, record: dict[str, Any], destroy: bool) -> StackPlan:
        fingerprint = self._verified_fingerprint(stack, record)
        variables = self.variables(stack)
        plan_file = self.files.plan_file(stack)
        plan_file.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        tf = self.init(stack)
        self._time(stack, "init", started)
        started = time.monotonic()
        outcome = tf.plan(str(plan_file.resolve()), variables, destroy=destroy)
        self._time(stack, "plan", started)
        started = time.monotonic()
        # exit 0 of -detailed-exitcode: nothing to summarize, so spare `show` its provider schema load
        shown = tf.show_json(str(plan_file.resolve())) if outcome.changes_present else {}
        summary: PlanSummary = summarize_plan(shown)
        creates = [
            c["address"] for c in shown.get("resource_changes", []) if c.get("change", {}).get("actions") == ["create"]
        ]
        self._time(stack, "show", started)
        if creates and not destroy:
            self._refuse_existing(stack, creates, variables)
        plan = StackPlan(
            stack=stack,
            fingerprint=fingerprint,
            config_sha256=file_sha256(self.config_path),
            variables=variables,
            changes_present=outcome.changes_present,
            destroy=destroy,
            overridden=bool(record.get("overridden")),
            summary=summary.render(),
            creates=creates,
        )
        tmp = self.files.plan_record(stack).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(plan), indent=2, sort_keys=True) + "\n")
        tmp.replace(self.files.plan_record(stack))
        return plan

    def _report_plan(self, result: PlanResult) -> None:
        for stack in [*self.config.stacks, *result.orphans]:
            if plan := result.stacks.get(stack):
                self.echo(f"plan {stack}:\n" + "\n".join(f"  {line}" for line in plan.summary.splitlines()))
        if result.blocked:
            self.echo(
                f"not planned yet: {', '.join(result.blocked)} (they read the foundation's outputs): "
                "run `mlpipe apply`, then `mlpipe plan` again"
            )
        for orphan in result.orphans:
            self.echo(
                f"orphaned stack {orphan!r}: it has state but is no longer in {self.config_path}; nothing is "
                f"destroyed until you run `mlpipe destroy --pipeline {orphan}` (which deletes its data)"
            )
        if result.stacks:
            summary = self.files.root / "plans" / "summary.md"
            summary.write_text(plan_markdown(self.config_path, result, [*self.config.stacks, *result.orphans]))
            self.echo(f"plans saved in {self.files.root / 'plans'} (apply them with `mlpipe apply`; review: {summary})")

    def _foundation_applied(self) -> bool:
        """The foundation's outputs exist in its state (pipelines read them while planning).

        A local state file is read directly (Terraform's JSON state format); a remote one through
        ``terraform output``.
        """
        if self.config.state.backend == "local":
            state = self.workspace.state_file(self.config.name_prefix, FOUNDATION_STACK)
            try:
                outputs = json.loads(state.read_text()).get("outputs", {})
            except (OSError, ValueError):
                return False
        else:
            try:
                outputs = self.init(FOUNDATION_STACK, quiet=True).output()
            except TerraformError:
                return False
        return all(name in outputs for name in FOUNDATION_OUTPUTS)

    # -- apply ---------------------------------------------------------------------------------

    def apply(self) -> dict[str, dict[str, Any]]:
        """Apply exactly the saved plans, after proving nothing changed since they were scanned."""
        records = self._saved_plans()
        gate = self._gate_record()
        for stack, plan in records.items():
            self._check_plan(stack, plan, gate)
        self.check_target()
        self._prepare_terraform()
        order = [s for s in (*self.config.stacks, *self.orphans()) if s in records]
        destroying = all(p.destroy for p in records.values())
        if destroying:
            order.reverse()
        if any(p.overridden for p in records.values()):
            banner = "!!! APPLYING A PLAN WHOSE SCAN FAILED AND WAS OVERRIDDEN with --i-accept-failed-scan !!!"
            print(banner, file=sys.stderr)
            audit(self.workspace.audit_log, "apply-overridden", config=str(self.config_path.resolve()), stacks=order)
        outputs: dict[str, dict[str, Any]] = {}

        def apply_stack(stack: str) -> None:
            plan = records[stack]
            tf = self.init(stack)
            plan_file = self.files.plan_file(stack)
            if plan.changes_present:
                if plan.creates and not plan.destroy:
                    self._refuse_existing(stack, plan.creates, plan.variables)  # made since the plan?
                started = time.monotonic()
                tf.apply(str(plan_file.resolve()))
                self._time(stack, "apply", started)
                (self.files.imports_dir / f"{stack}.tf").unlink(missing_ok=True)  # adopted now
            else:
                self.echo(f"[{stack}] no changes planned: nothing to apply")
            plan_file.unlink(missing_ok=True)
            self.files.plan_record(stack).unlink(missing_ok=True)
            if plan.destroy:
                return
            values = {name: item["value"] for name, item in tf.output().items()}
            outputs[stack] = values
            if stack != FOUNDATION_STACK:
                started = time.monotonic()
                message = seed_repository(self.config, values, self.target(plan.variables))
                self._time(stack, "seed", started)
                self.echo(f"[{stack}] seed: {message}")

        self._run_stacks(order, apply_stack, "apply", foundation_first=not destroying)
        return outputs

    def _saved_plans(self) -> dict[str, StackPlan]:
        stacks = self.selected() if self.only else [*self.config.stacks, *self.orphans()]
        records: dict[str, StackPlan] = {}
        for stack in stacks:
            path, plan_file = self.files.plan_record(stack), self.files.plan_file(stack)
            if path.is_file() and plan_file.is_file():
                records[stack] = StackPlan(**json.loads(path.read_text()))
        if not records:
            raise StalePlan(f"no saved plan for {self.config_path}", "run `mlpipe plan` first (or `make plan`)")
        return records

    def _check_plan(self, stack: str, plan: StackPlan, gate: dict[str, Any]) -> None:
        if plan.config_sha256 != file_sha256(self.config_path):
            raise StalePlan(
                f"stack {stack}: {self.config_path} changed since the plan was made and scanned",
                "run `mlpipe plan` again, review it, then apply",
            )
        if plan.fingerprint != self._verified_fingerprint(stack, gate):
            raise StalePlan(
                f"stack {stack}: the Terraform scanned now is not the Terraform that was planned",
                "run `mlpipe plan` again, review it, then apply",
            )
        url = plan.variables.get("emulator_url")
        if url and not emulator.is_ready(url, timeout=5):
            raise EmulatorError(
                f"the plan was made against the emulator at {url}, which is not running",
                "run `mlpipe plan` again (it starts the emulator)",
            )

    # -- adoption -----------------------------------------------------------------------------------

    def _refuse_existing(self, stack: str, creates: list[str], variables: dict[str, str]) -> None:
        """Fail in seconds, naming them, when objects the plan would create already exist.

        Otherwise the provider finds out during apply, and for some types retries for minutes
        (a Lambda function: ResourceConflictException every 10 s for 5 minutes) before failing; a
        KMS key is never refused by AWS, so the apply would silently make a second one.
        """
        manifest = load_manifests(self.files.staged_stacks, [stack])[stack]
        in_state = set(manifest["resources"]) - set(creates)
        adoption = adoptable(self.config, stack, manifest, in_state, self.target(variables))
        blocking = blocking_leftovers(adoption)
        if blocking:
            raise AlreadyExists(
                f"stack {stack}: {len(blocking)} object(s) this plan would create already exist but are in "
                f"no state: {'; '.join(blocking)}",
                hint=f"they were left by an interrupted run or made by hand: `mlpipe adopt --pipeline {stack}` "
                "writes import blocks and plans them through the gate (then `mlpipe apply`); or delete them "
                "(a KMS key: schedule its deletion)",
            )

    def adopt(self, chosen_keys: dict[str, str] | None = None) -> PlanResult:
        """Import what exists under the stacks' names into their states: import blocks, then a gated plan."""
        self.check_target()
        self.scan()
        self._prepare_terraform()
        self.files.imports_dir.mkdir(parents=True, exist_ok=True)
        for stack in self.selected():
            manifest = load_manifests(self.files.staged_stacks, [stack])[stack]
            in_state = set(self.init(stack, quiet=True).state_list())
            adoption = adoptable(self.config, stack, manifest, in_state, self.target(), chosen_keys)
            self.echo(describe(adoption))
            imports = self.files.imports_dir / f"{stack}.tf"
            if adoption.imports:
                imports.write_text(render_imports(adoption), encoding="utf-8")
            else:
                imports.unlink(missing_ok=True)
        return self.plan()  # stages the import blocks, scans them, and plans the imports for review

    # -- destroy, outputs, orphans --------------------------------------------------------------

    def destroy_targets(self) -> list[str]:
        """What `destroy` removes: the selected stacks (orphans too), pipelines before the foundation."""
        if not self.only:
            return list(reversed(self.config.stacks))
        orphans = self.orphans()
        for name in self.only:
            if name not in self.config.stacks and name not in orphans:
                known = ", ".join([*self.config.stacks, *orphans])
                raise ConfigError(f"no stack named {name!r} in {self.config_path} or in its state", f"stacks: {known}")
        order = [*self.config.stacks, *orphans]
        return list(reversed([s for s in order if s in self.only]))

    def destroy(self) -> None:
        """Destroy the selected stacks (all by default), through the gate: the stack's data goes with it."""
        self.check_target()
        self.scan()  # a destroy runs the configuration's providers (and any destroy-time code): scanned first
        gate = self._gate_record()
        targets = self.destroy_targets()
        self._prepare_terraform()

        def destroy_stack(stack: str) -> None:
            if not self.files.stack_dir(stack).is_dir():
                raise NotDeployed(
                    f"stack {stack}: no staged configuration to destroy it with",
                    "run `mlpipe plan` for this configuration first",
                )
            self._verified_fingerprint(stack, gate)
            tf = self.init(stack)
            started = time.monotonic()
            tf.destroy(self.variables(stack))
            self._time(stack, "destroy", started)

        self._run_stacks(targets, destroy_stack, "destroy", foundation_first=False, foundation_last=True)

    def resources(self, stack: str) -> list[str]:
        """The addresses in a stack's state (what destroy would delete)."""
        return self.init(stack, quiet=True).state_list()

    def outputs(self) -> dict[str, dict[str, Any]]:
        """Every deployed stack's outputs, keyed by stack (pipeline name, or foundation)."""
        self._prepare_terraform()
        result: dict[str, dict[str, Any]] = {}
        for stack in self.selected():
            if not (self.files.stack_dir(stack) / "cdk.tf").is_file():
                continue
            values = self.init(stack, quiet=True).output()
            if values:
                result[stack] = {name: item["value"] for name, item in values.items()}
        if not result:
            raise NotDeployed(
                f"nothing is deployed for {self.config_path} (no stack has state with outputs)",
                "run `mlpipe plan` and `mlpipe apply` first (`make demo` on the emulator)",
            )
        return result

    def orphans(self) -> list[str]:
        """Stacks with state that are not in the configuration any more (local state; S3 listed by key)."""
        known = set(self.config.stacks)
        found: set[str] = set()
        if self.config.state.backend == "local":
            for path in sorted(self.workspace.state_dir(self.config.name_prefix).glob("*.tfstate")):
                if path.stem not in known and _has_resources(path):
                    found.add(path.stem)
        else:
            found |= self._s3_stacks() - known
        return sorted(found)

    def _s3_stacks(self) -> set[str]:
        client = self.target().client(self.config, "shared", "s3")
        prefix = f"{self.config.state.key_prefix}/"
        names: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.config.state.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"][len(prefix) :]
                if key.endswith(".tfstate") and "/" not in key:
                    names.add(key.removesuffix(".tfstate"))
        return names

    # -- demo ------------------------------------------------------------------------------------

    def demo(self) -> dict[str, dict[str, Any]]:
        """The README's first command: everything, against the local emulator, then a no-change check."""
        if not self.config.uses_emulator:
            raise ConfigError(
                f"{self.config_path} targets real AWS; demo runs only against the local emulator",
                "use config/local.toml (the default) for the demo, or run plan/apply for real AWS",
            )
        outputs: dict[str, dict[str, Any]] = {}
        for _round in range(3):  # the first round may only apply the foundation; one may recover
            result = self.plan()
            if result.stacks and any(p.changes_present for p in result.stacks.values()):
                try:
                    outputs.update(self.apply())
                except AlreadyExists as exc:
                    # Under load the emulator sometimes loses the answer to a create, and the
                    # provider's re-send meets the object it made (docs/emulator-notes.md). The demo
                    # runs only on the emulator: it recovers the way the error tells a user to.
                    self.echo(f"demo: {str(exc).splitlines()[0]}")
                    self.echo("demo: recovering with `mlpipe adopt` (an emulator fault, see docs/emulator-notes.md)")
                    if any(p.changes_present for p in self.adopt().stacks.values()):
                        outputs.update(self.apply())
                    continue
            if not result.blocked:
                break
        final = self.plan()
        if final.changes_present:
            raise PipelineError(
                "the plan after apply still reports changes: the configuration does not converge",
                "see the plan summaries above",
            )
        self.echo("second plan: no changes (the applied platform matches the configuration)")
        for stack in self.config.stacks:
            self.files.plan_file(stack).unlink(missing_ok=True)
            self.files.plan_record(stack).unlink(missing_ok=True)
        return self.outputs()

    # -- running stacks ----------------------------------------------------------------------------

    def _run_stacks(
        self,
        stacks: list[str],
        work: Callable[[str], None],
        step: str,
        foundation_first: bool,
        foundation_last: bool = False,
    ) -> None:
        """Foundation alone first (or last), pipelines in parallel; every failure reported, then raised."""
        head = [s for s in stacks if s == FOUNDATION_STACK and foundation_first]
        tail = [s for s in stacks if s == FOUNDATION_STACK and foundation_last]
        middle = [s for s in stacks if s not in head and s not in tail]
        failures: dict[str, BaseException] = {}

        def guarded(stack: str) -> None:
            if CHILDREN.interrupted.is_set():
                failures[stack] = Interrupted(f"stack {stack}: not started ({step} was interrupted)")
                return
            try:
                work(stack)
            except BaseException as exc:
                failures[stack] = exc

        with self.step(step):
            for group in (head, middle, tail):
                if not group or (failures and group is not middle):
                    continue
                if len(group) == 1 or self.jobs == 1:
                    for stack in group:
                        guarded(stack)
                else:
                    with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="stack") as pool:
                        list(pool.map(guarded, group))
                if failures and group is head:
                    break  # pipelines depend on the foundation
        if failures:
            self._raise(step, stacks, failures)

    def _raise(self, step: str, stacks: list[str], failures: dict[str, BaseException]) -> None:
        """One error for the whole run: the first failing stack's (in dependency order), all listed."""
        ordered = [s for s in stacks if s in failures]
        for stack in ordered:
            self.echo(f"[{stack}] {step} failed: {failures[stack]}")
        if CHILDREN.interrupted.is_set():
            done = [s for s in stacks if s not in failures]
            raise Interrupted(
                f"{step} interrupted{' (forced)' if CHILDREN.forced.is_set() else ''}; "
                f"finished: {', '.join(done) or 'none'}; stopped or not started: {', '.join(ordered)}",
                "Terraform wrote its state and released its lock; run `mlpipe plan`, review, then `mlpipe apply` "
                "to continue",
            )
        first = failures[ordered[0]]
        if isinstance(first, PipelineError):
            if len(ordered) > 1:
                first.message = f"{first.message}\n(also failed: {', '.join(ordered[1:])})"
            raise first
        raise first

    def _time(self, stack: str, step: str, started: float) -> None:
        self.stack_timings.setdefault(stack, {})[step] = time.monotonic() - started


def plan_markdown(config_path: Path, result: PlanResult, order: list[str]) -> str:
    """The per-account plan summary of every stack, as reviewers read it in a pull request comment."""
    lines = [f"### mlpipe plan: `{config_path}`", ""]
    for stack in order:
        if plan := result.stacks.get(stack):
            lines += [f"**{stack}**{' (destroy)' if plan.destroy else ''}", "", "```", plan.summary, "```", ""]
    if result.blocked:
        lines += [f"Not planned until the foundation is applied: {', '.join(result.blocked)}", ""]
    if result.orphans:
        orphans = ", ".join(result.orphans)
        lines += [f"Orphaned (in state, not in the configuration; never destroyed silently): {orphans}"]
    return "\n".join(lines).rstrip() + "\n"


def _has_resources(state_path: Path) -> bool:
    try:
        return bool(json.loads(state_path.read_text()).get("resources"))
    except (OSError, ValueError):
        return False


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
        self.workflow.timings[self.name] = self.workflow.timings.get(self.name, 0.0) + seconds
        state = "failed" if exc_type else "done"
        self.workflow.echo(f"==> {self.name} {state} in {seconds:.1f} s")
