"""Import the prebuilt AWS bindings lean: only the submodules the generator uses.

The package ``cdktf_cdktf_provider_aws`` eagerly imports all of its ~2,100 submodules from its
``__init__`` (one per resource and data source) "to register their types with the jsii runtime".
That is 12 of the ~16 s a synth child spends importing, for types the generator never touches.
Each submodule is self-contained (it imports only ``.._jsii``, which loads the assembly into the
jsii kernel), so the package is entered here without running its ``__init__``, and each
``from cdktf_cdktf_provider_aws.<resource> import ...`` loads and registers exactly that module.

Nothing can silently go wrong: a JavaScript object of a type whose Python module is not loaded
is imported on demand by the jsii runtime (``jsii._reference_map._try_import_type_module``, the
runtime's own support for lazily loaded bindings) or refused with "Unknown type", failing the
synth. The snapshots of the HCL, recorded with the eagerly imported package, still match byte for
byte (tests/snapshots).
"""

from __future__ import annotations

import importlib.util
import sys

PACKAGE = "cdktf_cdktf_provider_aws"


def enter_lean() -> None:
    """Put the package in ``sys.modules`` without executing its ``__init__`` (idempotent)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: the import itself will say so
    sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)  # __path__ set, __init__ not run
