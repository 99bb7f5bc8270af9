"""The CLI turns errors into a clear message and a distinct exit code, and changes nothing on bad input."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from mlpipe import cli
from mlpipe.core.errors import AlreadyExists, PipelineError
from mlpipe.emulator.process import free_port
from mlpipe.gate.fingerprint import directory_fingerprint
from mlpipe.workflow.flow import PlanResult, StackPlan, Workflow
from mlpipe.workflow.lock import WorkspaceLock
from mlpipe.workflow.workspace import Workspace
from tests.conftest import EXAMPLE_CONFIG, LOCAL_CONFIG


def _main(tmp_path: Path, *argv: str, config: Path = LOCAL_CONFIG) -> int:
    return cli.main(["--config", str(config), "--project-dir", str(tmp_path), *argv])


def _saved_plan(project: Path, config: Path, variables: dict[str, str] | None = None) -> Path:
    """A staged stack, its gate record and its saved plan, as `mlpipe plan` leaves them."""
    files = Workspace(project).for_config(config)
    stack = files.stack_dir("churn")
    stack.mkdir(parents=True)
    (stack / "cdk.tf").write_text("# scanned\n")
    fingerprint = directory_fingerprint(stack)
    files.gate_record.write_text(json.dumps({"ok": True, "fingerprints": {"churn": fingerprint}}))
    files.plan_file("churn").parent.mkdir(parents=True)
    files.plan_file("churn").write_bytes(b"plan")
    from mlpipe.synth.runner import file_sha256

    plan = StackPlan("churn", fingerprint, file_sha256(config), variables or {}, True, False, False, "1 to add")
    files.plan_record("churn").write_text(json.dumps(asdict(plan)))
    return stack


def test_bad_config_exits_3_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(LOCAL_CONFIG.read_text().replace('id = "222222222222"', 'id = "22222"'))
    assert _main(tmp_path, "plan", config=bad) == 3
    err = capsys.readouterr().err
    assert "accounts.training.id = '22222': must be exactly 12 digits" in err and "fix:" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_missing_config_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(tmp_path, "synth", config=tmp_path / "none.toml") == 3
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["plan", "--no-such-flag"], [], ["plan", "--jobs"], ["emulator", "restart"]])
def test_usage_errors_exit_64_not_2(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--project-dir", str(tmp_path), *argv]) == 64
    assert "usage:" in capsys.readouterr().err


def test_unknown_pipeline_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(tmp_path, "plan", "--pipeline", "nope") == 3
    assert "no pipeline named 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("changes", "blocked", "flag", "expected"),
    [
        ({"churn": True, "fraud": False}, [], True, 2),
        ({"churn": False, "fraud": False}, [], True, 0),
        ({"foundation": False}, ["churn"], True, 2),  # a pipeline still to plan counts as a change
        ({"churn": True}, [], False, 0),
    ],
)
def test_plan_detailed_exitcode_aggregates_every_stack(
    changes: dict[str, bool],
    blocked: list[str],
    flag: bool,
    expected: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake_plan(self: Workflow, destroy: bool = False) -> PlanResult:
        stacks = {s: StackPlan(s, "f", "c", {}, c, destroy, False, "") for s, c in changes.items()}
        return PlanResult(stacks=stacks, blocked=blocked)

    monkeypatch.setattr(Workflow, "plan", fake_plan)
    assert _main(tmp_path, "plan", *(["--detailed-exitcode"] if flag else [])) == expected


def test_a_failing_stack_fails_the_run_with_its_own_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_plan(self: Workflow, destroy: bool = False) -> PlanResult:
        raise PipelineError("stack fraud: boom")

    monkeypatch.setattr(Workflow, "plan", fake_plan)
    assert _main(tmp_path, "plan", "--detailed-exitcode") == 1


def test_apply_without_a_plan_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(tmp_path, "apply") == 9
    assert "no saved plan" in capsys.readouterr().err


def test_apply_refuses_when_the_planned_emulator_is_gone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    _saved_plan(tmp_path, LOCAL_CONFIG, {"emulator_url": url})
    assert _main(tmp_path, "apply") == 10
    assert f"the plan was made against the emulator at {url}, which is not running" in capsys.readouterr().err
    assert Workspace(tmp_path).for_config(LOCAL_CONFIG).plan_file("churn").exists()  # nothing applied or removed


def test_apply_refuses_a_plan_of_another_config_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "local.toml"
    config.write_text(LOCAL_CONFIG.read_text())
    _saved_plan(tmp_path, config)
    config.write_text(config.read_text() + "\n# edited after the plan\n")
    assert _main(tmp_path, "apply", config=config) == 9
    assert "changed since the plan was made and scanned" in capsys.readouterr().err


def test_apply_refuses_bytes_that_are_not_what_the_gate_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = _saved_plan(tmp_path, LOCAL_CONFIG)
    (stack / "cdk.tf").write_text('# scanned\nresource "aws_iam_role_policy" "sneaky" {}\n')
    assert _main(tmp_path, "apply") == 9
    assert "is not what the gate scanned" in capsys.readouterr().err


def test_apply_refuses_without_a_gate_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _saved_plan(tmp_path, LOCAL_CONFIG)
    Workspace(tmp_path).for_config(LOCAL_CONFIG).gate_record.unlink()
    assert _main(tmp_path, "apply") == 6
    assert "no passing gate record" in capsys.readouterr().err


def test_a_second_command_refuses_at_once_naming_the_holder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with WorkspaceLock(Workspace(tmp_path).lock_file, "apply"):
        started = time.monotonic()
        assert _main(tmp_path, "synth") == 12
        assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert f"PID {os.getpid()} running `mlpipe apply` since" in err
    assert not (tmp_path / "cdktf.out").exists()


def test_destroy_in_a_script_needs_yes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(tmp_path, "destroy") == 64
    assert "pass --yes" in capsys.readouterr().err


def test_output_with_nothing_deployed_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(tmp_path, "output") == 13
    err = capsys.readouterr().err
    assert "nothing is deployed" in err and "\x1b[" not in err


def test_stacks_lists_the_foundation_first_for_ci_matrices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(tmp_path, "stacks", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "stacks": ["foundation", "churn", "fraud"],
        "foundation": "foundation",
        "pipelines": ["churn", "fraud"],
    }


def test_real_aws_without_credentials_fails_first_and_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    started = time.monotonic()
    assert _main(tmp_path, "plan", config=EXAMPLE_CONFIG) == 11
    assert time.monotonic() - started < 2
    err = capsys.readouterr().err
    assert "no AWS credentials found" in err and "fix:" in err
    assert not (tmp_path / "cdktf.out").exists()  # no synth, no scan before the check


def test_demo_recovers_from_a_create_whose_answer_the_emulator_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round 1 applies the foundation; round 2's apply meets a role it made (exit 14): adopt, apply, converge."""
    plans = iter(
        [
            PlanResult(
                stacks={"foundation": StackPlan("foundation", "f", "c", {}, True, False, False, "")}, blocked=["churn"]
            ),
            PlanResult(stacks={"churn": StackPlan("churn", "f", "c", {}, True, False, False, "")}),
            PlanResult(stacks={"churn": StackPlan("churn", "f", "c", {}, False, False, False, "")}),
            PlanResult(stacks={"churn": StackPlan("churn", "f", "c", {}, False, False, False, "")}),
        ]
    )
    applies = iter([{}, AlreadyExists("terraform apply: IAM Role mlpipe-churn-x already exists"), {}])
    calls: list[str] = []

    def fake_apply(self: Workflow) -> dict[str, dict[str, str]]:
        calls.append("apply")
        outcome = next(applies)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def fake_adopt(self: Workflow) -> PlanResult:
        calls.append("adopt")
        return PlanResult(stacks={"churn": StackPlan("churn", "f", "c", {}, True, False, False, "")})

    monkeypatch.setattr(Workflow, "plan", lambda self, destroy=False: calls.append("plan") or next(plans))
    monkeypatch.setattr(Workflow, "apply", fake_apply)
    monkeypatch.setattr(Workflow, "adopt", fake_adopt)
    monkeypatch.setattr(Workflow, "outputs", lambda self: {"churn": {}})
    echoed: list[str] = []
    flow = Workflow(LOCAL_CONFIG, Workspace(tmp_path), echo=echoed.append)
    assert flow.demo() == {"churn": {}}
    assert calls == ["plan", "apply", "plan", "apply", "adopt", "apply", "plan", "plan"]
    assert any("recovering with `mlpipe adopt`" in line for line in echoed)


def test_demo_does_not_hide_a_leftover_that_adopt_cannot_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changed = PlanResult(stacks={"churn": StackPlan("churn", "f", "c", {}, True, False, False, "")})

    def always_exists(self: Workflow) -> dict[str, dict[str, str]]:
        raise AlreadyExists("terraform apply: IAM Role mlpipe-churn-x already exists")

    monkeypatch.setattr(Workflow, "plan", lambda self, destroy=False: changed)
    monkeypatch.setattr(Workflow, "apply", always_exists)
    monkeypatch.setattr(Workflow, "adopt", lambda self: changed)
    with pytest.raises(AlreadyExists):
        Workflow(LOCAL_CONFIG, Workspace(tmp_path), echo=lambda _l: None).demo()
