"""The CLI turns errors into a clear message and exit code, and changes nothing on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe import cli
from mlpipe.workflow.flow import PlanRecord, Workflow
from tests.conftest import LOCAL_CONFIG


def test_bad_config_exits_3_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(LOCAL_CONFIG.read_text().replace('id = "222222222222"', 'id = "22222"'))
    code = cli.main(["--config", str(bad), "--project-dir", str(tmp_path), "plan"])
    err = capsys.readouterr().err
    assert code == 3
    assert "accounts.training.id = '22222': must be exactly 12 digits" in err and "fix:" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_missing_config_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(tmp_path / "none.toml"), "synth"]) == 3
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(("changes", "flag", "expected"), [(True, True, 2), (False, True, 0), (True, False, 0)])
def test_plan_detailed_exitcode(
    changes: bool, flag: bool, expected: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_plan(self: Workflow, destroy: bool = False) -> PlanRecord:
        return PlanRecord(tmp_path / "p.tfplan", "f", {}, changes, "summary")

    monkeypatch.setattr(Workflow, "plan", fake_plan)
    argv = ["--config", str(LOCAL_CONFIG), "--project-dir", str(tmp_path), "plan"]
    assert cli.main([*argv, "--detailed-exitcode"] if flag else argv) == expected


def test_apply_without_a_plan_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--config", str(LOCAL_CONFIG), "--project-dir", str(tmp_path), "apply"])
    assert code == 9
    assert "no saved plan" in capsys.readouterr().err


def test_emulator_status_when_none_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--project-dir", str(tmp_path), "emulator", "status"]) == 0
    assert "no emulator running" in capsys.readouterr().out


def test_apply_refuses_when_the_planned_emulator_is_gone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlpipe.emulator.process import free_port

    plans = tmp_path / ".mlpipe" / "plans"
    plans.mkdir(parents=True)
    (plans / "mlpipe.tfplan").write_bytes(b"plan")
    url = f"http://127.0.0.1:{free_port()}"
    (plans / "mlpipe.json").write_text(f'{{"variables": {{"emulator_url": "{url}"}}, "fingerprint": "x"}}')
    code = cli.main(["--config", str(LOCAL_CONFIG), "--project-dir", str(tmp_path), "apply"])
    err = capsys.readouterr().err
    assert code == 10
    assert f"the plan was made against the emulator at {url}, which is not running" in err
    assert (plans / "mlpipe.tfplan").exists()  # nothing was applied or removed


def test_apply_refuses_a_stale_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plans = tmp_path / ".mlpipe" / "plans"
    plans.mkdir(parents=True)
    (plans / "mlpipe.tfplan").write_bytes(b"plan")
    (plans / "mlpipe.json").write_text('{"variables": {}, "fingerprint": "made-before-the-change"}')
    (tmp_path / "cdktf.out" / "stacks" / "pipeline").mkdir(parents=True)
    config = tmp_path / "aws.toml"
    config.write_text((LOCAL_CONFIG.parent / "example.toml").read_text())
    code = cli.main(["--config", str(config), "--project-dir", str(tmp_path), "apply"])
    assert code == 9
    assert "changed since the plan was made and scanned" in capsys.readouterr().err
