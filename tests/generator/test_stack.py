"""What the synthesized configuration says about security, asserted statement by statement.

The rendered policy documents (`rendered-policies.json`, written by synth next to the HCL) are
the exact documents in the HCL with Terraform references replaced by typed placeholders.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlpipe.synth.runner import SynthResult


def _statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    matches = [s for s in document["Statement"] if s["Sid"] == sid]
    assert len(matches) == 1, f"expected one statement {sid}"
    return matches[0]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_policy_statement_has_a_sid_and_no_star_action(local_synth: SynthResult) -> None:
    policies = local_synth.policies
    assert len(policies) >= 20
    for name, document in policies.items():
        for statement in document["Statement"]:
            assert statement["Sid"], name
            assert "*" not in _as_list(statement["Action"]), f"{name}/{statement['Sid']} allows Action *"


def test_cross_account_roles_trust_only_the_pipeline_role(local_synth: SynthResult) -> None:
    trusts = [d for n, d in local_synth.policies.items() if n.startswith("cross_account_trust")]
    assert len(trusts) == 2  # training and production
    for document in trusts:
        (statement,) = document["Statement"]
        assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/shared_identity_role_FD6D2366"}
        assert statement["Action"] == "sts:AssumeRole"


def test_service_roles_are_bound_to_their_own_account(local_synth: SynthResult) -> None:
    trusts = [d for n, d in local_synth.policies.items() if n.startswith("service_trust")]
    assert len(trusts) >= 6
    for document in trusts:
        (statement,) = document["Statement"]
        assert set(statement["Principal"]) == {"Service"}
        assert re.fullmatch(r"\d{12}", statement["Condition"]["StringEquals"]["aws:SourceAccount"])


def test_no_policy_trusts_a_root_except_key_administration(local_synth: SynthResult) -> None:
    for name, document in local_synth.policies.items():
        for statement in document["Statement"]:
            principals = json.dumps(statement.get("Principal", {}))
            if ":root" in principals:
                assert name.startswith("key_policy") and statement["Sid"] == "KeyAdministrationByOwningAccount"
                assert not any(a in ("kms:*", "kms:Decrypt", "kms:Encrypt") for a in _as_list(statement["Action"]))


def test_shared_key_use_is_granted_to_named_roles_only(local_synth: SynthResult) -> None:
    key = local_synth.policies["key_policy"]
    use = _statement(key, "AllowKeyUseByNamedRoles")
    roles = use["Principal"]["AWS"]
    assert all(r.startswith("arn:aws:iam::123456789012:role/") for r in roles)
    assert {r.rsplit("/", 1)[1].split("_")[0] for r in roles} == {"shared", "training", "production"}
    assert len(roles) == 6
    grants = _statement(key, "AllowGrantsForAwsResourcesByNamedRoles")
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_bucket_policy_denies_plaintext_wrong_key_and_insecure_transport(local_synth: SynthResult) -> None:
    bucket = local_synth.policies["bucket_policy"]
    unencrypted = _statement(bucket, "DenyUnencryptedUploads")
    assert (
        unencrypted["Effect"] == "Deny" and unencrypted["Action"] == "s3:PutObject" and unencrypted["Principal"] == "*"
    )
    assert unencrypted["Condition"] == {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}
    other_key = _statement(bucket, "DenyUploadsWithOtherKeys")
    key_arn = other_key["Condition"]["StringNotEquals"]["s3:x-amz-server-side-encryption-aws-kms-key-id"]
    assert key_arn.startswith("arn:aws:kms:eu-west-1:123456789012:key/")
    tls = _statement(bucket, "DenyInsecureTransport")
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and tls["Action"] == "s3:*"


def test_training_and_production_get_only_their_prefixes(local_synth: SynthResult) -> None:
    bucket = local_synth.policies["bucket_policy"]
    assert _statement(bucket, "AllowTrainingReadData")["Resource"].endswith("/data/*")
    assert _statement(bucket, "AllowTrainingWriteModels")["Resource"].endswith("/models/*")
    production = _statement(bucket, "AllowProductionReadModels")
    assert production["Action"] == "s3:GetObject" and production["Resource"].endswith("/models/*")
    assert _statement(bucket, "AllowDeployerReadPipelineArtifacts")["Resource"].endswith("/mlpipe-pipeline/*")


def test_pass_role_is_scoped_and_conditioned(local_synth: SynthResult) -> None:
    seen = 0
    for name, document in local_synth.policies.items():
        for statement in document["Statement"]:
            if "iam:PassRole" in _as_list(statement["Action"]):
                seen += 1
                assert statement["Resource"] != "*" and ":role/" in statement["Resource"], name
                assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
    assert seen == 2  # state machine -> training SageMaker role, deployer -> production SageMaker role


def test_hcl_uses_one_aliased_provider_per_account(local_synth: SynthResult) -> None:
    hcl = local_synth.hcl_path.read_text()
    assert re.findall(r'alias\s*=\s*"(\w+)"', hcl) == ["shared", "training", "production"]
    assert len(re.findall(r"^\s*role_arn\s*=\s*\"arn:aws:iam::(\d{12}):role/", hcl, re.M)) == 3
    assert not re.search(r'provider\s*=\s*"aws\.', hcl), "quoted provider references remain"
    assert not re.search(r"depends_on\s*=\s*\[\s*\"", hcl), "quoted depends_on references remain"
    assert "managed_policy_arns" not in hcl and "FullAccess" not in hcl


def test_declared_skips_appear_inline_with_reasons(local_synth: SynthResult) -> None:
    hcl = local_synth.hcl_path.read_text()
    skips = local_synth.skips
    assert skips, "expected the declared per-resource skips"
    for address, entries in skips.items():
        rtype, name = address.split(".")
        block = hcl[hcl.index(f'resource "{rtype}" "{name}"') :]
        for entry in entries:
            assert len(entry["reason"]) > 20
            assert f"# checkov:skip={entry['check']}:{entry['reason']}" in block.split("\n}\n")[0]


def test_deployer_runtime_and_tracing(local_synth: SynthResult) -> None:
    hcl = local_synth.hcl_path.read_text()
    block = hcl[hcl.index('resource "aws_lambda_function"') :].split("\n}\n")[0]
    assert re.search(r'runtime\s*=\s*"python3\.1[2-9]"', block)
    assert re.search(r'mode\s*=\s*"Active"', block)
    assert "reserved_concurrent_executions" in block and "dead_letter_config" in block


def test_pipeline_has_four_stages_and_encrypted_artifact_store(local_synth: SynthResult) -> None:
    hcl = local_synth.hcl_path.read_text()
    block = hcl[hcl.index('resource "aws_codepipeline"') :].split("\n}\n")[0]
    assert re.findall(r'^\s{4}name\s*=\s*"(\w+)"', block, re.M) == ["Source", "Train", "Approve", "Deploy"]
    assert re.search(r'type\s*=\s*"KMS"', block)
    assert re.search(r'PollForSourceChanges\s*=\s*"false"', block)
    assert "aws_cloudwatch_event_target" in hcl


def test_xgboost_image_comes_from_the_region_aware_data_source(local_synth: SynthResult) -> None:
    hcl = local_synth.hcl_path.read_text()
    assert 'data "aws_sagemaker_prebuilt_ecr_image"' in hcl
    assert "dkr.ecr" not in hcl
