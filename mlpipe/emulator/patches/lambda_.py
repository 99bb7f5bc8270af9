"""Lambda: settings moto drops, and a ``CreateFunction`` that is all-or-nothing.

Fixes: ``aws_lambda_function`` never converging (``DeadLetterConfig`` and ``LoggingConfig`` accepted
but not stored, so every plan after apply wanted to set them again), and a create whose answer
failed after moto had stored the function turning into minutes of 409 retries (see
:func:`patch_lambda_create_function_atomic` and docs/emulator-notes.md).
"""

from __future__ import annotations

import threading
from typing import Any

#: Function settings moto 5.2.5 accepts but neither stores nor returns.
_KEPT_LAMBDA_SETTINGS = ("DeadLetterConfig", "LoggingConfig")


def patch_lambda_dead_letter_config() -> None:
    """Keep a function's ``DeadLetterConfig`` and ``LoggingConfig`` and return them from ``GetFunction``.

    Why: moto 5.2.5 accepts both on create/update but never stores or returns them, so every plan
    after apply wants to add ``dead_letter_config`` and ``logging_config`` again (never converges).
    """
    from moto.awslambda.models import LambdaFunction

    original_init = LambdaFunction.__init__
    original_get_configuration = LambdaFunction.get_configuration
    original_update_configuration = LambdaFunction.update_configuration

    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, account_id, spec, *args, **kwargs)
        self.mlpipe_kept = {key: spec[key] for key in _KEPT_LAMBDA_SETTINGS if spec.get(key)}

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config: dict[str, Any] = original_get_configuration(self, *args, **kwargs)
        kept = getattr(self, "mlpipe_kept", {})
        dlq = kept.get("DeadLetterConfig")
        if dlq and dlq.get("TargetArn"):
            config["DeadLetterConfig"] = {"TargetArn": dlq["TargetArn"]}
        if kept.get("LoggingConfig"):
            config["LoggingConfig"] = dict(kept["LoggingConfig"])
        return config

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        kept = getattr(self, "mlpipe_kept", {})
        for key in _KEPT_LAMBDA_SETTINGS:
            if key in config_updates:
                kept[key] = config_updates[key] or None
        self.mlpipe_kept = {k: v for k, v in kept.items() if v}
        return original_update_configuration(self, config_updates)  # type: ignore[no-any-return]

    LambdaFunction.__init__ = __init__  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]


#: Serializes ``CreateFunction``: moto's "does it exist?" check and its store are two steps on a
#: threaded server. Creates take milliseconds, so one lock for all accounts costs nothing.
_CREATE_LOCK = threading.Lock()


def patch_lambda_create_function_atomic() -> None:
    """Make ``CreateFunction`` all-or-nothing: one 201 per function, AWS's 409 for any repeat.

    Why: when the answer to a ``CreateFunction`` does not reach the provider (HTTP 5xx, connection
    reset), the SDK sends it again at once; if the function had been stored, the repeat gets 409
    ``ResourceConflictException`` and provider 5.100.0 retries *that* every <=10 s for its 5-minute
    Lambda propagation timeout, then fails, leaving a function Terraform does not know (every later
    apply loops again). moto stores the function before it builds its answer, so an error while
    answering left exactly that state. Now a create that fails removes what it stored (as a failed
    create on AWS leaves nothing), so the SDK's retry creates the function cleanly. The check and
    the store run under one lock, so concurrent creates of one name get exactly one 201 and then
    AWS's answer to a duplicate (409 ``ResourceConflictException: Function already exist: <name>``,
    which moto already words like AWS).
    """
    from moto.awslambda.exceptions import UnknownFunctionException
    from moto.awslambda.responses import LambdaResponse

    original = LambdaResponse.create_function

    def exists(backend: Any, name: str) -> bool:
        try:
            backend.get_function(name, None)
        except UnknownFunctionException:
            return False
        return True

    def create_function(self: Any) -> Any:
        name = str((self.json_body or {}).get("FunctionName", "")).rsplit(":", 1)[-1]
        with _CREATE_LOCK:
            try:
                existed = not name or exists(self.backend, name)
            except Exception:  # a malformed name: moto answers it itself, nothing to undo
                existed = True
            try:
                return original(self)
            except Exception:
                if not existed and exists(self.backend, name):
                    self.backend.delete_function(name)
                raise

    LambdaResponse.create_function = create_function  # type: ignore[method-assign]
