"""Synthesize the HCL: validated config in, formatted `cdk.tf` with inline checkov skips out.

Synthesis runs in a child process because the HCL renderer is chosen by SYNTH_HCL_OUTPUT when
`cdktf` is first imported, and jsii keeps a Node runtime per process. The child writes into a
temporary directory; only a complete, post-processed, formatted result replaces `cdktf.out`, so a
failure at any step leaves the previous output untouched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipe.core.config import load_config
from mlpipe.core.errors import SynthError
from mlpipe.core.names import STACK_NAME
from mlpipe.core.paths import PROJECT_ROOT

SKIPS_FILE = "checkov-skips.json"
POLICIES_FILE = "rendered-policies.json"
QUOTED_PROVIDER = re.compile(r'^(\s*provider\s*=\s*)"(aws\.[A-Za-z0-9_-]+)"\s*$', re.MULTILINE)
QUOTED_DEPENDENCY = re.compile(r'^(\s*)"((?:data\.)?[a-z0-9_]+\.[A-Za-z0-9_-]+)",?\s*$', re.MULTILINE)
DEPENDS_ON = re.compile(r"depends_on\s*=\s*\[(.*?)\]", re.DOTALL)

SYNTH_ENV = {
    "SYNTH_HCL_OUTPUT": "true",
    "CHECKPOINT_DISABLE": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
}


@dataclass(frozen=True)
class SynthResult:
    outdir: Path
    stack_dir: Path
    hcl_path: Path
    seconds: float

    @property
    def skips(self) -> dict[str, list[dict[str, str]]]:
        return json.loads((self.stack_dir / SKIPS_FILE).read_text())

    @property
    def policies(self) -> dict[str, dict[str, Any]]:
        return json.loads((self.stack_dir / POLICIES_FILE).read_text())


def stack_dir(outdir: Path) -> Path:
    return outdir / "stacks" / STACK_NAME


def synthesize(config_path: Path, outdir: Path, env: Mapping[str, str] | None = None) -> SynthResult:
    """Synthesize `config_path` into `outdir` (replaced only on success)."""
    load_config(config_path)  # fail fast, before any file is touched
    started = time.monotonic()
    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = outdir.parent / f".{outdir.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    child_env = {**(env or os.environ), **SYNTH_ENV}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlpipe.synth.runner", "--child", str(Path(config_path).resolve()), str(staging)],
            cwd=PROJECT_ROOT,
            env=child_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SynthError(
                f"synth failed (exit {proc.returncode}):\n{_tail(proc.stderr or proc.stdout)}",
                "read the error above; a ConfigError or TemplateError names the file to fix",
            )
        hcl = stack_dir(staging) / "cdk.tf"
        if not hcl.is_file():
            raise SynthError(f"synth produced no {hcl.name} in {hcl.parent}")
        format_hcl(hcl.parent, child_env)
        backup = outdir.parent / f".{outdir.name}.old-{os.getpid()}"
        if outdir.exists():
            outdir.rename(backup)
        staging.rename(outdir)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    final = stack_dir(outdir)
    return SynthResult(outdir, final, final / "cdk.tf", time.monotonic() - started)


def format_hcl(directory: Path, env: Mapping[str, str]) -> None:
    """Run `terraform fmt` (raw renderer output is not formatted); no-op message if none found."""
    from mlpipe.engine.terraform import engine_env, find_engine  # local: synth must not need Terraform to import

    engine = find_engine(env)
    proc = subprocess.run(
        [*engine.argv_prefix, "fmt", "-list=false", "-no-color", str(directory)],
        # fmt needs no providers: an empty CLI config keeps a stray ~/.terraformrc out of it.
        env=engine_env(engine.kind, {**env, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull}),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SynthError(f"terraform fmt rejected the generated HCL:\n{_tail(proc.stderr)}")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def finalize_hcl(text: str, skips: Mapping[str, list[dict[str, str]]]) -> str:
    """Unquote provider references and insert each declared skip as checkov's inline comment.

    The renderer writes `provider = "aws.shared"` and quoted `depends_on` entries, which Terraform
    deprecates with a warning.
    """
    text = QUOTED_PROVIDER.sub(r"\1\2", text)
    text = DEPENDS_ON.sub(lambda m: "depends_on = [" + QUOTED_DEPENDENCY.sub(r"\1\2,", m.group(1)) + "]", text)
    for address, entries in skips.items():
        rtype, name = address.split(".", 1)
        header = re.compile(rf'^resource\s+"{re.escape(rtype)}"\s+"{re.escape(name)}"\s*\{{\s*$', re.MULTILINE)
        match = header.search(text)
        if not match:
            raise SynthError(f"declared checkov skip for {address}, but the resource is not in the HCL")
        comments = "".join(f"\n  # checkov:skip={e['check']}:{e['reason']}" for e in entries)
        text = text[: match.end()] + comments + text[match.end() :]
    return text


def _child(config_path: Path, outdir: Path) -> None:
    """Runs in the child process, with SYNTH_HCL_OUTPUT already set."""
    from cdktf import TerraformResource

    sys.path.insert(0, str(PROJECT_ROOT))
    from cdktf import DefaultTokenResolver, StringConcat, TerraformStack, Tokenization

    from main import build_app
    from mlpipe.gate.placeholders import with_placeholders
    from modules.common import CHECKOV_SKIP_METADATA, RENDERED_POLICIES

    config = load_config(config_path)
    app = build_app(config, outdir, outdir / "build")
    skips: dict[str, list[dict[str, str]]] = {}
    for construct in app.node.find_all():
        if not isinstance(construct, TerraformResource):
            continue
        entries = [m.data for m in construct.node.metadata if m.type == CHECKOV_SKIP_METADATA]
        if entries:
            address = f"{construct.terraform_resource_type}.{construct.friendly_unique_id}"
            skips[address] = sorted(entries, key=lambda e: e["check"])
    stack = next(c for c in app.node.children if isinstance(c, TerraformStack))
    policies: dict[str, Any] = {}
    for template, document in RENDERED_POLICIES:
        name = template.removesuffix(".json.j2")
        index = sum(1 for key in policies if key == name or key.startswith(f"{name}#"))
        policies[name if index == 0 else f"{name}#{index + 1}"] = with_placeholders(
            Tokenization.resolve(document, scope=stack, preparing=False, resolver=DefaultTokenResolver(StringConcat())),
            config.region,
        )
    app.synth()
    shutil.rmtree(outdir / "build", ignore_errors=True)
    directory = stack_dir(outdir)
    hcl = directory / "cdk.tf"
    hcl.write_text(finalize_hcl(hcl.read_text(), skips))
    (directory / POLICIES_FILE).write_text(json.dumps(policies, indent=2) + "\n")
    (directory / SKIPS_FILE).write_text(json.dumps(dict(sorted(skips.items())), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: python -m mlpipe.synth.runner --child CONFIG OUTDIR (use `mlpipe synth` instead)")
