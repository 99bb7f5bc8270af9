"""Known AWS authorization decisions, one row each, against the access evaluator.

Each row: the policies that apply, the call, the outcome AWS gives and the statements that decide it. Accounts:
DEV (111111111111) trains, PROD (222222222222) deploys.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlpipe.gate.access.evaluator import Call, Decision, Document, Outcome, PolicySet, evaluate

DEV, PROD = "111111111111", "222222222222"
DEV_ROOT, PROD_ROOT = f"arn:aws:iam::{DEV}:root", f"arn:aws:iam::{PROD}:root"
TRAIN = f"arn:aws:iam::{DEV}:role/training"
OTHER = f"arn:aws:iam::{DEV}:role/other"
DEPLOY = f"arn:aws:iam::{PROD}:role/deployer"
SM_ROLE = f"arn:aws:iam::{DEV}:role/sagemaker-exec"
SFN_ROLE = f"arn:aws:iam::{DEV}:role/pipeline-sfn"
PROD_ROLE = f"arn:aws:iam::{PROD}:role/cross-account-deploy"
BUCKET = "arn:aws:s3:::ml-artifacts"
OBJ = f"{BUCKET}/models/m.tar.gz"
KEY = f"arn:aws:kms:eu-west-1:{DEV}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LOG_GROUP = f"arn:aws:logs:eu-west-1:{DEV}:log-group"
STATE_MACHINE = f"arn:aws:states:eu-west-1:{DEV}:stateMachine:pipeline"
TRAINING_JOB = f"arn:aws:sagemaker:eu-west-1:{DEV}:training-job/job-1"

ALLOWED, EXPLICIT, IMPLICIT, UNDECIDABLE = (
    Outcome.ALLOWED,
    Outcome.EXPLICIT_DENY,
    Outcome.IMPLICIT_DENY,
    Outcome.UNDECIDABLE,
)


def st(sid: str, effect: str = "Allow", **elements: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": effect, **elements}


def doc(name: str, *statements: dict[str, Any]) -> Document:
    return Document(name, {"Version": "2012-10-17", "Statement": list(statements)})


def s3(
    principal: str,
    action: str = "s3:GetObject",
    resource: str = OBJ,
    account: str = DEV,
    ctx: dict[str, Any] | None = None,
) -> Call:
    return Call(principal, action, resource, context=ctx or {}, resource_account=account)


def allow_all(name: str = "admin") -> Document:
    return doc(name, st("All", Action="*", Resource="*"))


def guarded(condition: dict[str, Any], effect: str = "Allow") -> Document:
    """An identity policy whose only statement ("If") covers everything under ``condition``."""
    return doc("guarded", st("If", effect, Action="*", Resource="*", Condition=condition))


# Documents reused across rows.
ID_READ = doc("training_s3", st("ReadModels", Action="s3:GetObject", Resource=f"{BUCKET}/models/*"))
ID_DEPLOY_READ = doc("deployer_s3", st("ReadArtifacts", Action="s3:GetObject", Resource=f"{BUCKET}/*"))
ID_KMS = doc("training_kms", st("UseKey", Action=["kms:Decrypt", "kms:GenerateDataKey"], Resource=KEY))
ID_DEPLOY_KMS = doc("deployer_kms", st("UseDevKey", Action="kms:Decrypt", Resource=KEY))
ID_ASSUME = doc("training_assume", st("AssumeDeploy", Action="sts:AssumeRole", Resource=PROD_ROLE))
ID_PASS = doc(
    "training_passrole",
    st(
        "PassToSageMaker",
        Action="iam:PassRole",
        Resource=SM_ROLE,
        Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    ),
)


def bucket(*statements: dict[str, Any]) -> dict[str, Document]:
    return {BUCKET: doc("artifacts_bucket", *statements)}


def bucket_grant(principal: Any, sid: str = "Grant", action: str = "s3:GetObject") -> dict[str, Any]:
    return st(sid, Principal=principal, Action=action, Resource=f"{BUCKET}/*")


def key_policy(*statements: dict[str, Any]) -> dict[str, Document]:
    return {KEY: doc("dev_key", *statements)}


def key_grant(principal: Any, sid: str) -> dict[str, Any]:
    return st(sid, Principal=principal, Action="kms:*", Resource="*")


def trust(role: str, principal: Any, sid: str = "Trust", **extra: Any) -> dict[str, Document]:
    return {role: doc("trust", st(sid, Principal=principal, Action="sts:AssumeRole", **extra))}


SSE_DENY = st(
    "DenyUnencrypted",
    "Deny",
    Principal="*",
    Action="s3:PutObject",
    Resource=f"{BUCKET}/*",
    Condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
)
TLS_DENY = st(
    "DenyInsecure",
    "Deny",
    Principal="*",
    Action="s3:*",
    Resource=[BUCKET, f"{BUCKET}/*"],
    Condition={"Bool": {"aws:SecureTransport": "false"}},
)
SFN_TRUST = trust(
    SFN_ROLE,
    {"Service": "states.amazonaws.com"},
    "StatesAssume",
    Condition={"StringEquals": {"aws:SourceAccount": DEV}},
)
VIA_SERVICES_ONLY = st(
    "OnlyViaServices",
    "Deny",
    Principal="*",
    Action="kms:*",
    Resource="*",
    Condition={
        "StringNotEquals": {"kms:ViaService": ["s3.eu-west-1.amazonaws.com", "sagemaker.eu-west-1.amazonaws.com"]}
    },
)
LOGS_KEY = key_policy(
    st(
        "AllowLogs",
        Principal={"Service": "logs.eu-west-1.amazonaws.com"},
        Action=["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"],
        Resource="*",
        Condition={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:eu-west-1:{DEV}:log-group:*"}},
    )
)


def add_tags(tag_keys: list[str] | None) -> Call:
    return Call(TRAIN, "sagemaker:AddTags", TRAINING_JOB, context={} if tag_keys is None else {"aws:TagKeys": tag_keys})


def row(
    name: str,
    call: Call,
    expected: Outcome,
    deciding: list[tuple[str, str]] | None = None,
    *,
    identity: dict[str, list[Document]] | None = None,
    resource: dict[str, Document] | None = None,
    text: str | None = None,
) -> Any:
    """One known decision; ``text`` must appear in a missing line (implicit deny) or in the reason (otherwise)."""
    return pytest.param(PolicySet(identity or {}, resource or {}), call, expected, deciding or [], text, id=name)


CASES = [
    # --- same account: identity OR resource policy ---
    row(
        "same_account_identity_allow", s3(TRAIN), ALLOWED, [("training_s3", "ReadModels")], identity={TRAIN: [ID_READ]}
    ),
    row(
        "same_account_identity_other_prefix",
        s3(TRAIN, resource=f"{BUCKET}/data/x.csv"),
        IMPLICIT,
        identity={TRAIN: [ID_READ]},
        text=f"no statement in the identity policies of {TRAIN} allows s3:GetObject",
    ),
    row(
        "same_account_bucket_policy_names_role",
        s3(TRAIN),
        ALLOWED,
        [("artifacts_bucket", "Grant")],
        resource=bucket(bucket_grant({"AWS": TRAIN})),
    ),
    row(
        "same_account_bucket_policy_names_other_role",
        s3(TRAIN),
        IMPLICIT,
        resource=bucket(bucket_grant({"AWS": OTHER})),
        text=f"bucket policy of {BUCKET} does not allow {TRAIN}",
    ),
    row(
        "same_account_bucket_root_only_delegates",
        s3(TRAIN),
        IMPLICIT,
        resource=bucket(bucket_grant({"AWS": DEV_ROOT})),
        text="identity policies are registered",
    ),
    row(
        "same_account_bucket_root_plus_identity",
        s3(TRAIN),
        ALLOWED,
        [("training_s3", "ReadModels")],
        identity={TRAIN: [ID_READ]},
        resource=bucket(bucket_grant({"AWS": DEV_ROOT})),
    ),
    row(
        "same_account_both_sides_allow",
        s3(TRAIN),
        ALLOWED,
        [("training_s3", "ReadModels"), ("artifacts_bucket", "Grant")],
        identity={TRAIN: [ID_READ]},
        resource=bucket(bucket_grant({"AWS": [OTHER, TRAIN]})),
    ),
    row(
        "same_account_public_bucket_statement",
        s3(TRAIN),
        ALLOWED,
        [("artifacts_bucket", "Grant")],
        resource=bucket(bucket_grant("*")),
    ),
    # --- same account, KMS: the key policy must allow ---
    row(
        "kms_identity_alone_no_key_policy",
        Call(TRAIN, "kms:Decrypt", KEY),
        IMPLICIT,
        identity={TRAIN: [ID_KMS]},
        text=f"no key policy of {KEY} is registered",
    ),
    row(
        "kms_identity_alone_key_policy_silent",
        Call(TRAIN, "kms:Decrypt", KEY),
        IMPLICIT,
        identity={TRAIN: [ID_KMS]},
        resource=key_policy(key_grant({"AWS": OTHER}, "Other")),
        text=f"key policy of {KEY} does not allow {TRAIN} or delegate to its account {DEV}",
    ),
    row(
        "kms_key_policy_direct_without_identity",
        Call(TRAIN, "kms:Decrypt", KEY),
        ALLOWED,
        [("dev_key", "Training")],
        resource=key_policy(key_grant({"AWS": TRAIN}, "Training")),
    ),
    row(
        "kms_root_delegation_plus_identity",
        Call(TRAIN, "kms:GenerateDataKey", KEY),
        ALLOWED,
        [("dev_key", "EnableIam"), ("training_kms", "UseKey")],
        identity={TRAIN: [ID_KMS]},
        resource=key_policy(key_grant({"AWS": DEV_ROOT}, "EnableIam")),
    ),
    row(
        "kms_bare_account_id_delegation_plus_identity",
        Call(TRAIN, "kms:Decrypt", KEY),
        ALLOWED,
        [("dev_key", "EnableIam"), ("training_kms", "UseKey")],
        identity={TRAIN: [ID_KMS]},
        resource=key_policy(key_grant({"AWS": DEV}, "EnableIam")),
    ),
    row(
        "kms_root_delegation_without_identity",
        Call(TRAIN, "kms:Decrypt", KEY),
        IMPLICIT,
        resource=key_policy(key_grant({"AWS": DEV_ROOT}, "EnableIam")),
        text=f"only delegates to account {DEV}",
    ),
    row(
        "kms_root_delegation_identity_other_action",
        Call(TRAIN, "kms:Encrypt", KEY),
        IMPLICIT,
        identity={TRAIN: [ID_KMS]},
        resource=key_policy(key_grant({"AWS": DEV_ROOT}, "EnableIam")),
    ),
    row(
        "kms_action_without_resource_is_identity_only",
        Call(TRAIN, "kms:ListKeys", "*"),
        ALLOWED,
        [("kms_list", "List")],
        identity={TRAIN: [doc("kms_list", st("List", Action="kms:ListKeys", Resource="*"))]},
    ),
    # --- cross account: identity AND resource policy ---
    row(
        "cross_s3_both_sides",
        s3(DEPLOY),
        ALLOWED,
        [("deployer_s3", "ReadArtifacts"), ("artifacts_bucket", "Grant")],
        identity={DEPLOY: [ID_DEPLOY_READ]},
        resource=bucket(bucket_grant({"AWS": DEPLOY})),
    ),
    row(
        "cross_s3_bucket_only",
        s3(DEPLOY),
        IMPLICIT,
        resource=bucket(bucket_grant({"AWS": DEPLOY})),
        text=f"no identity policies are registered for {DEPLOY}",
    ),
    row(
        "cross_s3_identity_only",
        s3(DEPLOY),
        IMPLICIT,
        identity={DEPLOY: [ID_DEPLOY_READ]},
        resource=bucket(bucket_grant({"AWS": TRAIN})),
        text=f"the bucket policy of {BUCKET} does not allow {DEPLOY} or its account {PROD}",
    ),
    row(
        "cross_s3_no_bucket_policy",
        s3(DEPLOY),
        IMPLICIT,
        identity={DEPLOY: [ID_DEPLOY_READ]},
        text=f"no bucket policy of {BUCKET} is registered",
    ),
    row(
        "cross_s3_bucket_names_caller_account",
        s3(DEPLOY),
        ALLOWED,
        [("deployer_s3", "ReadArtifacts"), ("artifacts_bucket", "Grant")],
        identity={DEPLOY: [ID_DEPLOY_READ]},
        resource=bucket(bucket_grant({"AWS": PROD_ROOT})),
    ),
    row(
        "cross_s3_bucket_star_still_needs_identity",
        s3(DEPLOY),
        IMPLICIT,
        resource=bucket(bucket_grant({"AWS": "*"})),
        text="cross-account access needs it",
    ),
    row(
        "s3_resource_account_unknown",
        Call(DEPLOY, "s3:GetObject", OBJ),
        UNDECIDABLE,
        identity={DEPLOY: [ID_DEPLOY_READ]},
        resource=bucket(bucket_grant({"AWS": DEPLOY})),
        text="resource_account",
    ),
    row(
        "resource_account_contradicts_arn",
        Call(DEPLOY, "kms:Decrypt", KEY, resource_account=PROD),
        UNDECIDABLE,
        identity={DEPLOY: [ID_DEPLOY_KMS]},
        resource=key_policy(key_grant({"AWS": DEPLOY}, "Prod")),
        text="contradicts",
    ),
    row(
        "cross_kms_both_sides",
        Call(DEPLOY, "kms:Decrypt", KEY),
        ALLOWED,
        [("deployer_kms", "UseDevKey"), ("dev_key", "Prod")],
        identity={DEPLOY: [ID_DEPLOY_KMS]},
        resource=key_policy(key_grant({"AWS": PROD_ROOT}, "Prod")),
    ),
    row(
        "cross_kms_key_policy_names_role_without_identity",
        Call(DEPLOY, "kms:Decrypt", KEY),
        IMPLICIT,
        resource=key_policy(key_grant({"AWS": DEPLOY}, "Prod")),
        text=f"identity policies are registered for {DEPLOY}",
    ),
    row(
        "cross_kms_key_policy_only_own_account",
        Call(DEPLOY, "kms:Decrypt", KEY),
        IMPLICIT,
        identity={DEPLOY: [ID_DEPLOY_KMS]},
        resource=key_policy(key_grant({"AWS": DEV_ROOT}, "EnableIam")),
        text=f"the key policy of {KEY} does not allow {DEPLOY} or its account {PROD}",
    ),
    row(
        "cross_step_functions_has_no_resource_policy",
        Call(DEPLOY, "states:StartExecution", STATE_MACHINE),
        IMPLICIT,
        identity={DEPLOY: [allow_all()]},
        text="has no resource-based policy in AWS",
    ),
    row(
        "cross_sagemaker_endpoint_has_no_resource_policy",
        Call(DEPLOY, "sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:eu-west-1:{DEV}:endpoint/model"),
        IMPLICIT,
        identity={DEPLOY: [allow_all()]},
        text="has no resource-based policy in AWS",
    ),
    row(
        "policy_registered_for_state_machine",
        Call(TRAIN, "states:StartExecution", STATE_MACHINE),
        UNDECIDABLE,
        identity={TRAIN: [allow_all()]},
        resource={STATE_MACHINE: doc("bogus", st("X", Principal="*", Action="*"))},
        text="whose type has none in AWS",
    ),
    row(
        "cross_model_package_group_with_resource_policy",
        Call(DEPLOY, "sagemaker:DescribeModelPackage", f"arn:aws:sagemaker:eu-west-1:{DEV}:model-package-group/g"),
        ALLOWED,
        [("admin", "All"), ("registry", "Prod")],
        identity={DEPLOY: [allow_all()]},
        resource={
            f"arn:aws:sagemaker:eu-west-1:{DEV}:model-package-group/g": doc(
                "registry", st("Prod", Principal={"AWS": PROD_ROOT}, Action="sagemaker:Describe*")
            )
        },
    ),
    # --- explicit deny in a bucket policy with Principal "*" ---
    row(
        "sse_present_and_wrong_denied",
        s3(TRAIN, "s3:PutObject", ctx={"s3:x-amz-server-side-encryption": "AES256"}),
        EXPLICIT,
        [("artifacts_bucket", "DenyUnencrypted")],
        resource=bucket(bucket_grant({"AWS": TRAIN}, "Write", "s3:PutObject"), SSE_DENY),
    ),
    row(
        "sse_present_and_right_allowed",
        s3(TRAIN, "s3:PutObject", ctx={"s3:x-amz-server-side-encryption": "aws:kms"}),
        ALLOWED,
        [("artifacts_bucket", "Write")],
        resource=bucket(bucket_grant({"AWS": TRAIN}, "Write", "s3:PutObject"), SSE_DENY),
    ),
    row(
        "sse_absent_denied_negated_operator_is_true",
        s3(TRAIN, "s3:PutObject"),
        EXPLICIT,
        [("artifacts_bucket", "DenyUnencrypted")],
        resource=bucket(bucket_grant({"AWS": TRAIN}, "Write", "s3:PutObject"), SSE_DENY),
    ),
    row(
        "sse_value_is_case_sensitive",
        s3(TRAIN, "s3:PutObject", ctx={"s3:x-amz-server-side-encryption": "AWS:KMS"}),
        EXPLICIT,
        [("artifacts_bucket", "DenyUnencrypted")],
        resource=bucket(bucket_grant({"AWS": TRAIN}, "Write", "s3:PutObject"), SSE_DENY),
    ),
    row(
        "condition_key_name_is_case_insensitive",
        Call(TRAIN, "s3:PutObject", OBJ, {"S3:X-Amz-Server-Side-Encryption": "aws:kms"}, resource_account=DEV),
        ALLOWED,
        [("artifacts_bucket", "Write")],
        resource=bucket(bucket_grant({"AWS": TRAIN}, "Write", "s3:PutObject"), SSE_DENY),
    ),
    row(
        "deny_applies_to_cross_account_caller_too",
        s3(DEPLOY, "s3:PutObject", account=DEV, ctx={"s3:x-amz-server-side-encryption": "AES256"}),
        EXPLICIT,
        [("artifacts_bucket", "DenyUnencrypted")],
        identity={DEPLOY: [allow_all()]},
        resource=bucket(bucket_grant({"AWS": DEPLOY}, "Write", "s3:PutObject"), SSE_DENY),
    ),
    row(
        "secure_transport_false_denied",
        s3(TRAIN, ctx={"aws:SecureTransport": False}),
        EXPLICIT,
        [("artifacts_bucket", "DenyInsecure")],
        resource=bucket(bucket_grant({"AWS": TRAIN}), TLS_DENY),
    ),
    row(
        "secure_transport_true_allowed",
        s3(TRAIN, ctx={"aws:SecureTransport": True}),
        ALLOWED,
        [("artifacts_bucket", "Grant")],
        resource=bucket(bucket_grant({"AWS": TRAIN}), TLS_DENY),
    ),
    row(
        "secure_transport_absent_bool_is_false",
        s3(TRAIN),
        ALLOWED,
        [("artifacts_bucket", "Grant")],
        resource=bucket(bucket_grant({"AWS": TRAIN}), TLS_DENY),
    ),
    row(
        "identity_deny_beats_bucket_allow",
        s3(TRAIN),
        EXPLICIT,
        [("training_s3", "NoArtifacts")],
        identity={TRAIN: [doc("training_s3", st("NoArtifacts", "Deny", Action="s3:*", Resource=f"{BUCKET}/*"))]},
        resource=bucket(bucket_grant({"AWS": TRAIN})),
    ),
    row(
        "bucket_deny_naming_account_applies_to_its_roles",
        s3(TRAIN),
        EXPLICIT,
        [("artifacts_bucket", "DenyDev")],
        identity={TRAIN: [ID_READ]},
        resource=bucket(st("DenyDev", "Deny", Principal={"AWS": DEV}, Action="s3:*", Resource=f"{BUCKET}/*")),
    ),
    # --- sts:AssumeRole: the trust policy is the resource policy ---
    row(
        "assume_cross_trust_names_role_plus_identity",
        Call(TRAIN, "sts:AssumeRole", PROD_ROLE),
        ALLOWED,
        [("training_assume", "AssumeDeploy"), ("trust", "Trust")],
        identity={TRAIN: [ID_ASSUME]},
        resource=trust(PROD_ROLE, {"AWS": TRAIN}),
    ),
    row(
        "assume_cross_trust_names_role_without_identity",
        Call(TRAIN, "sts:AssumeRole", PROD_ROLE),
        IMPLICIT,
        resource=trust(PROD_ROLE, {"AWS": TRAIN}),
        text="cross-account access needs it",
    ),
    row(
        "assume_cross_trust_names_other_role",
        Call(TRAIN, "sts:AssumeRole", PROD_ROLE),
        IMPLICIT,
        identity={TRAIN: [ID_ASSUME]},
        resource=trust(PROD_ROLE, {"AWS": OTHER}),
        text=f"the trust policy of {PROD_ROLE} does not allow {TRAIN}",
    ),
    row(
        "assume_cross_trust_names_account_root_plus_identity",
        Call(TRAIN, "sts:AssumeRole", PROD_ROLE),
        ALLOWED,
        [("training_assume", "AssumeDeploy"), ("trust", "Trust")],
        identity={TRAIN: [ID_ASSUME]},
        resource=trust(PROD_ROLE, {"AWS": DEV_ROOT}),
    ),
    row(
        "assume_cross_trust_names_account_root_without_identity",
        Call(TRAIN, "sts:AssumeRole", PROD_ROLE),
        IMPLICIT,
        identity={TRAIN: [ID_READ]},
        resource=trust(PROD_ROLE, {"AWS": DEV_ROOT}),
    ),
    row(
        "assume_same_account_trust_names_role_is_enough",
        Call(TRAIN, "sts:AssumeRole", SM_ROLE),
        ALLOWED,
        [("trust", "Trust")],
        resource=trust(SM_ROLE, {"AWS": TRAIN}),
    ),
    row(
        "assume_same_account_trust_root_needs_identity",
        Call(TRAIN, "sts:AssumeRole", SM_ROLE),
        IMPLICIT,
        resource=trust(SM_ROLE, {"AWS": DEV_ROOT}),
        text=f"only delegates to account {DEV}",
    ),
    row(
        "assume_same_account_identity_alone_is_not_enough",
        Call(TRAIN, "sts:AssumeRole", SM_ROLE),
        IMPLICIT,
        identity={TRAIN: [allow_all()]},
        text=f"no trust policy of {SM_ROLE} is registered",
    ),
    row(
        "assume_federated_principal_never_matches_a_role",
        Call(TRAIN, "sts:AssumeRole", SM_ROLE),
        IMPLICIT,
        identity={TRAIN: [allow_all()]},
        resource=trust(SM_ROLE, {"Federated": "arn:aws:iam::111111111111:oidc-provider/token.actions.example.com"}),
    ),
    row(
        "service_assume_with_right_source_account",
        Call("states.amazonaws.com", "sts:AssumeRole", SFN_ROLE, {"aws:SourceAccount": DEV}),
        ALLOWED,
        [("trust", "StatesAssume")],
        resource=SFN_TRUST,
    ),
    row(
        "service_assume_with_wrong_source_account",
        Call("states.amazonaws.com", "sts:AssumeRole", SFN_ROLE, {"aws:SourceAccount": PROD}),
        IMPLICIT,
        resource=SFN_TRUST,
        text=f"the trust policy of {SFN_ROLE} does not allow the service principal states.amazonaws.com",
    ),
    row(
        "service_assume_without_source_account",
        Call("states.amazonaws.com", "sts:AssumeRole", SFN_ROLE),
        IMPLICIT,
        resource=SFN_TRUST,
    ),
    row(
        "service_assume_by_another_service",
        Call("lambda.amazonaws.com", "sts:AssumeRole", SFN_ROLE, {"aws:SourceAccount": DEV}),
        IMPLICIT,
        resource=SFN_TRUST,
    ),
    row(
        "service_assume_ignores_identity_policies",
        Call("states.amazonaws.com", "sts:AssumeRole", SFN_ROLE, {"aws:SourceAccount": DEV}),
        IMPLICIT,
        identity={"states.amazonaws.com": [allow_all()]},
        text=f"no trust policy of {SFN_ROLE} is registered",
    ),
    row(
        "service_principal_has_no_identity_deny_either",
        Call("states.amazonaws.com", "sts:AssumeRole", SFN_ROLE, {"aws:SourceAccount": DEV}),
        ALLOWED,
        [("trust", "StatesAssume")],
        identity={"states.amazonaws.com": [doc("nothing", st("None", "Deny", Action="*", Resource="*"))]},
        resource=SFN_TRUST,
    ),
    # --- iam:PassRole: identity policies only ---
    row(
        "passrole_to_right_service",
        Call(TRAIN, "iam:PassRole", SM_ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        ALLOWED,
        [("training_passrole", "PassToSageMaker")],
        identity={TRAIN: [ID_PASS]},
    ),
    row(
        "passrole_to_wrong_service",
        Call(TRAIN, "iam:PassRole", SM_ROLE, {"iam:PassedToService": "states.amazonaws.com"}),
        IMPLICIT,
        identity={TRAIN: [ID_PASS]},
    ),
    row(
        "passrole_on_another_role",
        Call(TRAIN, "iam:PassRole", SFN_ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        IMPLICIT,
        identity={TRAIN: [ID_PASS]},
    ),
    row(
        "passrole_trust_policy_does_not_grant_it",
        Call(TRAIN, "iam:PassRole", SM_ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        IMPLICIT,
        resource={SM_ROLE: doc("trust", st("Everything", Principal={"AWS": TRAIN}, Action="*"))},
    ),
    row(
        "passrole_cross_account_impossible",
        Call(TRAIN, "iam:PassRole", PROD_ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        IMPLICIT,
        identity={TRAIN: [allow_all()]},
        text="has no resource-based policy in AWS",
    ),
    # --- service principals on keys and buckets: the resource policy alone ---
    row(
        "logs_service_uses_key",
        Call(
            "logs.eu-west-1.amazonaws.com",
            "kms:GenerateDataKey",
            KEY,
            {"kms:EncryptionContext:aws:logs:arn": f"{LOG_GROUP}:/aws/sagemaker/TrainingJobs"},
        ),
        ALLOWED,
        [("dev_key", "AllowLogs")],
        resource=LOGS_KEY,
    ),
    row(
        "logs_service_other_account_log_group",
        Call(
            "logs.eu-west-1.amazonaws.com",
            "kms:GenerateDataKey",
            KEY,
            {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:eu-west-1:{PROD}:log-group:x"},
        ),
        IMPLICIT,
        resource=LOGS_KEY,
    ),
    row(
        "logs_service_other_region_principal",
        Call(
            "logs.us-east-1.amazonaws.com",
            "kms:GenerateDataKey",
            KEY,
            {"kms:EncryptionContext:aws:logs:arn": f"{LOG_GROUP}:x"},
        ),
        IMPLICIT,
        resource=LOGS_KEY,
        text="does not allow the service principal logs.us-east-1.amazonaws.com",
    ),
    row(
        "log_delivery_writes_bucket",
        Call("delivery.logs.amazonaws.com", "s3:PutObject", f"{BUCKET}/AWSLogs/{DEV}/x.gz", {"aws:SourceAccount": DEV}),
        ALLOWED,
        [("artifacts_bucket", "Delivery")],
        resource=bucket(
            st(
                "Delivery",
                Principal={"Service": "delivery.logs.amazonaws.com"},
                Action="s3:PutObject",
                Resource=f"{BUCKET}/AWSLogs/{DEV}/*",
                Condition={"StringEquals": {"aws:SourceAccount": DEV}},
            )
        ),
    ),
    row(
        "service_principal_not_matched_by_account_root",
        Call("delivery.logs.amazonaws.com", "s3:PutObject", f"{BUCKET}/x"),
        IMPLICIT,
        resource=bucket(st("Root", Principal={"AWS": DEV_ROOT}, Action="s3:*", Resource=f"{BUCKET}/*")),
    ),
    # --- NotAction / NotResource / NotPrincipal ---
    row(
        "notaction_allows_other_services",
        s3(TRAIN),
        ALLOWED,
        [("poweruser", "NotIam")],
        identity={TRAIN: [doc("poweruser", st("NotIam", NotAction="iam:*", Resource="*"))]},
    ),
    row(
        "notaction_excludes_its_service",
        Call(TRAIN, "iam:PassRole", SM_ROLE),
        IMPLICIT,
        identity={TRAIN: [doc("poweruser", st("NotIam", NotAction=["iam:*", "organizations:*"], Resource="*"))]},
    ),
    row(
        "notresource_deny_outside_bucket",
        s3(TRAIN, resource="arn:aws:s3:::somebody-elses/x"),
        EXPLICIT,
        [("fence", "OnlyArtifacts")],
        identity={
            TRAIN: [
                allow_all(),
                doc("fence", st("OnlyArtifacts", "Deny", Action="s3:*", NotResource=[BUCKET, f"{BUCKET}/*"])),
            ]
        },
    ),
    row(
        "notresource_deny_inside_bucket_not_applied",
        s3(TRAIN),
        ALLOWED,
        [("admin", "All")],
        identity={
            TRAIN: [
                allow_all(),
                doc("fence", st("OnlyArtifacts", "Deny", Action="s3:*", NotResource=[BUCKET, f"{BUCKET}/*"])),
            ]
        },
    ),
    row(
        "notprincipal_deny_exempts_listed_role_and_account",
        s3(TRAIN),
        ALLOWED,
        [("training_s3", "ReadModels")],
        identity={TRAIN: [ID_READ]},
        resource=bucket(
            st("OnlyTraining", "Deny", NotPrincipal={"AWS": [TRAIN, DEV_ROOT]}, Action="s3:*", Resource=f"{BUCKET}/*")
        ),
    ),
    row(
        "notprincipal_deny_hits_unlisted_role",
        s3(DEPLOY),
        EXPLICIT,
        [("artifacts_bucket", "OnlyTraining")],
        identity={DEPLOY: [allow_all()]},
        resource=bucket(
            bucket_grant({"AWS": DEPLOY}),
            st("OnlyTraining", "Deny", NotPrincipal={"AWS": [TRAIN, DEV_ROOT]}, Action="s3:*", Resource=f"{BUCKET}/*"),
        ),
    ),
    row(
        "notprincipal_deny_unlisted_role_of_listed_account_is_undecidable",
        s3(OTHER),
        UNDECIDABLE,
        identity={OTHER: [allow_all()]},
        resource=bucket(
            st("OnlyTraining", "Deny", NotPrincipal={"AWS": [TRAIN, DEV_ROOT]}, Action="s3:*", Resource=f"{BUCKET}/*")
        ),
        text="NotPrincipal",
    ),
    row(
        "notprincipal_deny_listing_role_only_is_undecidable",
        s3(TRAIN),
        UNDECIDABLE,
        identity={TRAIN: [ID_READ]},
        resource=bucket(st("OnlyTraining", "Deny", NotPrincipal={"AWS": TRAIN}, Action="s3:*", Resource=f"{BUCKET}/*")),
        text="NotPrincipal",
    ),
    row(
        "notprincipal_deny_exempts_listed_service",
        Call("delivery.logs.amazonaws.com", "s3:PutObject", f"{BUCKET}/AWSLogs/x"),
        ALLOWED,
        [("artifacts_bucket", "Delivery")],
        resource=bucket(
            bucket_grant({"Service": "delivery.logs.amazonaws.com"}, "Delivery", "s3:PutObject"),
            st("OnlyDelivery", "Deny", NotPrincipal={"Service": "delivery.logs.amazonaws.com"}, Action="s3:PutObject"),
        ),
    ),
    row(
        "notprincipal_with_allow_is_undecidable",
        s3(TRAIN),
        UNDECIDABLE,
        resource=bucket(st("AllButOther", NotPrincipal={"AWS": OTHER}, Action="s3:*", Resource=f"{BUCKET}/*")),
        text="NotPrincipal with Allow",
    ),
    # --- wildcards and case ---
    row(
        "action_wildcard_matches",
        s3(TRAIN),
        ALLOWED,
        [("reader", "Get")],
        identity={TRAIN: [doc("reader", st("Get", Action="s3:Get*", Resource=f"{BUCKET}/*"))]},
    ),
    row(
        "action_wildcard_does_not_match_put",
        s3(TRAIN, "s3:PutObject"),
        IMPLICIT,
        identity={TRAIN: [doc("reader", st("Get", Action="s3:Get*", Resource=f"{BUCKET}/*"))]},
    ),
    row(
        "action_is_case_insensitive",
        s3(TRAIN, "S3:getobject"),
        ALLOWED,
        [("reader", "Get")],
        identity={TRAIN: [doc("reader", st("Get", Action="s3:GETOBJECT", Resource=f"{BUCKET}/*"))]},
    ),
    row(
        "action_wildcard_in_service_prefix",
        s3(TRAIN),
        ALLOWED,
        [("reader", "Get")],
        identity={TRAIN: [doc("reader", st("Get", Action="s?:GetObj*", Resource=f"{BUCKET}/*"))]},
    ),
    row(
        "resource_wildcard_spans_slashes",
        s3(TRAIN, resource=f"{BUCKET}/models/run-1/deep/model.tar.gz"),
        ALLOWED,
        [("training_s3", "ReadModels")],
        identity={TRAIN: [ID_READ]},
    ),
    row(
        "resource_is_case_sensitive",
        s3(TRAIN, resource=f"{BUCKET}/Models/m.tar.gz"),
        IMPLICIT,
        identity={TRAIN: [ID_READ]},
    ),
    row(
        "resource_question_mark_is_one_character",
        s3(TRAIN, resource=f"{BUCKET}/run-17/model"),
        IMPLICIT,
        identity={TRAIN: [doc("runs", st("Run", Action="s3:GetObject", Resource=f"{BUCKET}/run-?/model"))]},
    ),
    row(
        "resource_star_ending_a_segment_spans_colons",
        Call(TRAIN, "logs:PutLogEvents", f"{LOG_GROUP}:/aws/sagemaker/TrainingJobs:log-stream:job-1/algo-1"),
        ALLOWED,
        [("logs", "Write")],
        identity={
            TRAIN: [doc("logs", st("Write", Action="logs:PutLogEvents", Resource=f"{LOG_GROUP}:/aws/sagemaker/*"))]
        },
    ),
    row(
        "resource_star_inside_a_segment_stops_at_colon",
        Call(TRAIN, "logs:PutLogEvents", f"{LOG_GROUP}:a:b:z"),
        IMPLICIT,
        identity={TRAIN: [doc("logs", st("Write", Action="logs:PutLogEvents", Resource=f"{LOG_GROUP}:a*z"))]},
    ),
    row(
        "statement_as_object_with_scalars",
        s3(TRAIN),
        ALLOWED,
        [("single", "#0")],
        identity={TRAIN: [Document("single", {"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}})]},
    ),
    # --- condition operators ---
    row(
        "ifexists_key_absent_is_true",
        s3(TRAIN),
        ALLOWED,
        [("guarded", "If")],
        identity={TRAIN: [guarded({"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}})]},
    ),
    row(
        "ifexists_key_present_and_wrong",
        s3(TRAIN, ctx={"aws:SourceVpce": "vpce-2"}),
        IMPLICIT,
        identity={TRAIN: [guarded({"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}})]},
    ),
    row(
        "plain_operator_key_absent_is_false",
        s3(TRAIN),
        IMPLICIT,
        identity={TRAIN: [guarded({"StringEquals": {"aws:SourceVpce": "vpce-1"}})]},
    ),
    row(
        "foranyvalue_one_value_matches",
        add_tags(["team", "cost"]),
        ALLOWED,
        [("guarded", "If")],
        identity={TRAIN: [guarded({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "project"]}})]},
    ),
    row(
        "foranyvalue_no_value_matches",
        add_tags(["cost"]),
        IMPLICIT,
        identity={TRAIN: [guarded({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "project"]}})]},
    ),
    row(
        "foranyvalue_key_absent_is_false",
        add_tags(None),
        IMPLICIT,
        identity={TRAIN: [guarded({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "project"]}})]},
    ),
    row(
        "foranyvalue_ifexists_key_absent_is_still_false",
        add_tags(None),
        IMPLICIT,
        identity={TRAIN: [guarded({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["team"]}})]},
    ),
    row(
        "forallvalues_allow_key_absent_is_true",
        add_tags(None),
        ALLOWED,
        [("guarded", "If")],
        identity={TRAIN: [guarded({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}})]},
    ),
    row(
        "forallvalues_allow_one_value_outside",
        add_tags(["team", "cost"]),
        IMPLICIT,
        identity={TRAIN: [guarded({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "project"]}})]},
    ),
    row(
        "forallvalues_notlike_deny_key_absent_denies",
        add_tags(None),
        EXPLICIT,
        [("guarded", "If")],
        identity={TRAIN: [allow_all(), guarded({"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}, "Deny")]},
    ),
    row(
        "forallvalues_notlike_deny_allowed_prefix",
        add_tags(["key1:hr", "key1:personnel"]),
        ALLOWED,
        [("admin", "All")],
        identity={TRAIN: [allow_all(), guarded({"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}, "Deny")]},
    ),
    row(
        "forallvalues_notlike_deny_other_prefix",
        add_tags(["key2:audit"]),
        EXPLICIT,
        [("guarded", "If")],
        identity={TRAIN: [allow_all(), guarded({"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}, "Deny")]},
    ),
    row(
        "multivalued_key_without_set_operator",
        add_tags(["team", "cost"]),
        UNDECIDABLE,
        identity={TRAIN: [guarded({"StringEquals": {"aws:TagKeys": "team"}})]},
        text="needs ForAnyValue:/ForAllValues:",
    ),
    row(
        "negated_operator_with_several_values_is_not_equal_to_any",
        Call(TRAIN, "kms:Decrypt", KEY, {"kms:ViaService": "sagemaker.eu-west-1.amazonaws.com"}),
        ALLOWED,
        [("dev_key", "Training")],
        resource=key_policy(key_grant({"AWS": TRAIN}, "Training"), VIA_SERVICES_ONLY),
    ),
    row(
        "negated_operator_with_several_values_denies_others",
        Call(TRAIN, "kms:Decrypt", KEY, {"kms:ViaService": "ec2.eu-west-1.amazonaws.com"}),
        EXPLICIT,
        [("dev_key", "OnlyViaServices")],
        resource=key_policy(key_grant({"AWS": TRAIN}, "Training"), VIA_SERVICES_ONLY),
    ),
    row(
        "keys_in_one_operator_are_anded",
        s3(TRAIN, ctx={"aws:SourceVpce": "vpce-1", "aws:SourceVpc": "vpc-2"}),
        IMPLICIT,
        identity={TRAIN: [guarded({"StringEquals": {"aws:SourceVpce": "vpce-1", "aws:SourceVpc": "vpc-1"}})]},
    ),
    row(
        "null_deny_when_header_absent",
        s3(TRAIN, "s3:PutObject"),
        EXPLICIT,
        [("artifacts_bucket", "NeedHeader")],
        identity={TRAIN: [allow_all()]},
        resource=bucket(
            st(
                "NeedHeader",
                "Deny",
                Principal="*",
                Action="s3:PutObject",
                Resource=f"{BUCKET}/*",
                Condition={"Null": {"s3:x-amz-server-side-encryption": "true"}},
            )
        ),
    ),
    row(
        "ip_address_inside_range",
        s3(TRAIN, ctx={"aws:SourceIp": "10.1.2.3"}),
        ALLOWED,
        [("guarded", "If")],
        identity={TRAIN: [guarded({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})]},
    ),
    row(
        "ip_address_outside_range",
        s3(TRAIN, ctx={"aws:SourceIp": "192.168.0.1"}),
        IMPLICIT,
        identity={TRAIN: [guarded({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})]},
    ),
    row(
        "numeric_less_than_equals_inside",
        s3(TRAIN, "s3:ListBucket", BUCKET, ctx={"s3:max-keys": 100}),
        ALLOWED,
        [("guarded", "If")],
        identity={TRAIN: [guarded({"NumericLessThanEquals": {"s3:max-keys": 100}})]},
    ),
    row(
        "numeric_less_than_equals",
        s3(TRAIN, "s3:ListBucket", BUCKET, ctx={"s3:max-keys": 500}),
        IMPLICIT,
        identity={TRAIN: [guarded({"NumericLessThanEquals": {"s3:max-keys": 100}})]},
    ),
    row(
        "arn_like_on_derived_principal_arn",
        s3(OTHER),
        EXPLICIT,
        [("artifacts_bucket", "OnlyTrainingRoles")],
        identity={OTHER: [allow_all()]},
        resource=bucket(
            st(
                "OnlyTrainingRoles",
                "Deny",
                Principal="*",
                Action="s3:*",
                Resource=f"{BUCKET}/*",
                Condition={"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{DEV}:role/train*"}},
            )
        ),
    ),
    row(
        "derived_principal_account_is_overridden_by_given_context",
        s3(TRAIN, ctx={"aws:PrincipalAccount": PROD}),
        IMPLICIT,
        identity={TRAIN: [guarded({"StringEquals": {"aws:PrincipalAccount": DEV}})]},
    ),
    row(
        "derived_service_name_for_service_principal",
        Call("states.amazonaws.com", "sts:AssumeRole", SFN_ROLE),
        ALLOWED,
        [("trust", "Trust")],
        resource=trust(SFN_ROLE, "*", Condition={"StringEquals": {"aws:PrincipalServiceName": "states.amazonaws.com"}}),
    ),
    # --- unsupported things are UNDECIDABLE, never ALLOWED ---
    row(
        "unsupported_date_operator",
        s3(TRAIN, ctx={"aws:CurrentTime": "2026-01-01T00:00:00Z"}),
        UNDECIDABLE,
        identity={TRAIN: [guarded({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})]},
        text="DateLessThan",
    ),
    row(
        "made_up_operator_in_deny_blocks_allow",
        s3(TRAIN),
        UNDECIDABLE,
        identity={TRAIN: [allow_all(), guarded({"StringSortOf": {"aws:x": "y"}}, "Deny")]},
        text="StringSortOf",
    ),
    row(
        "unknown_operator_settled_by_a_false_sibling",
        s3(TRAIN),
        ALLOWED,
        [("admin", "All")],
        identity={
            TRAIN: [
                allow_all(),
                guarded({"StringSortOf": {"aws:x": "y"}, "StringEquals": {"aws:PrincipalAccount": PROD}}, "Deny"),
            ]
        },
    ),
    row(
        "unknown_allow_beside_a_definite_allow",
        s3(TRAIN),
        ALLOWED,
        [("training_s3", "ReadModels")],
        identity={TRAIN: [ID_READ, guarded({"BinaryEquals": {"aws:x": "eQ=="}})]},
    ),
    row(
        "policy_variable_in_resource",
        s3(TRAIN, resource=f"{BUCKET}/home/alice/x"),
        UNDECIDABLE,
        identity={TRAIN: [doc("home", st("Home", Action="s3:*", Resource=f"{BUCKET}/home/${{aws:username}}/*"))]},
        text="policy variable",
    ),
    row(
        "policy_variable_in_condition",
        s3(TRAIN, "s3:ListBucket", BUCKET, ctx={"s3:prefix": "home/alice/"}),
        UNDECIDABLE,
        identity={TRAIN: [guarded({"StringLike": {"s3:prefix": "home/${aws:username}/*"}})]},
        text="policy variable",
    ),
    row(
        "canonical_user_principal",
        s3(TRAIN),
        UNDECIDABLE,
        resource=bucket(bucket_grant({"CanonicalUser": "79a59df900b949e55d96a1e698fbaced"})),
        text="CanonicalUser",
    ),
    row(
        "wildcard_inside_principal_arn",
        s3(TRAIN),
        UNDECIDABLE,
        resource=bucket(bucket_grant({"AWS": f"arn:aws:iam::{DEV}:role/train*"})),
        text="wildcard inside principal",
    ),
    row(
        "misspelled_statement_element",
        s3(TRAIN),
        UNDECIDABLE,
        identity={TRAIN: [doc("typo", st("Typo", Action="s3:*", Resource="*", Condtion={}))]},
        text="Condtion",
    ),
    row(
        "principal_in_identity_policy",
        s3(TRAIN),
        UNDECIDABLE,
        identity={TRAIN: [doc("bad", st("Bad", Principal="*", Action="s3:*", Resource="*"))]},
        text="identity policy statement",
    ),
    row(
        "unknown_principal_kind",
        Call("arn:aws:sts::111111111111:assumed-role/training/session", "s3:GetObject", OBJ, resource_account=DEV),
        UNDECIDABLE,
        identity={TRAIN: [ID_READ]},
        text="neither an IAM role/user ARN nor a service principal",
    ),
]


@pytest.mark.parametrize(("policies", "call", "expected", "deciding", "text"), CASES)
def test_known_aws_decision(
    policies: PolicySet, call: Call, expected: Outcome, deciding: list[tuple[str, str]], text: str | None
) -> None:
    decision = evaluate(policies, call)
    assert decision.outcome is expected, str(decision)
    assert sorted(decision.deciding) == sorted(deciding), str(decision)
    if expected is Outcome.IMPLICIT_DENY:
        assert decision.missing, str(decision)
    if text is not None:
        haystack = decision.missing if expected is Outcome.IMPLICIT_DENY else [decision.reason]
        assert any(text in line for line in haystack), str(decision)


def test_bucket_policy_registered_once_governs_objects() -> None:
    policies = PolicySet(resource=bucket(bucket_grant({"AWS": TRAIN})))
    assert policies.resource_policy(OBJ) == (BUCKET, policies.resource[BUCKET])
    assert policies.resource_policy(BUCKET) == (BUCKET, policies.resource[BUCKET])
    assert policies.resource_policy("arn:aws:s3:::ml-artifacts-2/x") is None


def test_decision_reads_well() -> None:
    denied = evaluate(PolicySet(identity={DEPLOY: [ID_DEPLOY_READ]}), s3(DEPLOY))
    text = str(denied)
    assert text.startswith("IMPLICIT_DENY: cross-account (222222222222 -> 111111111111)")
    assert f"  missing: no bucket policy of {BUCKET} is registered" in text
    allowed = evaluate(PolicySet(identity={TRAIN: [ID_READ]}), s3(TRAIN))
    assert allowed.allowed
    assert "  by training_s3 / ReadModels" in str(allowed)


def test_undecidable_is_never_allowed() -> None:
    """Every row whose policies hold something unsupported must not come out ALLOWED once that is the only grant."""
    odd = doc("odd", st("Odd", Action="s3:*", Resource="*", Condition={"DateGreaterThan": {"aws:CurrentTime": "x"}}))
    decision: Decision = evaluate(PolicySet(identity={TRAIN: [odd]}), s3(TRAIN))
    assert decision.outcome is Outcome.UNDECIDABLE
    assert not decision.allowed
