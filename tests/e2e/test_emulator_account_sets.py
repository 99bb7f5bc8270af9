"""Two account sets in two regions, applied one after the other into ONE emulator.

Why: many pipelines on one emulator is the platform's normal case, and a second configuration
(other accounts, another region, a role-ARN deploy role, another branch) once hung at
``aws_lambda_function`` in an emulator that already held a first one (201, then 409 for minutes).
Both configurations go through the real workflow (synth -> scan -> init -> plan -> apply, repeated
while the workflow still has stacks to apply: it plans the pipeline stacks once the shared
foundation exists), must converge (a plan with no changes, also for the first after the second was
applied), and each one's Lambda must exist in its own production account and region only.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlpipe.emulator.process import Emulator
from mlpipe.workflow.flow import Workflow
from mlpipe.workflow.workspace import Workspace
from tests.conftest import LOCAL_CONFIG

pytestmark = pytest.mark.e2e

ACCOUNT_KEYS = ("shared", "training", "production")


@dataclass(frozen=True)
class AccountSet:
    """One configuration's identity: what the test changes in config/local.toml."""

    name_prefix: str
    region: str
    ids: dict[str, str]
    branch: str
    role_arns: bool  # deploy_role as a full role ARN instead of a role name


SET_A = AccountSet(
    name_prefix="mlp-eu",
    region="eu-west-1",
    ids={"shared": "410000000001", "training": "410000000002", "production": "410000000003"},
    branch="main",
    role_arns=False,
)
SET_B = AccountSet(
    name_prefix="mlp-us",
    region="us-east-1",
    ids={"shared": "520000000001", "training": "520000000002", "production": "520000000003"},
    branch="develop",
    role_arns=True,
)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def dump_toml(data: dict[str, Any]) -> str:
    """Enough of a TOML writer for the configuration files (tables, arrays of tables, scalars)."""
    lines: list[str] = []

    def is_table_list(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    def emit(table: dict[str, Any], path: list[str], header: str | None) -> None:
        if header is not None:
            lines.extend(["", header])
        for key, value in table.items():
            if not isinstance(value, dict) and not is_table_list(value):
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        for key, value in table.items():
            dotted = ".".join(_toml_key(k) for k in [*path, key])
            if isinstance(value, dict):
                emit(value, [*path, key], f"[{dotted}]")
            elif is_table_list(value):
                for item in value:
                    emit(item, [*path, key], f"[[{dotted}]]")

    emit(data, [], None)
    return "\n".join(lines).lstrip("\n") + "\n"


def write_config(account_set: AccountSet, path: Path) -> Path:
    """config/local.toml with this set's prefix, region, accounts, deploy roles and branch.

    Only one pipeline is kept when the file lists several: the test is about account sets, and
    each extra pipeline adds resources to every apply.
    """
    data = tomllib.loads(LOCAL_CONFIG.read_text())
    data["project"]["name_prefix"] = account_set.name_prefix
    data["project"]["region"] = account_set.region
    for key in ACCOUNT_KEYS:
        account = data["accounts"][key]
        account["id"] = account_set.ids[key]
        if account_set.role_arns:
            account["deploy_role"] = f"arn:aws:iam::{account_set.ids[key]}:role/MlpipeDeployer"
    if isinstance(data.get("pipelines"), list) and data["pipelines"]:
        data["pipelines"] = data["pipelines"][:1]
        data["pipelines"][0]["branch"] = account_set.branch
        data.setdefault("defaults", {})["branch"] = account_set.branch
    else:
        data["project"]["branch"] = account_set.branch
    path.write_text(dump_toml(data))
    assert tomllib.loads(path.read_text()) == data
    return path


def lambda_names(url: str, account: str, region: str) -> list[str]:
    """Function names in one emulated account and region (moto's x-moto-account-id header)."""
    client = boto3.client(
        "lambda", endpoint_url=url, region_name=region, aws_access_key_id="test", aws_secret_access_key="test"
    )

    def as_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-send.*.*", as_account)
    return sorted(f["FunctionName"] for f in client.list_functions()["Functions"])


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def describe(plan: Any) -> str:
    """A plan's summary for assertion messages (whichever shape the workflow's result has)."""
    stacks = getattr(plan, "stacks", None)
    if isinstance(stacks, dict):
        parts = [f"[{name}] {getattr(p, 'summary', p)}" for name, p in stacks.items()]
        return "\n".join([*parts, f"blocked: {getattr(plan, 'blocked', [])}"])
    return str(getattr(plan, "summary", plan))


@dataclass
class Applied:
    """One account set after it was applied: its workflow and the plan that showed no changes."""

    account_set: AccountSet
    flow: Workflow
    applies: int
    final_plan: Any


MAX_ROUNDS = 3  # the workflow plans pipeline stacks only once the shared foundation exists


@pytest.fixture(scope="module")
def applied(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Applied]:
    """Set A, then set B, each planned and applied through the workflow into the same emulator
    until a plan shows no changes (foundation first, then the pipeline stacks)."""
    results: dict[str, Applied] = {}
    for label, account_set in (("A", SET_A), ("B", SET_B)):
        project = tmp_path_factory.mktemp(f"project-{label}")
        config_path = write_config(account_set, project / "pipeline.toml")
        lines: list[str] = []
        flow = Workflow(config_path, Workspace(project), echo=lines.append, emulator_url=emulator.url)
        applies = 0
        plan = flow.plan()
        assert plan.changes_present, "\n".join(lines)
        while plan.changes_present and applies < MAX_ROUNDS:
            try:
                flow.apply()
            except Exception as exc:
                log = emulator.log_path.read_text(errors="replace").splitlines()[-40:]
                raise AssertionError(f"apply of set {label} failed: {exc}\n" + "\n".join(lines[-40:] + log)) from exc
            applies += 1
            plan = flow.plan()
        results[label] = Applied(account_set, flow, applies, plan)
    return results


def test_both_account_sets_converge_in_one_emulator(applied: dict[str, Applied]) -> None:
    # Each set's last plan showed no changes; B's was made after everything was applied.
    for label, result in applied.items():
        assert result.applies >= 1
        assert not result.final_plan.changes_present, f"set {label} does not converge:\n{describe(result.final_plan)}"
    # Applying B did not disturb A.
    again = applied["A"].flow.plan()
    assert not again.changes_present, f"set A changed after set B was applied:\n{describe(again)}"


def test_each_lambda_is_only_in_its_own_account_and_region(applied: dict[str, Applied], emulator: Emulator) -> None:
    sets = [result.account_set for result in applied.values()]
    found: dict[tuple[str, str], list[str]] = {}
    for account_set in sets:
        for account in account_set.ids.values():
            for region in {s.region for s in sets}:
                names = lambda_names(emulator.url, account, region)
                if names:
                    found[(account, region)] = names
    for account_set in sets:
        home = (account_set.ids["production"], account_set.region)
        prefix = f"{account_set.name_prefix}-"
        mine = {where: [n for n in names if n.startswith(prefix)] for where, names in found.items()}
        assert mine.get(home), f"{account_set.name_prefix}: no Lambda in {home}; found {found}"
        assert [where for where, names in mine.items() if names] == [home], found
    assert set(found) == {(s.ids["production"], s.region) for s in sets}, found
