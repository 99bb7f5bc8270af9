"""Names that the generator and the wrapper must agree on, defined once."""

from __future__ import annotations

# The stack directory under cdktf.out/stacks/.
STACK_NAME = "pipeline"
# The Train stage reads this file from the repository (modules/shared_services.py); the seed step writes it.
TRAINING_REQUEST_FILE = "training-request.json"
