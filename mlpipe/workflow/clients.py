"""Every AWS client the tool makes comes from here, with the endpoint of its target.

A ``Target`` is either real AWS (the caller's credentials) or the local emulator at one loopback
URL. On the emulator target a client without that URL cannot be built: nothing the tool does
can reach a real AWS endpoint by accident. Clients act inside one of the three accounts by
assuming its deploy role, the same way Terraform gets there (moto then attributes requests made
with the returned keys to the role's account).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from mlpipe.core.config import ProjectConfig
from mlpipe.core.errors import CredentialsError, EmulatorError

_RETRIES = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
_QUICK = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=1)
EMULATOR_KEYS = {"aws_access_key_id": "mlpipe-local", "aws_secret_access_key": "mlpipe-local"}


def _require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise EmulatorError(
            f"the emulator URL {url!r} is not a loopback address",
            "the emulator only ever listens on 127.0.0.1; start it with `mlpipe emulator start`",
        )


@dataclass(frozen=True)
class Target:
    """Where AWS calls go: ``aws`` (real endpoints) or ``emulator`` (one loopback URL)."""

    kind: Literal["aws", "emulator"]
    emulator_url: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "emulator":
            if not self.emulator_url:
                raise EmulatorError(
                    "an AWS client was requested for the emulator target without the emulator's URL",
                    "this is a bug in mlpipe: every client on the emulator target needs the emulator URL",
                )
            _require_loopback(self.emulator_url)
        elif self.emulator_url is not None:
            raise EmulatorError("a real-AWS target cannot carry an emulator URL", "use Target('emulator', url)")

    def _endpoint(self) -> dict[str, Any]:
        return {"endpoint_url": self.emulator_url, **EMULATOR_KEYS} if self.kind == "emulator" else {}

    def client(self, config: ProjectConfig, account_key: str, service: str) -> Any:
        """A client for ``service`` acting as the deploy role of ``account_key`` ("shared", ...)."""
        account = config.accounts[account_key]
        try:
            sts = boto3.client("sts", region_name=config.region, config=_RETRIES, **self._endpoint())
            credentials = sts.assume_role(RoleArn=account.deploy_role_arn, RoleSessionName=f"mlpipe-{account_key}")[
                "Credentials"
            ]
        except (ClientError, NoCredentialsError, BotoCoreError) as exc:
            raise CredentialsError(
                f"cannot assume {account.deploy_role_arn} in the {account_key} account: {exc}",
                "check your AWS credentials (`aws sts get-caller-identity`) and that the role trusts them",
            ) from exc
        endpoint = {"endpoint_url": self.emulator_url} if self.kind == "emulator" else {}
        return boto3.client(
            service,
            region_name=config.region,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            config=_RETRIES,
            **endpoint,
        )


def check_credentials(config: ProjectConfig) -> str:
    """Fail in seconds, before synth and scan, when real-AWS credentials are missing or rejected."""
    session = boto3.Session()
    if session.get_credentials() is None:
        raise CredentialsError(
            "no AWS credentials found (environment, shared config or instance profile)",
            "log in first (`aws sso login` or set AWS_PROFILE / AWS_ACCESS_KEY_ID), or use config/local.toml",
        )
    try:
        identity = session.client("sts", region_name=config.region, config=_QUICK).get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise CredentialsError(
            f"AWS did not accept the credentials: {exc}",
            "refresh them (`aws sso login`, or new access keys) and check `aws sts get-caller-identity`",
        ) from exc
    return str(identity.get("Arn", ""))
