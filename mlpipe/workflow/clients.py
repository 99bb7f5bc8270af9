"""boto3 clients inside one of the three accounts, the same way Terraform gets there.

Both targets assume the account's deploy role through STS: on real AWS with the caller's
credentials, on the emulator with dummy ones (moto then attributes requests made with the
returned keys to the role's account, so the clients really act in that account).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from mlpipe.core.config import PipelineConfig
from mlpipe.core.errors import CredentialsError

_RETRIES = Config(retries={"max_attempts": 3, "mode": "standard"})


def account_client(config: PipelineConfig, account_key: str, service: str, emulator_url: str | None) -> Any:
    """A client for `service` acting as the deploy role of `account_key` ("shared", ...)."""
    account = config.accounts[account_key]
    endpoint = {"endpoint_url": emulator_url} if emulator_url else {}
    base = {"aws_access_key_id": "mlpipe-local", "aws_secret_access_key": "mlpipe-local"} if emulator_url else {}
    try:
        sts = boto3.client("sts", region_name=config.region, config=_RETRIES, **endpoint, **base)
        creds = sts.assume_role(RoleArn=account.deploy_role_arn, RoleSessionName=f"mlpipe-{account_key}")["Credentials"]
    except (ClientError, NoCredentialsError, BotoCoreError) as exc:
        raise CredentialsError(
            f"cannot assume {account.deploy_role_arn} in the {account_key} account: {exc}",
            "check your AWS credentials and that the role trusts them",
        ) from exc
    return boto3.client(
        service,
        region_name=config.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=_RETRIES,
        **endpoint,
    )
