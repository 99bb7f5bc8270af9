"""Where the project's assets live: the generator loads them from the checkout, never from a copy."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POLICIES_DIR = PROJECT_ROOT / "policies"
ASL_DIR = PROJECT_ROOT / "asl"
LAMBDA_SOURCE_DIR = PROJECT_ROOT / "lambda_src"
