"""The configuration is validated once; each rule names the exact field, the value and the rule."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mlpipe.core.config import MAX_TAGS_PER_RESOURCE, load_config, parse_config
from mlpipe.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = tomllib.loads((ROOT / "config" / "example.toml").read_text())
LOCAL = tomllib.loads((ROOT / "config" / "local.toml").read_text())


def _with(path: str, value: Any, base: dict[str, Any] = EXAMPLE) -> dict[str, Any]:
    """A copy of the example with one value set; `pipelines.1.x` addresses list items by index."""
    data = copy.deepcopy(base)
    node: Any = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, Path("test.toml"))
    assert info.value.exit_code == 3
    return str(info.value)


def test_shipped_configs_are_valid_and_declare_two_pipelines() -> None:
    example = load_config(ROOT / "config" / "example.toml")
    local = load_config(ROOT / "config" / "local.toml")
    assert example.target == "aws" and example.state.backend == "s3"
    assert example.state.key_for("churn") == "mlpipe/churn.tfstate"
    assert local.uses_emulator and local.state.backend == "local"
    assert [p.name for p in local.pipelines] == ["churn", "fraud"] == [p.name for p in example.pipelines]
    assert local.stacks == ("foundation", "churn", "fraud")
    assert local.shared.deploy_role_arn == "arn:aws:iam::111111111111:role/OrganizationAccountAccessRole"


def test_pipeline_settings_override_defaults_key_by_key() -> None:
    local = load_config(ROOT / "config" / "local.toml")
    churn, fraud = local.pipelines
    assert churn.branch == "main" and fraud.branch == "release"
    assert churn.training.hyperparameters["max_depth"] == "5"
    assert fraud.training.hyperparameters == {
        "eta": "0.2",
        "max_depth": "8",
        "num_round": "120",
        "objective": "binary:logistic",
    }
    assert (churn.deploy.endpoint_instance_count, fraud.deploy.endpoint_instance_count) == (1, 2)
    # autoscaling defaults follow each pipeline's own instance count
    assert (fraud.serving.autoscaling_min, fraud.serving.autoscaling_max) == (2, 4)
    assert fraud.names.artifact_bucket == "mlpipe-fraud-artifacts-111111111111-eu-west-1"
    assert fraud.names.training_cross_account_role == "mlpipe-fraud-training-xacct"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("accounts.shared.id", "12345", "accounts.shared.id = '12345': must be exactly 12 digits"),
        ("accounts.shared.id", "111111111111\n", "accounts.shared.id = '111111111111\\n': must be exactly 12 digits"),
        ("accounts.training.id", 222222222222, "accounts.training.id = 222222222222: must be a string"),
        ("accounts.production.id", "111111111111", "three distinct accounts"),
        ("project.region", "eu-westeros-1", "project.region = 'eu-westeros-1': not an AWS region name"),
        ("project.name_prefix", "ML_Pipe", "project.name_prefix = 'ML_Pipe': 3-20 chars"),
        ("project.name_prefix", "mlpipe\n", "project.name_prefix = 'mlpipe\\n': 3-20 chars"),
        ("project.name_prefix", "pipe-", "not ending with a hyphen"),
        ("project.branch", "main", "project.branch = 'main': moved: set branch in [defaults]"),
        ("project.target", "gcp", 'must be "aws" or "emulator"'),
        ("defaults.branch", "feature..x", "defaults.branch = 'feature..x': not a valid Git branch name"),
        ("defaults.branch", "main\n", "defaults.branch = 'main\\n': not a valid Git branch name: contains U+000A"),
        ("pipelines.1.branch", "a b", "pipelines[1].branch = 'a b': not a valid Git branch name"),
        ("defaults.notification_emails", ["not-an-email"], "defaults.notification_emails[0] = 'not-an-email'"),
        ("defaults.notification_emails", ["a@b.io\n"], "defaults.notification_emails[0] = 'a@b.io\\n'"),
        ("accounts.shared.deploy_role", "bad role name!", "not a valid IAM role name"),
        ("accounts.shared.deploy_role", "röle", "not a valid IAM role name"),
        ("accounts.shared.deploy_role", "arn:aws:iam::999999999999:role/x", "role ARN must be in account 111111111111"),
        ("accounts.shared.deploy_role", "arn:aws-cn:iam::111111111111:role/x", "role ARN must be in partition aws"),
        (
            "defaults.training.instance_type",
            "m5.large",
            "defaults.training.instance_type = 'm5.large': not a SageMaker",
        ),
        ("pipelines.0.training", {"instance_count": 0}, "pipelines[0].training.instance_count = 0: must be an integer"),
        ("defaults.training.max_runtime_seconds", 10, "must be an integer from 60 to 432000"),
        ("defaults.training.xgboost_version", "latest", "must look like 1.7-1"),
        (
            "pipelines.1.deploy",
            {"endpoint_instance_count": 0},
            "pipelines[1].deploy.endpoint_instance_count = 0: must be",
        ),
        ("defaults.deploy.endpoint_instance_type", "ml.huge", "not a SageMaker instance type"),
        ("state.backend", "gcs", 'must be "local" or "s3"'),
        ("state.bucket", "Bad_Bucket", "not a valid S3 bucket name"),
        ("state.key", "x/terraform.tfstate", "renamed: state.key_prefix"),
        ("tags.aws:owner", "x", "tag keys starting with 'aws:' are reserved by AWS"),
        ("tags.ManagedBy", "me", "tag 'ManagedBy' is set by mlpipe on every resource"),
        ("tags.Account", "me", "tag 'Account' is set by mlpipe on every resource"),
        ("tags.Team", "a${b}", "tags.Team = 'a${b}': invalid tag value: character '$'"),
        ("tags.Team", 'a"b', "invalid tag value: character '\"'"),
        ("tags.Team", "x" * 257, "at most 256 characters"),
        ("project.colour", "blue", "project.colour = 'blue': unknown key"),
        ("training", {}, "training = {}: move [training] to [defaults.training]"),
        ("pipelines.0.name", "Churn", "pipelines[0].name = 'Churn': 1-16 lowercase letters and digits"),
        ("pipelines.0.name", "churn-v2", "no hyphens"),
        ("pipelines.1.name", "churn", "pipelines[1].name = 'churn': duplicate: pipelines[0] already has this name"),
        ("pipelines.0.name", "foundation", "'foundation' is the shared stack's name"),
        ("pipelines.0.serving", {"rollout": "yolo"}, "pipelines[0].serving.rollout = 'yolo': must be one of canary"),
        ("pipelines.0.serving", {"canary_percent": 60}, "pipelines[0].serving.canary_percent = 60"),
        ("pipelines.0.serving", {"autoscaling_max": 0}, "pipelines[0].serving.autoscaling_max = 0"),
        (
            "pipelines.1.serving",
            {"autoscaling_min": 3},
            "pipelines[1].serving.autoscaling_min/max = '3..4': must include",
        ),
        ("pipelines.0.serving", {"smoke_test_data": "/etc/passwd"}, "an S3 key in the pipeline's own bucket"),
        ("pipelines.0.serving", {"smoke_test_data": "data/${x}"}, "an S3 key in the pipeline's own bucket"),
    ],
)
def test_each_rule_names_field_value_and_rule(path: str, value: Any, expected: str) -> None:
    assert expected in _error(_with(path, value))


def test_hyperparameter_rules_follow_sagemaker() -> None:
    assert "at most 2500" in _error(_with("defaults.training.hyperparameters.eta", "1" * 2501))
    assert "contains control characters (U+000A)" in _error(_with("defaults.training.hyperparameters.eta", "0.2\n"))
    assert "must be a string or a number" in _error(_with("defaults.training.hyperparameters.eta", True))
    too_many = {f"k{i}": "1" for i in range(101)}
    assert "at most 100" in _error(_with("defaults.training.hyperparameters", too_many))
    # values AWS accepts are kept exactly, template syntax and quotes included
    config = parse_config(_with("defaults.training.hyperparameters.eta", 'x"${var.y}%{if}\\n'), Path("t.toml"))
    assert config.pipelines[0].training.hyperparameters["eta"] == 'x"${var.y}%{if}\\n'


def test_tag_limit_counts_the_tools_own_tags() -> None:
    tags = {f"T{i}": "v" for i in range(MAX_TAGS_PER_RESOURCE - 2)}
    assert "AWS allows 50 tags per resource and mlpipe sets 3 itself: at most 47" in _error(_with("tags", tags))
    ok = {f"T{i}": "v" for i in range(MAX_TAGS_PER_RESOURCE - 3)}
    assert len(parse_config(_with("tags", ok), Path("t.toml")).tags) == 47


def test_derived_names_must_fit_and_must_not_collide() -> None:
    long_prefix = _with("project.name_prefix", "a-rather-long-prefix")
    long = _with("pipelines.0.name", "abcdefghijklmnop", long_prefix)
    message = _error(long)
    assert (
        "pipelines[0].name = 'abcdefghijklmnop': the derived S3 bucket name "
        "'a-rather-long-prefix-abcdefghijklmnop-artifacts-111111111111-eu-west-1' (artifact_bucket) is 70 chars; "
        "AWS allows at most 63"
    ) in message
    assert "SageMaker training job name prefix 'a-rather-long-prefix-abcdefghijklmnop'" in message  # 37 > 28


def test_pipelines_are_required_and_all_problems_are_reported_at_once() -> None:
    data = copy.deepcopy(EXAMPLE)
    del data["pipelines"]
    assert "declare at least one pipeline" in _error(data)
    data = _with("project.region", "nowhere")
    data["accounts"]["shared"]["id"] = "1"
    data["pipelines"][1]["deploy"] = {"endpoint_instance_count": 0}
    message = _error(data)
    assert "3 problem(s)" in message and "pipelines are numbered from 0" in message
    assert "project.region" in message and "accounts.shared.id" in message and "pipelines[1].deploy" in message


def test_a_bad_default_is_reported_once_not_per_pipeline() -> None:
    message = _error(_with("defaults.training.instance_type", "m5.large"))
    assert message.count("defaults.training.instance_type") == 1


def test_emulator_target_rejects_s3_state() -> None:
    assert "the emulator target keeps local state" in _error(_with("project.target", "emulator"))


def test_missing_file_bad_toml_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[project\nname_prefix = 'x'")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes("[project]\nname_prefix = 'caf\u00e9'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at line 2") as info:
        load_config(latin)
    assert info.value.exit_code == 3


def test_unknown_pipeline_selection_names_the_known_ones() -> None:
    config = load_config(ROOT / "config" / "local.toml")
    with pytest.raises(ConfigError, match=r"(?s)no pipeline named 'nope'.*pipelines in this file: churn, fraud"):
        config.pipeline("nope")
