"""The stack every mlpipe configuration is built on: readable addresses and a per-stack record.

Addresses: CDK for Terraform names a resource after its construct path plus a hash
(``training_roles_sagemaker_64AB0DCF``). Reviewers read those names in every plan line and need
them for ``terraform state``, ``import`` and ``-target``, so this stack joins the path below the
stack with underscores and drops the hash (``aws_iam_role.training_sagemaker``). A path component
that merely repeats the resource type (``kms_key`` for an ``aws_kms_key``) is dropped too, so the
key, the bucket and the bucket's settings of one store can all be called ``shared_artifacts``.
Two elements that would get the same address fail the synth at once, naming both paths.

Record: what synth reports besides the HCL (the policy documents, the checkov skips, the
configuration literals) is collected here, on the stack being synthesized, never in a module
global, so several stacks in one process cannot mix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cdktf import TerraformDataSource, TerraformElement, TerraformLocal, TerraformResource, TerraformStack
from constructs import Construct, Node

CHECKOV_SKIP_METADATA = "checkov_skip"
LITERAL_PLACEHOLDER = "@@mlpipe-literal:{name}@@"
_LOCAL_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass
class StackRecord:
    """Everything one stack's synth reports next to its HCL."""

    # (document name, document with tokens, the jsonencode token the resource attribute holds)
    policies: list[tuple[str, Any, str]] = field(default_factory=list)
    literals: dict[str, Any] = field(default_factory=dict)  # local name -> value from the config file
    skips: list[tuple[TerraformResource, str, str]] = field(default_factory=list)  # (resource, check, reason)


class ReadableStack(TerraformStack):
    """A TerraformStack with hand-written-looking addresses and its own synth record."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.record = StackRecord()
        self._addresses: dict[str, str] = {}  # "type.name" -> construct path

    def _allocate_logical_id(self, tf_element: TerraformElement | Node) -> str:
        # Called back by jsii for every element: few calls into the Node runtime (each costs ~1 ms).
        node = tf_element if isinstance(tf_element, Node) else tf_element.node
        element = tf_element if isinstance(tf_element, TerraformElement) else None
        kind = type(element).__name__ if element is not None else "node"
        resource_type = getattr(type(element), "TF_RESOURCE_TYPE", None)  # a class attribute of the bindings
        if isinstance(element, TerraformResource) and isinstance(resource_type, str):
            kind = resource_type
        elif isinstance(element, TerraformDataSource) and isinstance(resource_type, str):
            kind = f"data.{resource_type}"
        path = node.path
        parts = path.split("/")[1:]  # below the stack
        redundant = kind.removeprefix("data.").removeprefix("aws_")
        if len(parts) > 1 and parts[-1] == redundant:
            parts = parts[:-1]
        name = "_".join(parts).replace("-", "_")
        address = f"{kind}.{name}"
        owner = self._addresses.setdefault(address, path)
        if owner != path:
            raise ValueError(f"two elements would get the address {address}: {owner} and {path}")
        return name

    @staticmethod
    def of(scope: Construct) -> ReadableStack:
        stack = TerraformStack.of(scope)
        if not isinstance(stack, ReadableStack):
            raise TypeError(f"{scope.node.path} is not inside a ReadableStack")
        return stack


def literal(scope: Construct, name: str, value: str | dict[str, str]) -> TerraformLocal:
    """A value from the configuration file as a Terraform local: data, never code.

    The renderer of CDK for Terraform does not escape ``${``, ``%{``, quotes or backslashes in
    every context, so a user's string would be evaluated as a Terraform template. Here the
    local holds a placeholder; synth replaces it with the value written as an escaped HCL
    literal (``mlpipe.core.hcl``), and everything else refers to ``local.<name>``.
    """
    if not _LOCAL_NAME.fullmatch(name):
        raise ValueError(f"literal name {name!r} must be a lowercase identifier")
    stack = ReadableStack.of(scope)
    if name in stack.record.literals:
        raise ValueError(f"literal {name!r} declared twice in stack {stack.node.id}")
    stack.record.literals[name] = value
    local = TerraformLocal(stack, f"literal_{name}", LITERAL_PLACEHOLDER.format(name=name))
    local.override_logical_id(name)  # `local.branch`, while the construct id stays clear of outputs
    return local


def skip_check(resource: TerraformResource, check_id: str, reason: str) -> None:
    """Declare a checkov skip for one resource; synth writes it as an inline ``# checkov:skip`` comment.

    Skips live next to the resource they concern, always with a reason; there is no global list.
    """
    if not reason.strip():
        raise ValueError(f"checkov skip {check_id} on {resource.node.path} needs a written reason")
    ReadableStack.of(resource).record.skips.append((resource, check_id, reason))
