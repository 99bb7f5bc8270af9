"""Where everything the tool writes lives, derived from one project directory and one configuration.

``cdktf.out/`` holds the last synth (of whichever configuration); everything that belongs to one
configuration lives under ``.mlpipe/configs/<config-id>/`` and survives other configurations'
synths: the staged stacks Terraform runs in (the exact bytes the gate scanned, with their
dependency lock files), Terraform's data dirs, the gate record, the saved plans and the reports.
Local state lives under ``.mlpipe/state/<name_prefix>/`` (one file per stack); the audit log at
``.mlpipe/audit.log`` is never removed by ``make clean``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path


def config_id(config_path: Path) -> str:
    """``<file stem>-<8 hex of the resolved path>``: stable per file, distinct for same-named files."""
    resolved = str(Path(config_path).resolve())
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(config_path).stem)[:40] or "config"
    return f"{stem}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def outdir(self) -> Path:
        return self.root / "cdktf.out"

    @property
    def meta(self) -> Path:
        return self.root / ".mlpipe"

    @property
    def lock_file(self) -> Path:
        return self.meta / "workspace.lock"

    @property
    def emulator_dir(self) -> Path:
        return self.meta / "emulator"

    @property
    def cli_config(self) -> Path:
        return self.meta / "terraform.rc"

    @property
    def audit_log(self) -> Path:
        return self.meta / "audit.log"

    def state_file(self, name_prefix: str, stack: str) -> Path:
        return self.meta / "state" / name_prefix / f"{stack}.tfstate"

    def state_dir(self, name_prefix: str) -> Path:
        return self.meta / "state" / name_prefix

    def for_config(self, config_path: Path) -> ConfigWorkspace:
        return ConfigWorkspace(self, self.meta / "configs" / config_id(config_path))


@dataclass(frozen=True)
class ConfigWorkspace:
    """What belongs to one configuration file."""

    workspace: Workspace
    root: Path

    @property
    def staged_stacks(self) -> Path:
        """The scanned copy of every stack: Terraform runs here, never in cdktf.out/."""
        return self.root / "stacks"

    def stack_dir(self, stack: str) -> Path:
        return self.staged_stacks / stack

    def data_dir(self, stack: str) -> Path:
        return self.root / "terraform" / stack

    def plan_file(self, stack: str) -> Path:
        return self.root / "plans" / f"{stack}.tfplan"

    def plan_record(self, stack: str) -> Path:
        return self.root / "plans" / f"{stack}.json"

    @property
    def gate_record(self) -> Path:
        return self.root / "gate.json"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def imports_dir(self) -> Path:
        """Import blocks written by `mlpipe adopt`, one file per stack, staged with the stack."""
        return self.root / "imports"
