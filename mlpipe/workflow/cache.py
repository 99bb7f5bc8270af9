"""What synth and the gate depend on, as content hashes: equal hashes mean the work can be skipped.

Synth depends on the configuration file, the generator (main.py, modules/, the generator's helpers
in mlpipe/core and mlpipe/synth), its assets (policies/, asl/, lambda_src/) and the pinned
versions of cdktf, the AWS bindings, constructs and Terraform (which formats the HCL). The gate
depends on the bytes it scans (fingerprinted per stack), the checks and the gate's code
(mlpipe/gate, which holds the lint allow-list and the access proof's call list) and the versions
of checkov and parliament. Any change to any byte of any of these changes the hash.

A hash is only ever written next to a result that completed (synth's record is replaced
atomically with its output; the gate writes its record only for a pass), so a failed or
interrupted run never leaves an entry that a later run could take for a pass.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Iterable
from pathlib import Path

from mlpipe.core import paths

SYNTH_PACKAGES = ("cdktf", "cdktf-cdktf-provider-aws", "constructs", "jinja2")
GATE_PACKAGES = ("checkov", "parliament")


def _versions(packages: Iterable[str]) -> list[str]:
    found = []
    for package in packages:
        try:
            found.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package}==missing")
    return found


def tree_hash(digest: hashlib._Hash, root: Path, label: str) -> None:
    """Add every file under ``root`` (path and bytes, sorted; caches and bytecode excluded)."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        relative = path.name if root.is_file() else path.relative_to(root).as_posix()
        name = f"{label}/{relative}".encode()
        data = path.read_bytes()
        digest.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big") + data)


def synth_inputs(config_path: Path, engine_version: str, root: Path | None = None) -> str:
    """The hash of everything a synth of ``config_path`` depends on."""
    root = root or paths.PROJECT_ROOT
    digest = hashlib.sha256()
    tree_hash(digest, Path(config_path), "config")
    for part in ("main.py", "modules", "asl", "lambda_src", "mlpipe/core", "mlpipe/synth"):
        tree_hash(digest, root / part, part)
    tree_hash(digest, paths.POLICIES_DIR if root == paths.PROJECT_ROOT else root / "policies", "policies")
    digest.update("\n".join([*_versions(SYNTH_PACKAGES), f"terraform=={engine_version}"]).encode())
    return digest.hexdigest()


def gate_inputs(root: Path | None = None) -> str:
    """The hash of the gate itself: checks, lint allow-list, access proof, scanner versions."""
    root = root or paths.PROJECT_ROOT
    digest = hashlib.sha256()
    tree_hash(digest, root / "mlpipe" / "gate", "gate")
    digest.update("\n".join(_versions(GATE_PACKAGES)).encode())
    return digest.hexdigest()
