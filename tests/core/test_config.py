"""The configuration is validated once; each rule names field, value and rule."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mlpipe.core.config import load_config, parse_config
from mlpipe.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = tomllib.loads((ROOT / "config" / "example.toml").read_text())


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return data


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, Path("test.toml"))
    return str(info.value)


def test_shipped_configs_are_valid() -> None:
    example = load_config(ROOT / "config" / "example.toml")
    local = load_config(ROOT / "config" / "local.toml")
    assert example.target == "aws" and example.state.backend == "s3"
    assert local.uses_emulator and local.state.backend == "local"
    assert {a.account_id for a in local.accounts.values()} == {"111111111111", "222222222222", "333333333333"}
    assert local.shared.deploy_role_arn == "arn:aws:iam::111111111111:role/OrganizationAccountAccessRole"
    assert local.training.hyperparameters["objective"] == "binary:logistic"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("accounts.shared.id", "12345", "accounts.shared.id = '12345': must be exactly 12 digits"),
        ("accounts.training.id", 222222222222, "accounts.training.id = 222222222222: must be a string"),
        ("accounts.production.id", "111111111111", "three distinct accounts"),
        ("project.region", "eu-westeros-1", "project.region = 'eu-westeros-1': not an AWS region name"),
        ("project.name_prefix", "ML_Pipe", "project.name_prefix = 'ML_Pipe': 3-20 chars"),
        ("project.name_prefix", "a-very-long-prefix-name", "3-20 chars"),
        ("project.name_prefix", "pipe-", "not ending with a hyphen"),
        ("project.branch", "feature..x", "project.branch = 'feature..x': not a valid Git branch name"),
        ("project.target", "gcp", 'must be "aws" or "emulator"'),
        ("project.approval_email", "not-an-email", "not an e-mail address"),
        ("accounts.shared.deploy_role", "bad role name!", "not a valid IAM role name"),
        ("accounts.shared.deploy_role", "arn:aws:iam::999999999999:role/x", "role ARN must be in account 111111111111"),
        ("training.instance_type", "m5.large", "training.instance_type = 'm5.large': not a SageMaker instance type"),
        ("training.instance_count", 0, "training.instance_count = 0: must be an integer from 1 to 20"),
        ("training.max_runtime_seconds", 10, "must be an integer from 60 to 432000"),
        ("training.xgboost_version", "latest", "must look like 1.7-1"),
        ("deploy.endpoint_instance_type", "ml.huge", "not a SageMaker instance type"),
        ("state.backend", "gcs", 'must be "local" or "s3"'),
        ("state.bucket", "Bad_Bucket", "not a valid S3 bucket name"),
        ("tags.aws:owner", "x", "invalid tag key"),
        ("project.colour", "blue", "project.colour = 'blue': unknown key"),
    ],
)
def test_each_rule_names_field_value_and_rule(path: str, value: Any, expected: str) -> None:
    assert expected in _error(_with(path, value))


def test_missing_account_table_is_named() -> None:
    data = copy.deepcopy(EXAMPLE)
    del data["accounts"]["training"]
    assert "[accounts.training]: missing table" in _error(data)


def test_all_problems_are_reported_at_once() -> None:
    data = _with("project.region", "nowhere")
    data["accounts"]["shared"]["id"] = "1"
    message = _error(data)
    assert "2 problem(s)" in message and "project.region" in message and "accounts.shared.id" in message


def test_emulator_target_rejects_s3_state() -> None:
    data = _with("project.target", "emulator")
    assert "the emulator target keeps local state" in _error(data)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[project\nname_prefix = 'x'")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
