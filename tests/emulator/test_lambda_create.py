"""How CreateFunction behaves in the emulator, and how AWS provider 5.100.0 reacts to it.

Why: a second pipeline applied into a busy emulator hung at ``aws_lambda_function``: CreateFunction
answered 201, the provider sent it again at once and then got 409 every <=10 s for minutes, and the
function stayed in the emulator without being in the state. These tests pin the facts behind the
fix: a duplicate gets AWS's 409, a slow create is waited for (the provider has no HTTP timeout, so
slowness alone never re-sends), and a create whose answer fails after moto stored the function no
longer leaves it behind, so the SDK's immediate retry converges instead of looping on 409.
Faults are injected with ``MLPIPE_EMULATOR_FAULTS`` (see ``mlpipe/emulator/faults.py``).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from mlpipe.emulator.faults import ENV_VAR, parse_faults
from mlpipe.emulator.process import Emulator
from mlpipe.engine.terraform import TERRAFORM_GOGC

FIXTURE = Path(__file__).parent / "fixtures" / "lambda_create"
TERRAFORM = shutil.which("terraform") or "/usr/local/bin/terraform"
PROVIDER_MIRROR = "/opt/tf-plugins"
ACCOUNT, REGION = "444444444444", "us-east-1"
FUNCTION = "lambda-create-test"
CREATE_LINE = '"POST /2015-03-31/functions HTTP/1.1"'


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("index.py", (2020, 1, 1, 0, 0, 0)), "def handler(e, c):\n    return e\n")
    return buffer.getvalue()


def client(service: str, url: str, account: str = ACCOUNT, region: str = REGION) -> Any:
    """A boto3 client acting in ``account`` that never retries (each call is one request)."""
    aws = boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )

    def as_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    aws.meta.events.register("before-send.*.*", as_account)
    return aws


def create(url: str, account: str = ACCOUNT, region: str = REGION) -> int:
    """CreateFunction of ``FUNCTION`` (its role is created first if needed); the HTTP status."""
    iam = client("iam", url, account, region)
    try:
        role = iam.get_role(RoleName="fn")["Role"]["Arn"]
    except ClientError:
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    try:
        answer = client("lambda", url, account, region).create_function(
            FunctionName=FUNCTION, Role=role, Runtime="python3.12", Handler="index.handler", Code={"ZipFile": package()}
        )
        return int(answer["ResponseMetadata"]["HTTPStatusCode"])
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


def functions(url: str, account: str = ACCOUNT, region: str = REGION) -> list[str]:
    return [f["FunctionName"] for f in client("lambda", url, account, region).list_functions()["Functions"]]


def test_parse_faults_rejects_unknown_names() -> None:
    assert parse_faults("lambda.create.delay=2.5, lambda.create.fail_after_commit") == {
        "lambda.create.delay": 2.5,
        "lambda.create.fail_after_commit": 1.0,
    }
    assert parse_faults("") == {}
    with pytest.raises(ValueError):
        parse_faults("lambda.create.slow=1")


def test_duplicate_create_is_answered_like_aws_per_account_and_region() -> None:
    with Emulator() as emu:
        assert create(emu.url) == 201
        lam = client("lambda", emu.url)
        role = lam.get_function(FunctionName=FUNCTION)["Configuration"]["Role"]
        with pytest.raises(ClientError) as err:
            lam.create_function(
                FunctionName=FUNCTION, Role=role, Runtime="python3.12", Handler="x.y", Code={"ZipFile": package()}
            )
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
        assert err.value.response["Error"]["Code"] == "ResourceConflictException"
        assert err.value.response["Error"]["Message"] == f"Function already exist: {FUNCTION}"
        assert lam.get_function(FunctionName=FUNCTION)["Configuration"]["Handler"] == "index.handler"
        # The same name is free in another region and in another account.
        assert create(emu.url, region="eu-west-1") == 201
        assert create(emu.url, account="555555555555") == 201
        assert functions(emu.url) == [FUNCTION]


def test_concurrent_creates_of_one_name_have_one_winner() -> None:
    # The delay sits between moto's existence check and its store, where unserialized creates race.
    with Emulator(env={ENV_VAR: "lambda.create.delay=0.5"}) as emu:
        create(emu.url, region="eu-west-1")  # role exists (IAM is global), server warmed up
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda: statuses.append(create(emu.url))) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
        assert functions(emu.url) == [FUNCTION]


def test_create_that_fails_after_storing_leaves_no_function() -> None:
    with Emulator(env={ENV_VAR: "lambda.create.fail_after_commit=1"}) as emu:
        assert create(emu.url) == 500
        assert functions(emu.url) == []
        assert create(emu.url) == 201
        assert functions(emu.url) == [FUNCTION]


# ------------------------------------------------------------------------------------------------
# The provider against a slow or failing CreateFunction (real terraform apply, ~15 s each)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The fixture initialized once against the offline provider mirror."""
    tmp = tmp_path_factory.mktemp("lambda_create")
    rc = tmp / "terraform.rc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{PROVIDER_MIRROR}"\n  }}\n}}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
    env.setdefault("GOGC", TERRAFORM_GOGC)  # as mlpipe runs Terraform
    workdir = tmp / "stack"
    shutil.copytree(FIXTURE, workdir)
    init = subprocess.run(
        [TERRAFORM, "init", "-no-color", "-input=false"], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stdout + init.stderr
    return workdir, env


@pytest.fixture
def stack(initialized: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    workdir, env = initialized
    copy = tmp_path / "stack"
    shutil.copytree(workdir, copy, symlinks=True)
    (copy / "fn.zip").write_bytes(package())
    yield copy, env


def apply(stack: tuple[Path, dict[str, str]], emu: Emulator, timeout: float) -> tuple[int, str, float]:
    workdir, env = stack
    zip_path = workdir / "fn.zip"
    started = time.monotonic()
    variables = ["-var", f"emulator_url={emu.url}", "-var", f"zip_path={zip_path}"]
    result = subprocess.run(
        [TERRAFORM, "apply", "-auto-approve", "-no-color", "-input=false", *variables],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout[-3000:] + result.stderr, time.monotonic() - started


def create_statuses(emu: Emulator) -> list[str]:
    lines = emu.log_path.read_text().splitlines()
    return [line.rsplit('"', 1)[1].split()[0] for line in lines if CREATE_LINE in line]


@pytest.mark.e2e
def test_provider_waits_for_a_slow_create_and_sends_it_once(stack: tuple[Path, dict[str, str]]) -> None:
    with Emulator(env={ENV_VAR: "lambda.create.delay=8"}) as emu:
        code, output, elapsed = apply(stack, emu, timeout=240)
        assert code == 0, output + emu.log_path.read_text()[-3000:]
        assert create_statuses(emu) == ["201"]
        assert elapsed >= 8
        assert functions(emu.url) == [FUNCTION]


@pytest.mark.e2e
def test_provider_retry_after_a_failed_create_converges(stack: tuple[Path, dict[str, str]]) -> None:
    with Emulator(env={ENV_VAR: "lambda.create.fail_after_commit=1"}) as emu:
        code, output, elapsed = apply(stack, emu, timeout=240)
        statuses = create_statuses(emu)
        assert code == 0, output + emu.log_path.read_text()[-3000:]
        # The SDK re-sent the create at once; without the all-or-nothing create the repeat got 409
        # for five minutes. Now the first attempt left nothing behind, so the repeat is a 201.
        assert statuses == ["500", "201"]
        assert elapsed < 120
        assert functions(emu.url) == [FUNCTION]
        arn = client("lambda", emu.url).get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
        assert arn.split(":")[3:5] == [REGION, ACCOUNT]


@pytest.mark.e2e
def test_provider_resend_after_a_lost_answer_gets_that_answer(stack: tuple[Path, dict[str, str]]) -> None:
    """The answer to a create is lost after the function was made: the provider's re-send must not meet it.

    Without ``mlpipe/emulator/replay.py`` the re-send is a second CreateFunction: 409 "Function
    already exist", retried by the provider for five minutes, then a failed apply and a function
    outside the state. With it, the re-send (same SDK invocation id, attempt 2) gets the lost 201.
    """
    with Emulator(env={ENV_VAR: "lambda.create.lose_answer=1"}) as emu:
        code, output, elapsed = apply(stack, emu, timeout=240)
        log = emu.log_path.read_text()
        assert code == 0, output + log[-3000:]
        assert "FAULT: CreateFunction answered, answer lost" in log
        assert "answered a re-sent request (attempt 2" in log and "POST /2015-03-31/functions" in log
        assert create_statuses(emu) == ["201"]  # the lost answer is never logged; the replayed one is
        assert elapsed < 120
        assert functions(emu.url) == [FUNCTION]
