"""Tests for mlpipe.gate.policy_lint: parliament catches what checkov's CKV_MLP checks cannot."""

from __future__ import annotations

from typing import Any

import pytest

from mlpipe.gate.policy_lint import ALLOW_LIST, LintFinding, lint_policies, lint_policy


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_misspelled_action_is_caught() -> None:
    findings = lint_policy(
        "read", _doc({"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::data/*"})
    )
    assert [(f.issue, f.detail) for f in findings] == [("UNKNOWN_ACTION", "Unknown action s3:GetObjekt")]
    assert findings[0].policy == "read"
    assert findings[0].severity  # parliament's config gives every issue a severity


def test_action_on_wrong_resource_type_is_caught() -> None:
    findings = lint_policy("read", _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data"}))
    assert [f.issue for f in findings] == ["RESOURCE_MISMATCH"]
    assert "s3:GetObject" in findings[0].detail


def test_clean_identity_policy_has_no_findings() -> None:
    doc = _doc(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::data/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::data"},
    )
    assert lint_policy("clean", doc) == []


def test_terraform_references_and_resource_policy_elements_are_allow_listed() -> None:
    key_policy = _doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "${aws_iam_role.training_crossaccount_role_1A2B3C4D.arn}"},
            "Action": ["kms:Decrypt"],
            "Resource": "*",
        }
    )
    trust_policy = _doc({"Effect": "Allow", "Principal": {"AWS": "${TfToken[TOKEN.12]}"}, "Action": "sts:AssumeRole"})
    bucket_policy = _doc(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": "${aws_s3_bucket.data.arn}/*",
            "Condition": {
                "StringNotEquals": {
                    "s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:eu-west-1:111111111111:key/k"
                }
            },
        }
    )
    assert lint_policies({"key": key_policy, "trust": trust_policy, "bucket": bucket_policy}) == []


def test_allow_list_does_not_hide_real_problems_in_resource_policies() -> None:
    findings = lint_policy(
        "bucket",
        _doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "aws_iam_role.x.arn"},
                "Action": "s3:GetObjekt",
                "Resource": "arn:aws:s3:::data/*",
            }
        ),
    )
    assert [f.issue for f in findings] == ["UNKNOWN_ACTION"]


def test_identity_policy_resource_star_is_not_allow_listed() -> None:
    findings = lint_policy("pass", _doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}))
    assert "RESOURCE_STAR" in {f.issue for f in findings}


def test_lint_policies_orders_by_name_and_findings_are_frozen() -> None:
    bad = _doc({"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::d/*"})
    findings = lint_policies({"b": bad, "a": bad})
    assert [f.policy for f in findings] == ["a", "b"]
    with pytest.raises(AttributeError):
        findings[0].issue = "x"  # type: ignore[misc]
    assert isinstance(findings[0], LintFinding)


def test_every_allow_list_entry_has_a_reason() -> None:
    assert all(len(entry.reason) > 30 for entry in ALLOW_LIST)
