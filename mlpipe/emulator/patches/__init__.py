"""Local-only fixes to moto 5.2.5 so the AWS provider 5.100.0 can apply the pipeline against it.

Everything here runs inside the emulator child process only (``python -m mlpipe.emulator.process serve``);
nothing touches real AWS. Each patch is the smallest change that makes one resource type behave
like AWS for what Terraform reads and writes, and each function's docstring says which failure it
fixes. ``apply_patches()`` installs all of them once; it is idempotent.

One module per patched service (details in docs/emulator-notes.md):

* ``stepfunctions``: ``ValidateStateMachineDefinition`` (provider >= 5.67 calls it before create)
  and ``ListStateMachineVersions`` (read after create).
* ``codecommit``: dates as epoch numbers, tags API, ``UpdateRepositoryDescription``, approval rule
  templates and their repository associations; ``codecommit_files``: GetBranch/GetFile/PutFile.
* ``codepipeline``: ``created``/``updated`` metadata as epoch numbers.
* ``lambda_``: ``DeadLetterConfig``/``LoggingConfig`` kept and returned (moto drops them: perpetual
  diff); ``CreateFunction`` all-or-nothing (a create that fails leaves no function behind).
* ``s3``: ``EventBridgeConfiguration`` returned, delete markers disposable (force_destroy), logging
  target policies with ``Principal: "*"``, no synchronous access-log delivery.
* ``s3_lifecycle``: ``TransitionDefaultMinimumObjectSize`` stored and returned as sent (moto answered a
  constant, so ``varies_by_storage_class`` never passed the provider's read-back wait).
* ``s3_bucket_policy``: a bucket policy evaluator with real condition operators, fed with the
  request's context (SSE headers, transport) and the request's real IAM action
  (``PUT ?tagging`` is ``s3:PutObjectTagging``, not ``s3:PutObject``).
"""

from __future__ import annotations

import threading

from mlpipe.emulator.patches.codecommit import (
    patch_codecommit_approval_rule_templates,
    patch_codecommit_dates,
    patch_codecommit_tags_and_description,
)
from mlpipe.emulator.patches.codecommit_files import patch_codecommit_files
from mlpipe.emulator.patches.codepipeline import patch_codepipeline_timestamps
from mlpipe.emulator.patches.lambda_ import patch_lambda_create_function_atomic, patch_lambda_dead_letter_config
from mlpipe.emulator.patches.s3 import (
    patch_s3_delete_marker_dispose,
    patch_s3_eventbridge_notification,
    patch_s3_logging_target_policy,
    patch_s3_no_access_log_delivery,
)
from mlpipe.emulator.patches.s3_bucket_policy import (
    INSECURE_TRANSPORT_HEADER,
    S3RequestContext,
    conditions_hold,
    evaluate_bucket_policy,
    patch_s3_bucket_policy_conditions,
)
from mlpipe.emulator.patches.s3_lifecycle import patch_s3_lifecycle_transition_default_minimum_object_size
from mlpipe.emulator.patches.stepfunctions import patch_stepfunctions_list_versions, patch_stepfunctions_validate

__all__ = [
    "INSECURE_TRANSPORT_HEADER",
    "S3RequestContext",
    "apply_patches",
    "conditions_hold",
    "evaluate_bucket_policy",
]

_APPLIED = False
_LOCK = threading.Lock()


def apply_patches() -> None:
    """Install every patch into the imported moto modules (once per process)."""
    global _APPLIED
    with _LOCK:
        if _APPLIED:
            return
        patch_stepfunctions_validate()
        patch_stepfunctions_list_versions()
        patch_codecommit_dates()
        patch_codecommit_tags_and_description()
        patch_codecommit_approval_rule_templates()
        patch_codecommit_files()
        patch_s3_logging_target_policy()
        patch_s3_no_access_log_delivery()
        patch_codepipeline_timestamps()
        patch_s3_bucket_policy_conditions()
        patch_s3_eventbridge_notification()
        patch_s3_delete_marker_dispose()
        patch_s3_lifecycle_transition_default_minimum_object_size()
        patch_lambda_dead_letter_config()
        patch_lambda_create_function_atomic()
        _APPLIED = True
