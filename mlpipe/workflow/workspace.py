"""Where everything the tool writes lives, derived from one project directory.

`cdktf.out/` is replaced on every synth; everything that must survive a synth (state, saved
plans, Terraform's data dir, the emulator record, scan reports) lives under `.mlpipe/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlpipe.synth.runner import stack_dir


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def outdir(self) -> Path:
        return self.root / "cdktf.out"

    @property
    def stack_dir(self) -> Path:
        return stack_dir(self.outdir)

    @property
    def meta(self) -> Path:
        return self.root / ".mlpipe"

    @property
    def emulator_dir(self) -> Path:
        return self.meta / "emulator"

    @property
    def reports_dir(self) -> Path:
        return self.meta / "reports"

    @property
    def cli_config(self) -> Path:
        return self.meta / "terraform.rc"

    def plan_file(self, name_prefix: str) -> Path:
        return self.meta / "plans" / f"{name_prefix}.tfplan"

    def plan_record(self, name_prefix: str) -> Path:
        return self.meta / "plans" / f"{name_prefix}.json"

    def tf_data_dir(self, name_prefix: str) -> Path:
        return self.meta / "terraform" / name_prefix

    def state_file(self, name_prefix: str) -> Path:
        """Matches the relative path main.py gives the local backend."""
        return self.meta / "state" / f"{name_prefix}.tfstate"

    @property
    def audit_log(self) -> Path:
        return self.meta / "audit.log"
