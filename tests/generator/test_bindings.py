"""The generator imports only the AWS binding modules it uses (modules/bindings.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

_LOADED = """
import json, sys
import main  # the synth child's entry point
loaded = sorted(m.split(".")[1] for m in sys.modules if m.startswith("cdktf_cdktf_provider_aws."))
print(json.dumps({"loaded": loaded}))
"""


def test_a_synth_child_loads_the_bindings_it_uses_and_not_the_other_two_thousand() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LOADED], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    loaded = set(report["loaded"])
    assert {"_jsii", "provider", "s3_bucket", "iam_role", "kms_key", "lambda_function"} <= loaded
    assert "lexv2_models_intent" not in loaded and "securityhub_insight" not in loaded
    assert len(loaded) < 60, sorted(loaded)  # the package's own __init__ loads 4,273
