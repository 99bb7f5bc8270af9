"""The single renderer for JSON documents kept as jinja2 templates (IAM, key, bucket policies, ASL).

Templates are rendered, then parsed: a template that produces malformed JSON is rejected here with
the template name and the parser's position, instead of surfacing later as an AWS API error.
Values may be CDKTF tokens (strings like ``${TfToken[TOKEN.1]}``); they survive rendering and are
resolved when the parsed document is passed to ``Fn.jsonencode``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from mlpipe.core.errors import TemplateError
from mlpipe.core.paths import POLICIES_DIR


def _tojson(value: Any) -> str:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()  # raises UndefinedError: reported as a missing value
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError as exc:
        raise TemplateError(f"value {value!r} cannot be written as JSON: {exc}") from exc


@lru_cache(maxsize=4)
def _environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = _tojson
    return env


def render_json(template: str, directory: Path = POLICIES_DIR, **values: Any) -> dict[str, Any]:
    """Render ``directory/template`` with ``values`` and return the parsed JSON document."""
    try:
        text = _environment(directory).get_template(template).render(**values)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"template {template!r} not found in {directory}",
            "check the template name; templates live in policies/ and asl/",
        ) from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template {template!r} uses a value that was not given: {exc.message}",
            "pass every variable the template uses",
        ) from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"template {template!r} rendered malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            "fix the template (commas, quotes, braces); values must be passed through |tojson",
        ) from exc
    if not isinstance(document, dict):
        raise TemplateError(f"template {template!r} must render a JSON object")
    _reject_unrenderable_strings(template, document)
    return document


def _reject_unrenderable_strings(template: str, node: Any, path: str = "$") -> None:
    """Reject string literals that the CDKTF HCL renderer cannot carry.

    The renderer writes `jsonencode({...})` without escaping double quotes inside strings, so a
    literal `"` produces invalid HCL; use single quotes in prose instead.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            _reject_unrenderable_strings(template, value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _reject_unrenderable_strings(template, value, f"{path}[{index}]")
    elif isinstance(node, str) and '"' in node:
        raise TemplateError(
            f"template {template!r}: the string at {path} contains a double quote, which the HCL "
            "renderer cannot escape",
            "use single quotes inside text values",
        )


def render_policy(template: str, **values: Any) -> dict[str, Any]:
    """Render an IAM/key/bucket policy and check that every statement carries a Sid."""
    document = render_json(template, POLICIES_DIR, **values)
    statements = document.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise TemplateError(f"policy {template!r} has no Statement list")
    sids = [s.get("Sid") for s in statements]
    if not all(isinstance(s, str) and s for s in sids):
        raise TemplateError(f"policy {template!r}: every statement needs a Sid")
    if len(set(sids)) != len(sids):
        raise TemplateError(f"policy {template!r}: duplicate Sid in {sids}")
    return document
