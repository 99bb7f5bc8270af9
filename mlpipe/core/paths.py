"""Where the project's assets live: the generator loads them from the checkout, never from a copy.

Also the two names the wrapper and the synth child (``main.py``) agree on, defined once here
because the wrapper never imports the generator.

``MLPIPE_POLICIES_DIR`` points the renderer at another copy of ``policies/``: the tests use it to
prove that a mutated template is caught by the gate, without touching the real ones.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POLICIES_DIR = Path(os.environ.get("MLPIPE_POLICIES_DIR") or PROJECT_ROOT / "policies")
ASL_DIR = PROJECT_ROOT / "asl"
LAMBDA_SOURCE_DIR = PROJECT_ROOT / "lambda_src"

# Written by main.py next to each stack's cdk.tf: what the stack's synth reported besides the HCL.
STACK_MANIFEST = "mlpipe-stack.json"
# Comma-separated stack names: the synth child builds only these (several children share a large config).
SYNTH_STACKS_ENV = "MLPIPE_SYNTH_STACKS"
