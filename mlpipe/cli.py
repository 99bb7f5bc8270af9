"""`mlpipe`: the command line. Parses arguments, holds the workspace lock, turns errors into exit codes.

Exit codes are part of the interface (see ``mlpipe.core.errors``): scripts should call this CLI
(``.venv/bin/mlpipe``) rather than ``make``, which turns every failure into its own exit code 2.
Usage errors exit 64, so they are never mistaken for ``plan --detailed-exitcode``'s "changes" (2).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from mlpipe.core.errors import Interrupted, PipelineError, UsageError
from mlpipe.core.processes import CHILDREN
from mlpipe.emulator import process as emulator
from mlpipe.workflow.lock import WorkspaceLock
from mlpipe.workflow.workspace import Workspace

DEFAULT_CONFIG = Path("config/local.toml")
LOCKED_COMMANDS = {"synth", "scan", "graph", "plan", "apply", "destroy", "demo", "adopt"}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; 2 means "changes present" here, so usage errors exit 64."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}", f"see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlpipe",
        description="Generate, scan and deploy the cross-account ML train-and-deploy pipelines.",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration file (default: %(default)s)")
    parser.add_argument("--project-dir", type=Path, default=Path("."), help="where cdktf.out/ and .mlpipe/ live")
    parser.add_argument("--force", action="store_true", help="synthesize and scan even when the inputs did not change")
    parser.add_argument(
        "--i-accept-failed-scan",
        action="store_true",
        help="run Terraform even if the policy gate fails (loud, written to .mlpipe/audit.log)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def selection(command: argparse.ArgumentParser, jobs: bool = True) -> None:
        command.add_argument(
            "--pipeline",
            action="append",
            default=[],
            metavar="NAME",
            help="work on this pipeline's stack only (repeatable); other pipelines' state is not touched",
        )
        if jobs:
            command.add_argument(
                "--jobs", type=int, default=2, metavar="N", help="pipeline stacks run N at a time (default: 2)"
            )

    sub.add_parser("synth", help="write the HCL of every stack under cdktf.out/stacks/")
    sub.add_parser("scan", help="synth, then the policy gate (checkov + own checks + parliament + access proof)")
    sub.add_parser("graph", help="synth, then draw the access graph (SVG) and the call table from the access proof")
    plan = sub.add_parser("plan", help="synth, scan, then init + plan + summary per stack; saves the plans")
    plan.add_argument("--detailed-exitcode", action="store_true", help="exit 0 without changes, 2 with changes")
    plan.add_argument("--destroy", action="store_true", help="plan the destruction of the selected stacks")
    selection(plan)
    apply = sub.add_parser("apply", help="apply exactly the saved plans (refuses stale ones)")
    selection(apply)
    destroy = sub.add_parser("destroy", help="destroy the selected stacks, data included (asks first)")
    destroy.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    selection(destroy)
    output = sub.add_parser("output", help="show the outputs of every deployed stack")
    output.add_argument("--json", action="store_true", help="machine-readable, keyed by stack")
    selection(output, jobs=False)
    stacks = sub.add_parser("stacks", help="list the stacks (foundation first), the pipelines and any orphans")
    stacks.add_argument("--json", action="store_true", help="machine-readable (for CI job matrices)")
    adopt = sub.add_parser("adopt", help="import objects that exist under the stacks' names (then review and apply)")
    adopt.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="ADDRESS=KEY_ID",
        help="which of several candidate KMS keys to adopt for a key address (repeatable)",
    )
    selection(adopt, jobs=False)
    sub.add_parser("demo", help="plan + apply + no-change check on the local emulator, then the outputs")
    sub.add_parser("bootstrap", help="create the S3 state bucket in the shared account (real AWS)")
    emu = sub.add_parser("emulator", help="the local emulator daemon")
    emu.add_argument("action", choices=["start", "stop", "status"])
    return parser


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workspace = Workspace(args.project_dir.resolve())
    if args.command == "emulator":
        return _emulator(args.action, workspace)
    from mlpipe.workflow.flow import Workflow  # heavy imports only when needed

    # The configuration is validated before anything is written (not even the lock file).
    machine_readable = getattr(args, "json", False)  # stdout carries only the JSON document then
    flow = Workflow(
        args.config,
        workspace,
        echo=_warn if machine_readable else _echo,
        accept_failed_scan=args.i_accept_failed_scan,
        jobs=getattr(args, "jobs", 2),
        pipelines=getattr(args, "pipeline", []),
        force=args.force,
    )
    if args.command in LOCKED_COMMANDS:
        with WorkspaceLock(workspace.lock_file, args.command, warn=_warn):
            return _run_workflow(args, flow)
    return _run_workflow(args, flow)


def _run_workflow(args: argparse.Namespace, flow: Any) -> int:
    if args.command == "synth":
        flow.synth()
    elif args.command == "scan":
        flow.scan()
    elif args.command == "graph":
        _echo(f"access graph: {flow.graph()}")
    elif args.command == "plan":
        result = flow.plan(destroy=args.destroy)
        if args.detailed_exitcode and result.changes_present:
            return 2
    elif args.command == "apply":
        _print_outputs(flow.apply(), as_json=False)
    elif args.command == "destroy":
        _confirm_destroy(flow, args.yes)
        flow.destroy()
    elif args.command == "output":
        _print_outputs(flow.outputs(), as_json=args.json)
    elif args.command == "adopt":
        from mlpipe.workflow.adopt import parse_key_choice

        try:
            chosen = dict(parse_key_choice(choice) for choice in args.key)
        except ValueError as exc:
            raise UsageError(f"--key {exc}", "pass --key aws_kms_key.<name>=<key-id>") from exc
        flow.adopt(chosen)
        _echo("review the imports above, then `mlpipe apply` adopts them")
    elif args.command == "stacks":
        listing = {
            "stacks": list(flow.config.stacks),
            "foundation": "foundation",
            "pipelines": [p.name for p in flow.config.pipelines],
        }
        print(json.dumps(listing) if args.json else "\n".join(listing["stacks"]))
    elif args.command == "demo":
        _print_outputs(flow.demo(), as_json=False)
        _echo(
            "demo done. The emulator keeps running with the pipelines in it: `make output`, `make destroy`, "
            "`make emulator-stop`."
        )
    elif args.command == "bootstrap":
        from mlpipe.workflow.bootstrap import bootstrap_state_bucket

        _echo(bootstrap_state_bucket(flow.config))
    return 0


def _confirm_destroy(flow: Any, assume_yes: bool) -> None:
    """List what goes, data included, and ask on a terminal; scripts must say --yes."""
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "destroy deletes the stacks' resources and their data; it asks for confirmation on a terminal",
            "run it from a terminal, or pass --yes (make destroy YES=1) in a script",
        )
    _echo("destroy will delete, including the buckets' training data, models and pipeline artifacts:")
    for stack in flow.destroy_targets():
        addresses = flow.resources(stack) if (flow.files.stack_dir(stack) / "cdk.tf").is_file() else []
        _echo(f"  {stack}: {len(addresses)} resources")
        for address in addresses:
            _echo(f"    - {address}")
    answer = input(f"type the project's name_prefix ({flow.config.name_prefix}) to destroy: ").strip()
    if answer != flow.config.name_prefix:
        raise UsageError("destroy cancelled: nothing was deleted", "type the name_prefix exactly to confirm")


def _emulator(action: str, workspace: Workspace) -> int:
    if action == "start":
        _echo(f"emulator running at {emulator.ensure_running(workspace.emulator_dir)}")
    elif action == "stop":
        _echo("emulator stopped" if emulator.stop_running(workspace.emulator_dir) else "no emulator was running")
    else:
        current = emulator.status(workspace.emulator_dir)
        _echo(json.dumps(current, indent=2) if current else "no emulator running")
        return 0 if current else 1
    return 0


def _echo(line: str) -> None:
    print(line, flush=True)


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _print_outputs(outputs: dict[str, dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(outputs, indent=2, sort_keys=True))
        return
    for stack in outputs:
        values = outputs[stack]
        width = max((len(k) for k in values), default=0)
        print(f"outputs of {stack}:")
        for key in sorted(values):
            print(f"  {key.ljust(width)} = {values[key]}")


def _on_signal(signum: int, _frame: Any) -> None:
    """First Ctrl-C/SIGTERM: forward SIGINT and let Terraform stop cleanly. Second: force."""
    if CHILDREN.interrupted.is_set():
        _warn("second interrupt: killing the running steps; their state may be incomplete")
        CHILDREN.kill()
        raise Interrupted("stopped by a second interrupt (forced)", "run `mlpipe plan` to see where things stand")
    running = CHILDREN.running()
    CHILDREN.interrupt()
    if running:
        _warn(
            f"interrupt ({signal.Signals(signum).name}): stopping {len(running)} running step(s) cleanly - "
            "Terraform finishes the call in flight, writes its state and releases its lock "
            "(interrupt again to force)"
        )
        return
    raise Interrupted(f"interrupted ({signal.Signals(signum).name})", "run the command again")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        return run(argv)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return Interrupted.exit_code


if __name__ == "__main__":
    sys.exit(main())
