"""The project's own checkov checks (checks/CKV_MLP_*) catch each over-permissive pattern.

One checkov run (session-scoped, ~10 s) scans every fixture directory; each test then asserts,
by check id and resource address, exactly which resources fail and which pass. Fixtures under
``fixtures/<check>/fail`` reproduce the patterns of the original hand-written CloudFormation
templates (trust to another account's root, *FullAccess attachments, AssumeRole on role/*,
kms:* to root, AES256 default encryption under a KMS-demanding bucket policy) plus
fail-closed cases (opaque or unresolvable policies).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKS_DIR = ROOT / "mlpipe" / "gate" / "checks"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHECKOV = Path(sys.executable).parent / "checkov"

# (check id, fixture dir) -> resources that must FAIL that check.
EXPECTED_FAILURES: dict[tuple[str, str], set[str]] = {
    ("CKV_MLP_001", "mlp_001/fail"): {
        "aws_iam_role.trust_other_account_root",
        "aws_iam_role.trust_bare_account_id",
        "aws_iam_role.trust_star",
        "aws_iam_role.trust_aws_star",
        "aws_iam_role.trust_own_root_unconditioned",
        "aws_iam_role.trust_from_variable",
        "aws_iam_role.trust_from_missing_data_doc",
        "aws_iam_role.trust_from_local",
    },
    ("CKV_MLP_002", "mlp_002/fail"): {
        "aws_kms_key.key_root_kms_star",
        "aws_kms_key.key_other_root_admin",
        "aws_kms_key.key_root_wrong_provider",
        "aws_kms_key.key_use_to_star",
        "aws_kms_key.key_use_wildcard_action_to_root",
        "aws_kms_key.key_service_unconditioned",
        "aws_kms_key.key_user_principal",
        "aws_kms_key.key_default_policy",
        "aws_kms_key.key_policy_from_variable",
        "aws_kms_key_policy.key_policy_resource_star",
        "aws_kms_key.key_pinned_other_account_root",
        "aws_kms_key.key_pinned_own_root_decrypt",
        "aws_kms_key.key_root_provider_two_accounts",
        "aws_kms_key.key_root_provider_from_variable",
        "aws_kms_key.key_root_provider_unpinned",
        "aws_kms_key.key_root_default_provider_unpinned",
        "aws_kms_key.key_pinned_bare_account_id",
    },
    ("CKV_MLP_003", "mlp_003/fail"): {
        "aws_iam_policy.admin_star",
        "aws_iam_role.inline_star_star",
        "aws_iam_role_policy.assume_any_role",
        "aws_iam_role_policy.passrole_star",
        "aws_iam_role_policy.passrole_unconditioned",
        "aws_iam_policy.not_action",
        "aws_s3_bucket_policy.bucket_policy_star",
        "aws_sqs_queue_policy.sqs_star",
        "aws_iam_policy.from_star_doc",
        "aws_iam_policy.opaque_file",
        "aws_iam_role_policy.cdktf_passrole_star_D89D5944",
    },
    ("CKV_MLP_004", "mlp_004/fail"): {
        "aws_s3_bucket.bucket_aes256_mismatch",
        "aws_s3_bucket.bucket_no_sse_demands_kms",
        "aws_s3_bucket.bucket_no_policy",
        "aws_s3_bucket.bucket_missing_a",
        "aws_s3_bucket.bucket_wrong_key",
        "aws_s3_bucket.bucket_missing_tls",
        "aws_s3_bucket.bucket_combined_ab",
        "aws_s3_bucket.bucket_sse_without_key",
        "aws_s3_bucket.bucket_policy_opaque",
        "aws_s3_bucket.cdktf_bucket_wrong_key_DC41F792",
    },
    ("CKV_MLP_005", "mlp_005/fail"): {
        "aws_iam_role.training_role",
        "aws_iam_role_policy_attachment.s3_full_access",
        "aws_iam_policy_attachment.lambda_full_access",
        "aws_iam_role_policy_attachments_exclusive.exclusive_admin",
        "aws_iam_role_policy_attachment.via_data_lookup",
        "aws_iam_role_policy_attachment.from_variable",
    },
    ("CKV_MLP_006", "mlp_006/fail"): {
        "aws_iam_role.trust_other_account_root",
        "aws_iam_role.trust_literal_role_other_account",
        "aws_iam_role.trust_undeclared_role_ref",
        "aws_s3_bucket_policy.bucket_role_wildcard",
        "aws_s3_bucket_policy.bucket_own_root",
        "aws_kms_key.key_user_and_role",
        "aws_kms_key.key_root_kms_star",
        "aws_sqs_queue_policy.sqs_star",
        "aws_sns_topic_policy.sns_variable_principal",
        "aws_kms_key.key_pinned_other_account_root",
        "aws_kms_key.key_pinned_own_root_decrypt",
        "aws_s3_bucket_policy.cdktf_bucket_pinned_own_root",
    },
    ("CKV_MLP_007", "mlp_007/fail"): {
        "aws_iam_role_policy.kms_any_account_any_region",
        "aws_iam_role_policy.lambda_any",
        "aws_iam_policy.sagemaker_any_account",
        "aws_iam_policy.states_any_region",
        "aws_iam_policy.account_partial_wildcard",
        "aws_iam_policy.region_partial_wildcard",
        "aws_iam_policy.empty_account_lambda",
        "aws_iam_policy.empty_account_iam",
        "aws_iam_policy.iam_any_account",
        "aws_iam_policy.s3_every_bucket",
        "aws_iam_policy.s3_every_object",
        "aws_iam_policy.s3_access_point_any_region",
        "aws_iam_policy.s3_access_point_empty_account",
        "aws_iam_policy.wildcard_spans_fields",
        "aws_iam_policy.incomplete_arn",
        "aws_iam_role.inline_any_account",
        "aws_iam_user_policy.from_document",
        "aws_iam_group_policy.group_any_account",
        "aws_s3_bucket_policy.bucket_policy_every_bucket",
        "aws_sqs_queue_policy.queue_any_region",
        "aws_sns_topic_policy.topic_any_account",
        "aws_kms_key.key_policy_any_region",
        "aws_kms_key_policy.key_policy_resource_any_account",
        "aws_iam_role_policy.opaque_policy",
        "aws_iam_role_policy.cdktf_kms_any_account_D89D5944",
    },
    ("CKV_MLP_008", "mlp_008/fail"): {
        "aws_iam_role_policy.other_account_literal",
        "aws_iam_role_policy.wildcard_account",
        "aws_iam_role_policy.empty_account",
        "aws_iam_policy.star_resource",
        "aws_iam_policy.star_action_iam_wildcard",
        "aws_iam_policy.multi_pinned_account",
        "aws_iam_policy.unpinned_account",
        "aws_iam_policy.undeclared_role_ref",
        "aws_iam_policy.data_role_lookup",
        "aws_iam_policy.variable_role",
        "aws_iam_policy.undeclared_caller_identity",
        "aws_iam_policy.not_resource",
        "aws_iam_policy.not_action",
        "aws_iam_policy.missing_resource",
        "aws_iam_role.inline_other_account",
        "aws_iam_user_policy.from_document",
        "aws_iam_group_policy.group_wildcard_account",
        "aws_iam_role_policy.opaque_policy",
        "aws_iam_role_policy.cdktf_assume_foreign_D89D5944",
        "aws_iam_policy.role_ref_name_prefix",
    },
    ("CKV_MLP_009", "mlp_009/fail"): {
        "aws_iam_role_policy.other_pipeline_bucket",
        "aws_iam_role_policy.bucket_name_pattern",
        "aws_iam_role_policy.own_bucket_written_out",
        "aws_iam_role_policy.s3_star",
        "aws_iam_role_policy.s3_wildcard_service_arn",
        "aws_iam_role_policy.bucket_ref_name_prefix",
        "aws_iam_role_policy.undeclared_bucket_ref",
        "aws_iam_role_policy.data_bucket_lookup",
        "aws_iam_role_policy.variable_bucket",
        "aws_iam_role_policy.s3_not_resource",
        "aws_iam_role_policy.s3_missing_resource",
        "aws_iam_role_policy.kms_star",
        "aws_iam_role_policy.kms_wildcard_key",
        "aws_iam_role_policy.kms_literal_key",
        "aws_iam_role_policy.kms_key_id_not_arn",
        "aws_iam_role_policy.kms_undeclared_key_ref",
        "aws_iam_policy.star_action_other_bucket",
        "aws_iam_role.inline_other_bucket",
        "aws_iam_user_policy.from_document",
        "aws_iam_group_policy.group_bucket_pattern",
        "aws_s3_bucket_policy.bucket_policy_other_own_bucket",
        "aws_s3_bucket_policy.bucket_policy_literal",
        "aws_s3_bucket_policy.bucket_policy_star",
        "aws_s3_bucket_policy.bucket_policy_unknown_bucket",
        "aws_s3_bucket_policy.bucket_policy_foreign_bucket",
        "aws_kms_key.key_policy_s3_literal",
        "aws_iam_role_policy.opaque_policy",
        "aws_iam_role_policy.cdktf_other_pipeline_D89D5944",
        "aws_iam_role_policy.remote_state_bucket",
    },
}

# (check id, fixture dir) -> resources that must PASS that check (and nothing there may fail it).
EXPECTED_PASSES: dict[tuple[str, str], set[str]] = {
    ("CKV_MLP_001", "mlp_001/pass"): {
        "aws_iam_role.pipeline_role_ABC12345",
        "aws_iam_role.training_crossaccount_role_1A2B3C4D",
        "aws_iam_role.cdktf_string_style",
        "aws_iam_role.sagemaker_exec",
    },
    ("CKV_MLP_002", "mlp_002/pass"): {
        "aws_kms_key.training_key_9C0D1E2F",
        "aws_kms_key.pipeline_key",
        "aws_kms_key_policy.pipeline_key_policy",
        "aws_kms_key.shared_store_key_09F06389",
        "aws_kms_key.default_provider_key",
    },
    ("CKV_MLP_003", "mlp_003/pass"): {
        "aws_iam_role.pipeline_role",
        "aws_iam_role.training_crossaccount_role_1A2B3C4D",
        "aws_iam_role_policy.pipeline_permissions",
        "aws_iam_policy.sqs_send",
        "aws_kms_key.cdktf_key_09F06389",
        "aws_s3_bucket_policy.cdktf_data_policy_7676B1B9",
        "aws_iam_role_policy.cdktf_sagemaker_permissions_D89D5944",
    },
    ("CKV_MLP_004", "mlp_004/pass"): {
        "aws_s3_bucket.artifact_bucket_1A2B3C4D",
        "aws_s3_bucket.access_logs",
        "aws_s3_bucket.legacy_inline_sse",
        "aws_s3_bucket.cdktf_data_bucket_DC41F792",
    },
    ("CKV_MLP_005", "mlp_005/pass"): {
        "aws_iam_role.pipeline_role",
        "aws_iam_role_policy_attachment.pipeline_own",
        "aws_iam_role_policy_attachment.lambda_basic",
        "aws_iam_role_policy_attachments_exclusive.pipeline_exclusive",
    },
    ("CKV_MLP_006", "mlp_006/pass"): {
        "aws_iam_role.pipeline_role_ABC12345",
        "aws_iam_role.training_crossaccount_role_1A2B3C4D",
        "aws_kms_key.training_key",
        "aws_s3_bucket_policy.data_bucket_policy",
        "aws_sqs_queue_policy.events",
        "aws_sns_topic_policy.alerts",
        "aws_kms_key.shared_store_key_09F06389",
        "aws_s3_bucket_policy.shared_store_data_policy_7676B1B9",
    },
    ("CKV_MLP_007", "mlp_007/pass"): {
        "aws_kms_key.artifacts",
        "aws_iam_role.deployer",
        "aws_iam_role_policy.deployer",
        "aws_iam_policy.no_account_services",
        "aws_iam_user_policy.from_document",
        "aws_iam_group_policy.group_states",
        "aws_iam_role.with_inline",
        "aws_s3_bucket_policy.cdktf_artifacts_policy_7676B1B9",
        "aws_sqs_queue_policy.dlq",
        "aws_sns_topic_policy.alerts",
    },
    ("CKV_MLP_008", "mlp_008/pass"): {
        "aws_iam_role.shared_pipeline",
        "aws_iam_role.training_cross_account",
        "aws_iam_role.production_cross_account",
        "aws_iam_role_policy.shared_pipeline",
        "aws_iam_policy.literal_pinned_accounts",
        "aws_iam_policy.caller_identity_account",
        "aws_iam_user_policy.from_document",
        "aws_iam_group_policy.group_sts_star",
        "aws_iam_role.with_inline",
        "aws_iam_policy.no_assume_role",
    },
    ("CKV_MLP_009", "mlp_009/pass"): {
        "aws_kms_key.shared_artifacts",
        "aws_iam_role.training_sagemaker",
        "aws_iam_role_policy.training_sagemaker",
        "aws_s3_bucket_policy.shared_artifacts",
        "aws_iam_role.with_inline",
        "aws_iam_policy.from_document",
        "aws_kms_key.separate_policy_key",
        "aws_kms_key_policy.separate_policy_key",
        "aws_s3_bucket_policy.shared_access_logs",
        "aws_s3_bucket_policy.by_literal_bucket_name",
    },
}

CHECK_IDS = sorted({check for check, _ in EXPECTED_FAILURES})

Results = dict[tuple[str, str, str], dict[str, Any]]  # (check, dir, resource) -> record


@pytest.fixture(scope="session")
def checkov_results() -> Results:
    """Run checkov once over all fixture directories with only the CKV_MLP checks enabled."""
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    proc = subprocess.run(
        [
            str(CHECKOV),
            "--skip-download",
            "--framework",
            "terraform",
            "--external-checks-dir",
            str(CHECKS_DIR),
            "-d",
            str(FIXTURES),
            "-o",
            "json",
            "-c",
            ",".join(CHECK_IDS),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    results: Results = {}
    for rep in reports:
        for outcome in ("passed_checks", "failed_checks", "skipped_checks"):
            for record in rep["results"][outcome]:
                directory = str(Path(record["file_path"].lstrip("/")).parent)
                key = (record["check_id"], directory, record["resource"])
                assert key not in results, f"duplicate result {key}"
                results[key] = {**record, "outcome": outcome}
    return results


def _outcomes(results: Results, check: str, directory: str) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for (cid, dir_, resource), record in results.items():
        if cid == check and dir_ == directory:
            grouped[record["outcome"]].append(resource)
    return grouped


@pytest.mark.parametrize(("check", "directory"), sorted(EXPECTED_FAILURES))
def test_fail_fixture_is_caught_by_check_id_and_resource(checkov_results: Results, check: str, directory: str) -> None:
    outcomes = _outcomes(checkov_results, check, directory)
    assert set(outcomes["failed_checks"]) == EXPECTED_FAILURES[(check, directory)]
    for resource in outcomes["failed_checks"]:
        assert checkov_results[(check, directory, resource)]["details"], "a failure must say why"


@pytest.mark.parametrize(("check", "directory"), sorted(EXPECTED_PASSES))
def test_pass_fixture_passes(checkov_results: Results, check: str, directory: str) -> None:
    outcomes = _outcomes(checkov_results, check, directory)
    failures = {r: checkov_results[(check, directory, r)]["details"] for r in outcomes["failed_checks"]}
    assert failures == {}
    assert set(outcomes["passed_checks"]) == EXPECTED_PASSES[(check, directory)]


def test_no_check_ever_reports_unknown_or_skips(checkov_results: Results) -> None:
    """Fail-closed: an exception inside a check would surface as neither pass nor fail."""
    seen = {key for key in checkov_results}
    expected = {(c, d, r) for (c, d), rs in EXPECTED_FAILURES.items() for r in rs}
    expected |= {(c, d, r) for (c, d), rs in EXPECTED_PASSES.items() for r in rs}
    assert expected <= seen
    assert not [k for k, v in checkov_results.items() if v["outcome"] == "skipped_checks"]


@pytest.mark.parametrize(
    ("check", "directory", "resource", "needle"),
    [
        ("CKV_MLP_001", "mlp_001/fail", "aws_iam_role.trust_other_account_root", "arn:aws:iam::111111111111:root"),
        ("CKV_MLP_002", "mlp_002/fail", "aws_kms_key.key_root_kms_star", "kms:*"),
        ("CKV_MLP_003", "mlp_003/fail", "aws_iam_role_policy.assume_any_role", "sts:AssumeRole"),
        ("CKV_MLP_004", "mlp_004/fail", "aws_s3_bucket.bucket_aes256_mismatch", "AES256"),
        ("CKV_MLP_005", "mlp_005/fail", "aws_iam_role_policy_attachment.s3_full_access", "AmazonS3FullAccess"),
        ("CKV_MLP_005", "mlp_005/fail", "aws_iam_role.training_role", "AmazonSageMakerFullAccess"),
        ("CKV_MLP_005", "mlp_005/fail", "aws_iam_policy_attachment.lambda_full_access", "AWSLambda_FullAccess"),
        ("CKV_MLP_006", "mlp_006/fail", "aws_iam_role.trust_literal_role_other_account", "222222222222:role"),
        # literal roots judged against the provider's allowed_account_ids
        ("CKV_MLP_002", "mlp_002/fail", "aws_kms_key.key_pinned_other_account_root", "222222222222:root"),
        ("CKV_MLP_002", "mlp_002/fail", "aws_kms_key.key_pinned_own_root_decrypt", "kms:decrypt"),
        ("CKV_MLP_006", "mlp_006/fail", "aws_kms_key.key_pinned_other_account_root", "222222222222:root"),
        ("CKV_MLP_006", "mlp_006/fail", "aws_kms_key.key_pinned_own_root_decrypt", "111111111111:root"),
        # CDKTF shape read from checkov's partially evaluated text: failed for what it grants
        ("CKV_MLP_003", "mlp_003/fail", "aws_iam_role_policy.cdktf_passrole_star_D89D5944", "PassRole"),
        ("CKV_MLP_004", "mlp_004/fail", "aws_s3_bucket.cdktf_bucket_wrong_key_DC41F792", "(b) no Deny"),
        ("CKV_MLP_006", "mlp_006/fail", "aws_s3_bucket_policy.cdktf_bucket_pinned_own_root", "111111111111:root"),
        # wildcard/missing account or region in resource ARNs, named per statement and resource
        ("CKV_MLP_007", "mlp_007/fail", "aws_iam_role_policy.kms_any_account_any_region", "wildcard account '*'"),
        ("CKV_MLP_007", "mlp_007/fail", "aws_iam_role_policy.kms_any_account_any_region", "wildcard region '*'"),
        ("CKV_MLP_007", "mlp_007/fail", "aws_iam_policy.sagemaker_any_account", "(Sid 'DescribeEndpoint')"),
        ("CKV_MLP_007", "mlp_007/fail", "aws_iam_policy.empty_account_lambda", "empty account"),
        ("CKV_MLP_007", "mlp_007/fail", "aws_iam_policy.s3_every_object", "'arn:aws:s3:::*/*'"),
        ("CKV_MLP_007", "mlp_007/fail", "aws_iam_role_policy.cdktf_kms_any_account_D89D5944", "Statement[1]"),
        # AssumeRole outside the pinned accounts
        ("CKV_MLP_008", "mlp_008/fail", "aws_iam_role_policy.other_account_literal", "999999999999:role"),
        ("CKV_MLP_008", "mlp_008/fail", "aws_iam_policy.multi_pinned_account", "not one of the pinned accounts"),
        ("CKV_MLP_008", "mlp_008/fail", "aws_iam_policy.undeclared_role_ref", "not declared in this module"),
        ("CKV_MLP_008", "mlp_008/fail", "aws_iam_role_policy.cdktf_assume_foreign_D89D5944", "(Sid 'AssumeForeign')"),
        # another pipeline's data: which statement, which resource
        ("CKV_MLP_009", "mlp_009/fail", "aws_iam_role_policy.other_pipeline_bucket", "(Sid 'ReadFraudData')"),
        ("CKV_MLP_009", "mlp_009/fail", "aws_iam_role_policy.other_pipeline_bucket", "mlpipe-fraud-artifacts"),
        ("CKV_MLP_009", "mlp_009/fail", "aws_iam_role_policy.bucket_name_pattern", "bucket-name pattern"),
        ("CKV_MLP_009", "mlp_009/fail", "aws_iam_role_policy.kms_star", "KMS resource '*'"),
        ("CKV_MLP_009", "mlp_009/fail", "aws_iam_role_policy.bucket_ref_name_prefix", "extends the bucket name"),
        ("CKV_MLP_009", "mlp_009/fail", "aws_s3_bucket_policy.bucket_policy_other_own_bucket", "attached to"),
        ("CKV_MLP_009", "mlp_009/fail", "aws_iam_role_policy.cdktf_other_pipeline_D89D5944", "(Sid 'ReadFraudModels')"),
    ],
)
def test_original_template_patterns_are_reported_with_reason(
    checkov_results: Results, check: str, directory: str, resource: str, needle: str
) -> None:
    record = checkov_results[(check, directory, resource)]
    assert record["outcome"] == "failed_checks"
    assert needle in " ".join(record["details"])


def test_cdktf_shaped_fixtures_are_read_not_failed_as_unreadable(checkov_results: Results) -> None:
    """The CDKTF-shaped fixtures (checkov hands them over as partially evaluated text such as
    ``''aws_s3_bucket.b.arn'/*'``) must be parsed: a failure there must name a real problem."""
    cdktf = {k: v for k, v in checkov_results.items() if "cdktf" in k[2] or "shared_store" in k[2]}
    assert len(cdktf) >= 10
    unreadable = {k: v["details"] for k, v in cdktf.items() if "cannot evaluate" in " ".join(v.get("details") or [])}
    assert unreadable == {}


# ---- direct tests of the shared parser (no checkov run) -------------------------------------


@pytest.fixture(scope="module")
def common() -> ModuleType:
    """Import checks/common.py the way checkov does: as a top-level module from its file."""
    spec = importlib.util.spec_from_file_location("mlp_checks_common", CHECKS_DIR / "common.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "raw",
    [
        # evaluated by checkov: a dict with the ${} stripped
        [{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "aws_iam_role.r_1A2B.arn"}}]}],
        # unevaluated python-repr form, with checkov's doubled quotes around a reference
        ["${jsonencode({'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': ''aws_iam_role.r_1A2B.arn''}}]})}"],
        # CDKTF JSON-output style with a bare reference
        ['${jsonencode({"Statement" = [{"Effect" = "Allow", "Principal" = {"AWS" = aws_iam_role.r_1A2B.arn}}]})}'],
        # HCL object syntax with an interpolation
        ['jsonencode({Statement = [{Effect = "Allow", Principal = {AWS = "${aws_iam_role.r_1A2B.arn}"}}]})'],
    ],
)
def test_parse_policy_reads_every_shape(common: ModuleType, raw: Any) -> None:
    policy = common.parse_policy(raw)
    (principal,) = common.principals(common.statements(policy)[0])
    assert (principal.value, principal.category) == ("aws_iam_role.r_1A2B.arn", common.ROLE_REF)


# Exactly what checkov 3.3.30 passes for the generated pipeline stack's bucket policy: a
# "false" in a Bool condition stops full evaluation, and each "${ref}/..." is rendered with the
# reference quoted inside the string.
CHECKOV_PARTIAL_TEXT = (
    "jsonencode({'Version': '2012-10-17', 'Statement': [{'Sid': 'DenyInsecureTransport', 'Effect': 'Deny', "
    "'Principal': '*', 'Action': 's3:*', 'Resource': ['aws_s3_bucket.shared_store_data_bucket_DC41F792.arn', "
    "''aws_s3_bucket.shared_store_data_bucket_DC41F792.arn'/*'], 'Condition': {'Bool': {'aws:SecureTransport': "
    "'False'}}}, {'Sid': 'AllowTrainingListData', 'Effect': 'Allow', 'Principal': {'AWS': "
    "['aws_iam_role.training_roles_sagemaker_64AB0DCF.arn', ''aws_iam_role.other_1A.arn'']}, 'Action': "
    "'s3:ListBucket', 'Resource': ''aws_s3_bucket.shared_store_data_bucket_DC41F792.arn'', 'Condition': "
    "{'StringLike': {'s3:prefix': ['data/*', 'models/*']}}}, {'Sid': 'Mid', 'Effect': 'Allow', 'Principal': "
    "{'AWS': 'arn:aws:iam::'data.aws_caller_identity.c.account_id':root'}, 'Action': 's3:GetObject', "
    "'Resource': ''aws_s3_bucket.b.arn'/'aws_iam_role.r.name'/*'}]})"
)


def test_parse_policy_reads_checkov_partially_evaluated_text(common: ModuleType) -> None:
    bucket = "aws_s3_bucket.shared_store_data_bucket_DC41F792.arn"
    deny, allow, mid = common.statements(common.parse_policy([CHECKOV_PARTIAL_TEXT]))
    assert deny["Resource"] == [bucket, f"{bucket}/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "False"}}
    assert allow["Resource"] == bucket
    assert [p.value for p in common.principals(allow)] == [
        "aws_iam_role.training_roles_sagemaker_64AB0DCF.arn",
        "aws_iam_role.other_1A.arn",
    ]
    assert mid["Principal"] == {"AWS": "arn:aws:iam::data.aws_caller_identity.c.account_id:root"}
    assert mid["Resource"] == "aws_s3_bucket.b.arn/aws_iam_role.r.name/*"


@pytest.mark.parametrize(
    "text",
    [
        "{'Resource': ['a' 'b']}",  # list items without a comma
        "{'Effect': 'Allow' 'Action': '*'}",  # object items without a comma on one line
        "{'Resource': 'x'aws_s3_bucket.b.arn}",  # reference glued to a string, not closed
        "{'Resource': ''aws_s3_bucket.b.arn'/*' 'y'}",  # trailing string after the chain
        "{'Effect': 'Allow', 'Effect': 'Deny'}",  # duplicate key: which one applies?
        "{'Resource': [a.b, , c.d]}",
        "{'Resource': upper(aws_s3_bucket.b.arn)}",
    ],
)
def test_parse_literal_is_strict(common: ModuleType, text: str) -> None:
    with pytest.raises(common.PolicyParseError):
        common.parse_literal(text)


def _provider_vertex(alias: str | None, allowed: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"region": ["eu-west-1"]}
    if alias is not None:
        conf["alias"] = [alias]
    if allowed is not None:
        conf["allowed_account_ids"] = allowed
    return {"block_type_": "provider", "config_": {"aws": conf}}


@pytest.mark.parametrize(
    ("vertices", "provider", "account"),
    [
        ([_provider_vertex("shared", [[111111111111]])], "aws.shared", "111111111111"),
        ([_provider_vertex("shared", [["012345678901"]])], "aws.shared", "012345678901"),
        ([_provider_vertex(None, [["111111111111"]])], "aws", "111111111111"),
        ([_provider_vertex(None, [["111111111111"]])], "aws.shared", None),
        ([_provider_vertex("shared", [["111111111111"]])], "aws", None),
        ([_provider_vertex("shared", [["111111111111", "222222222222"]])], "aws.shared", None),
        ([_provider_vertex("shared", ["var.accounts"])], "aws.shared", None),
        ([_provider_vertex("shared", [[11111111111]])], "aws.shared", None),
        ([_provider_vertex("shared", None)], "aws.shared", None),
        (
            [_provider_vertex("shared", [[111111111111]]), _provider_vertex("shared", [[111111111111]])],
            "aws.shared",
            None,
        ),
        ([], "aws", None),
    ],
)
def test_provider_account(
    common: ModuleType, vertices: list[dict[str, Any]], provider: str, account: str | None
) -> None:
    assert common.provider_account(vertices, provider) == account


@pytest.mark.parametrize(
    ("value", "provider", "own"),
    [
        ("arn:aws:iam::111111111111:root", "aws.shared", True),
        ("arn:aws:iam::222222222222:root", "aws.shared", False),
        ("arn:aws:iam::111111111111:root", "aws.training", False),
        ("111111111111", "aws.shared", False),
        ("arn:aws:iam::111111111111:role/r", "aws.shared", False),
    ],
)
def test_literal_root_is_own_only_for_the_pinned_account(
    common: ModuleType, value: str, provider: str, own: bool
) -> None:
    graph = [_provider_vertex("shared", [[111111111111]]), _provider_vertex("training", None)]
    assert common.is_own_root(graph, value, provider) is own


@pytest.mark.parametrize(
    "raw",
    [
        None,
        ["var.policy"],
        ["jsonencode(local.p)"],
        ['file("p.json")'],
        ["data.aws_iam_policy_document.d.json"],
        [{"Version": "2012-10-17"}],
        ['{"Statement": [1]}'],
    ],
)
def test_parse_policy_fails_closed(common: ModuleType, raw: Any) -> None:
    with pytest.raises(common.PolicyParseError):
        common.parse_policy(raw)


@pytest.mark.parametrize(
    ("value", "category"),
    [
        ("*", "wildcard"),
        ("123456789012", "root"),
        ("arn:aws:iam::123456789012:root", "root"),
        ("arn:aws:iam::data.aws_caller_identity.c.account_id:root", "root"),
        ("aws_iam_role.training_crossaccount_role_1A2B3C4D.arn", "role_ref"),
        ("arn:aws:iam::222222222222:role/anything", "role_arn"),
        ("arn:aws:iam::*:role/*", "role_wildcard"),
        ("arn:aws:iam::222222222222:user/u", "user"),
        ("var.principal", "other"),
    ],
)
def test_classify_aws_principal(common: ModuleType, value: str, category: str) -> None:
    assert common.classify_aws(value) == category


@pytest.mark.parametrize(
    ("actions", "admin_only"),
    [
        (["kms:Create*", "kms:Describe*", "kms:ScheduleKeyDeletion"], True),
        (["kms:DescribeKey", "kms:PutKeyPolicy"], True),
        (["kms:*"], False),
        (["kms:Describe*", "kms:Decrypt"], False),
        (["kms:Re*"], False),
        (["kms:GetPublicKey"], True),
    ],
)
def test_kms_admin_rule(common: ModuleType, actions: list[str], admin_only: bool) -> None:
    assert common.is_kms_admin_only({"Action": actions}) is admin_only


@pytest.mark.parametrize(
    ("vertices", "accounts"),
    [
        (
            [_provider_vertex("shared", [["111111111111"]]), _provider_vertex("training", [[222222222222]])],
            {"111111111111", "222222222222"},
        ),
        ([_provider_vertex(None, [["111111111111"]]), _provider_vertex("training", None)], {"111111111111"}),
        ([_provider_vertex("multi", [["111111111111", "222222222222"]])], set()),
        ([_provider_vertex("shared", ["var.accounts"]), _provider_vertex("training", None)], set()),
        ([], set()),
    ],
)
def test_pinned_accounts_are_only_the_provable_ones(
    common: ModuleType, vertices: list[dict[str, Any]], accounts: set[str]
) -> None:
    assert common.pinned_accounts(vertices) == accounts


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        ("arn:aws:s3:::bucket/a:b", ("aws", "s3", "", "", "bucket/a:b")),
        (
            "arn:aws:logs:eu-west-1:111111111111:log-group:/x:*",
            ("aws", "logs", "eu-west-1", "111111111111", "log-group:/x:*"),
        ),
        ("arn:aws:iam::data.c.account_id:root", ("aws", "iam", "", "data.c.account_id", "root")),
        ("arn:aws:kms:eu-west-1", None),
        ("aws_kms_key.k.arn", None),
    ],
)
def test_parse_arn(common: ModuleType, value: str, fields: tuple[str, ...] | None) -> None:
    arn = common.parse_arn(value)
    assert (arn and (arn.partition, arn.service, arn.region, arn.account, arn.resource)) == fields


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("aws_s3_bucket.b_1A.arn/data/*", (False, "aws_s3_bucket", "b_1A", "arn", "/data/*")),
        ("aws_s3_bucket.b[0].arn", (False, "aws_s3_bucket", "b", "arn", "")),
        ("data.aws_s3_bucket.b.arn", (True, "aws_s3_bucket", "b", "arn", "")),
        ("aws_cloudwatch_log_group.g.arn:*", (False, "aws_cloudwatch_log_group", "g", "arn", ":*")),
        ("var.bucket_arn", None),
        ("local.x.y", None),
        ("arn:aws:s3:::b", None),
    ],
)
def test_parse_reference(common: ModuleType, value: str, parts: tuple[Any, ...] | None) -> None:
    ref = common.parse_reference(value)
    assert (ref and (ref.data, ref.type, ref.name, ref.attr, ref.rest)) == parts


@pytest.mark.parametrize(
    ("stmt", "service", "covered"),
    [
        ({"Action": "s3:GetObject"}, "s3", True),
        ({"Action": ["S3:*"]}, "s3", True),
        ({"Action": "*"}, "kms", True),
        ({"Action": "s?:Get*"}, "s3", True),
        ({"Action": "s3*"}, "s3", True),
        ({"Action": "s3-object-lambda:GetObject"}, "s3", False),
        ({"Action": ["sqs:SendMessage", "kms:Decrypt"]}, "s3", False),
        ({"NotAction": "iam:*"}, "s3", True),
    ],
)
def test_covers_service(common: ModuleType, stmt: dict[str, Any], service: str, covered: bool) -> None:
    assert common.covers_service(stmt, service) is covered


@pytest.fixture(scope="module")
def mlp_007() -> ModuleType:
    """The CKV_MLP_007 check module, imported as a package member (its ``from . import common``)."""
    return importlib.import_module("mlpipe.gate.checks.mlp_007_arn_wildcard_account_region")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("arn:aws:kms:*:*:key/*", "wildcard account"),
        ("arn:aws:sagemaker:eu-west-1:*:endpoint/x", "wildcard account"),
        ("arn:aws:states:*:111111111111:stateMachine:x", "wildcard region"),
        ("arn:aws:lambda:eu-west-1::function:x", "empty account"),
        ("arn:aws:s3:::*", "names every bucket"),
        ("arn:aws:s3:::?*/data/*", "names every bucket"),
        ("arn:aws:s3:eu-west-1::accesspoint/x", "empty account"),
        ("arn:*", "spans"),
        ("arn:aws:kms:eu-west-1", "not a complete ARN"),
        ("arn:aws:s3:::mlpipe-*", None),
        ("arn:aws:iam::aws:policy/ReadOnlyAccess", None),
        ("arn:aws:iam::111111111111:role/x", None),
        ("arn:aws:route53:::hostedzone/Z1", None),
        ("arn:aws:ec2:eu-west-1::image/ami-1", None),
        ("arn:aws:lambda:eu-west-1:data.aws_caller_identity.c.account_id:function:x", None),
        ("*", None),
        ("aws_kms_key.k.arn", None),
    ],
)
def test_arn_account_and_region_rule(mlp_007: ModuleType, value: str, problem: str | None) -> None:
    problems = mlp_007.arn_problems(value)
    if problem is None:
        assert problems == []
    else:
        assert problem in " ".join(problems)


@pytest.mark.parametrize(
    ("vertices", "needle"),
    [
        ([_provider_vertex("shared", None), _provider_vertex(None, ["var.accounts"])], "no provider of this module"),
        ([_provider_vertex("shared", [["222222222222"]])], "not one of the pinned accounts ['222222222222']"),
    ],
)
def test_assume_role_literal_needs_a_pinned_provider(vertices: list[dict[str, Any]], needle: str) -> None:
    """A literal role ARN fails when no provider of the module is pinned to its account (fail-closed)."""
    module = importlib.import_module("mlpipe.gate.checks.mlp_008_assume_role_own_accounts")
    check = module.AssumeRoleOwnAccounts()
    check.entity_type, check.scope = "aws_iam_policy", vertices
    stmt = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::111111111111:role/x"}
    problems = check.evaluate({"policy": [{"Statement": [stmt]}]})
    assert len(problems) == 1 and needle in problems[0]
