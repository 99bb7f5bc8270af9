"""`mlpipe`: the command line. Parses arguments, runs the workflow, turns errors into exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlpipe.core.errors import PipelineError
from mlpipe.emulator import process as emulator
from mlpipe.workflow.workspace import Workspace

DEFAULT_CONFIG = Path("config/local.toml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlpipe",
        description="Generate, scan and deploy the cross-account ML train-and-deploy pipeline.",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration file (default: %(default)s)")
    parser.add_argument("--project-dir", type=Path, default=Path("."), help="where cdktf.out/ and .mlpipe/ live")
    parser.add_argument(
        "--i-accept-failed-scan",
        action="store_true",
        help="run Terraform even if the policy gate fails (loud, logged to .mlpipe/audit.log)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("synth", help="write the HCL under cdktf.out/")
    sub.add_parser("scan", help="synth, then run the policy gate (checkov + own checks + parliament)")
    plan = sub.add_parser("plan", help="synth, scan, init, save a plan and summarize it")
    plan.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 0 when there are no changes, 2 when there are"
    )
    plan.add_argument("--destroy", action="store_true", help="plan the destruction of everything")
    sub.add_parser("apply", help="apply exactly the saved plan (refuses a stale one)")
    sub.add_parser("destroy", help="destroy everything this configuration created")
    output = sub.add_parser("output", help="show the outputs")
    output.add_argument("--json", action="store_true", help="machine-readable")
    sub.add_parser("demo", help="plan + apply + outputs + no-change check, on the local emulator")
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

    flow = Workflow(args.config, workspace, echo=_echo, accept_failed_scan=args.i_accept_failed_scan)
    if args.command == "synth":
        flow.synth()
    elif args.command == "scan":
        flow.scan()
    elif args.command == "plan":
        record = flow.plan(destroy=args.destroy)
        _echo(f"plan saved: {record.plan_file} (apply it with `mlpipe apply`)")
        if args.detailed_exitcode and record.changes_present:
            return 2
    elif args.command == "apply":
        _print_outputs(flow.apply(), as_json=False)
    elif args.command == "destroy":
        flow.destroy()
    elif args.command == "output":
        _print_outputs(flow.outputs(), as_json=args.json)
    elif args.command == "demo":
        outputs = flow.demo()
        _print_outputs(outputs, as_json=False)
        _echo(
            "demo done. The emulator keeps running with the pipeline in it: `make output`, `make destroy`, "
            "`make emulator-stop`."
        )
    elif args.command == "bootstrap":
        from mlpipe.workflow.bootstrap import bootstrap_state_bucket

        _echo(bootstrap_state_bucket(flow.config))
    return 0


def _emulator(action: str, workspace: Workspace) -> int:
    if action == "start":
        _echo(f"emulator running at {emulator.ensure_running(workspace.emulator_dir)}")
    elif action == "stop":
        _echo("emulator stopped" if emulator.stop_running(workspace.emulator_dir) else "no emulator was running")
    else:
        current = emulator.status(workspace.emulator_dir)
        _echo(json.dumps(current, indent=2) if current else "no emulator running")
    return 0


def _echo(line: str) -> None:
    print(line, flush=True)


def _print_outputs(outputs: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(outputs, indent=2, sort_keys=True))
        return
    width = max((len(k) for k in outputs), default=0)
    print("outputs:")
    for key in sorted(outputs):
        print(f"  {key.ljust(width)} = {outputs[key]}")


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
