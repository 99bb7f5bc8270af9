"""Content fingerprints: the proof that what Terraform plans and applies is exactly what the gate scanned."""

from __future__ import annotations

import hashlib
from pathlib import Path

# Written by `terraform init` after the scan; it pins provider hashes and is checked by Terraform itself.
NOT_SCANNED = {".terraform", ".terraform.lock.hcl"}


def directory_fingerprint(directory: Path) -> str:
    """SHA-256 over every file's relative path and bytes (sorted), except what init writes."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in directory.rglob("*") if p.is_file() and p.relative_to(directory).parts[0] not in NOT_SCANNED
    )
    if not files:
        raise FileNotFoundError(f"nothing to fingerprint in {directory}")
    for path in files:
        relative = path.relative_to(directory).as_posix().encode()
        digest.update(len(relative).to_bytes(4, "big") + relative)
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()
