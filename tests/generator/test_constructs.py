"""Construct tests with CDKTF's Testing API: what each construct synthesizes, resource by resource.

Statement-level policy assertions live in test_stack.py (on the resolved documents); here the
Testing matchers check the security-relevant attributes of the resources themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cdktf import Testing as CdktfTesting  # aliased: pytest would try to collect "Testing*"
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA
from cdktf_cdktf_provider_aws.sfn_state_machine import SfnStateMachine

from main import FoundationStack, PipelineStack
from mlpipe.core.config import load_config
from tests.conftest import LOCAL_CONFIG


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One pipeline stack, synthesized in process with CDKTF's Testing API (JSON form)."""
    app = CdktfTesting.app()
    stack = PipelineStack(app, load_config(LOCAL_CONFIG), "churn", tmp_path_factory.mktemp("build"))
    return CdktfTesting.synth(stack)


@pytest.fixture(scope="module")
def foundation() -> str:
    app = CdktfTesting.app()
    return CdktfTesting.synth(FoundationStack(app, load_config(LOCAL_CONFIG)))


def _resources(synthesized: str, resource_type: str) -> dict[str, dict[str, Any]]:
    return json.loads(synthesized)["resource"][resource_type]


def test_keys_rotate_and_have_a_policy(synthesized: str) -> None:
    rotation = {"enable_key_rotation": True}
    assert CdktfTesting.to_have_resource_with_properties(synthesized, KmsKey.TF_RESOURCE_TYPE, rotation)
    keys = _resources(synthesized, KmsKey.TF_RESOURCE_TYPE)
    assert sorted(keys) == ["production_deployer", "shared_artifacts"]  # the pipeline's data key + deployer key
    assert all(k["enable_key_rotation"] is True and "policy" in k for k in keys.values())
    assert {k["provider"] for k in keys.values()} == {"aws.shared", "aws.production"}


def test_foundation_holds_the_logs_keys_and_the_access_log_bucket(foundation: str) -> None:
    keys = _resources(foundation, KmsKey.TF_RESOURCE_TYPE)
    assert sorted(keys) == ["production_logs", "training_logs"]
    assert {k["provider"] for k in keys.values()} == {"aws.training", "aws.production"}
    assert sorted(json.loads(foundation)["output"]) == [
        "access_log_bucket",
        "production_logs_key_arn",
        "training_logs_key_arn",
    ]


def test_buckets_are_private_versioned_and_kms_encrypted(synthesized: str) -> None:
    blocks = _resources(synthesized, S3BucketPublicAccessBlock.TF_RESOURCE_TYPE)
    assert len(blocks) == 1
    for block in blocks.values():
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        assert all(block[f] is True for f in flags)
    assert all(
        v["versioning_configuration"]["status"] == "Enabled"
        for v in _resources(synthesized, S3BucketVersioningA.TF_RESOURCE_TYPE).values()
    )
    rules = [
        e["rule"][0]
        for e in _resources(synthesized, S3BucketServerSideEncryptionConfigurationA.TF_RESOURCE_TYPE).values()
    ]
    kms = [r for r in rules if r["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"]
    assert len(kms) == 1 and kms[0]["bucket_key_enabled"] is True
    assert kms[0]["apply_server_side_encryption_by_default"]["kms_master_key_id"].startswith("${aws_kms_key.")


def test_no_managed_policy_is_attached(synthesized: str) -> None:
    assert IamRolePolicyAttachment.TF_RESOURCE_TYPE not in json.loads(synthesized)["resource"]
    roles = _resources(synthesized, IamRole.TF_RESOURCE_TYPE)
    assert len(roles) == 8
    assert not any("managed_policy_arns" in role for role in roles.values())


def test_log_groups_are_encrypted_and_kept_a_year(synthesized: str) -> None:
    groups = _resources(synthesized, CloudwatchLogGroup.TF_RESOURCE_TYPE)
    assert len(groups) == 2
    # encrypted with the foundation's logs key of their account, read from its state
    assert {g["kms_key_id"] for g in groups.values()} == {
        "${data.terraform_remote_state.foundation.outputs.training_logs_key_arn}",
        "${data.terraform_remote_state.foundation.outputs.production_logs_key_arn}",
    }
    assert all(g["retention_in_days"] == 365 for g in groups.values())


def test_state_machine_and_lambda_are_traced(synthesized: str) -> None:
    assert CdktfTesting.to_have_resource_with_properties(
        synthesized, SfnStateMachine.TF_RESOURCE_TYPE, {"tracing_configuration": {"enabled": True}}
    )
    assert CdktfTesting.to_have_resource_with_properties(
        synthesized,
        LambdaFunction.TF_RESOURCE_TYPE,
        {"runtime": "python3.12", "tracing_config": {"mode": "Active"}, "handler": "deployer.handler"},
    )


def test_build_dir_gets_reproducible_assets(tmp_path: Path) -> None:
    from mlpipe.core.assets import build_lambda_zip, write_sample_data

    first = build_lambda_zip(tmp_path / "a.zip").read_bytes()
    second = build_lambda_zip(tmp_path / "b.zip").read_bytes()
    assert first == second
    data = write_sample_data(tmp_path / "data")
    rows = data["train"].read_text().splitlines()
    assert len(rows) == 400 and all(r.split(",")[0] in ("0", "1") and len(r.split(",")) == 5 for r in rows)
    assert 100 < sum(r.startswith("1") for r in rows) < 300  # both classes present
