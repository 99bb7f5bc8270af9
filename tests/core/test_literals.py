"""Configuration strings reach Terraform as data, never as code: checked against Terraform itself.

`mlpipe.core.hcl` writes every configuration value into the HCL. Hypothesis throws arbitrary
strings (template syntax, quotes, backslashes, control characters, any Unicode) at it, and
`terraform console` — Terraform's own parser — must read back exactly the input. A second set of
properties covers validation: every string field either fails with exit 3 naming that field, or
is accepted unchanged.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpipe.core.config import parse_config
from mlpipe.core.errors import ConfigError
from mlpipe.core.hcl import NotNormalized, quote, render_value
from mlpipe.engine.terraform import find_engine
from mlpipe.synth.layout import finalize_hcl

ROOT = Path(__file__).resolve().parents[2]
LOCAL = tomllib.loads((ROOT / "config" / "local.toml").read_text())
# Strings that attack the HCL template language and the renderer's escaping in particular.
HOSTILE = st.sampled_from(
    ["${var.emulator_url}", "%{ if true }x%{ endif }", "$${", "%%{", '"', "\\", "\\n", "\n", "\r\n", "\t", "\u2028",
     "\x00", "\x7f", "@@mlpipe-literal:branch@@", "${TfToken[TOKEN.1]}", "}", "{", "'", "é", "😀", "EOF"]
)  # fmt: skip
TEXT = st.lists(st.one_of(st.text(max_size=8), HOSTILE), max_size=6).map("".join)
NFC_TEXT = TEXT.map(lambda s: unicodedata.normalize("NFC", s))


def _evaluate(directory: Path, values: dict[str, Any]) -> Any:
    """Write the values as locals with our writer and let Terraform evaluate them back."""
    return _terraform_reads(directory, [render_value(v, indent=1) for v in values.values()])


def _terraform_reads(directory: Path, expressions: list[str]) -> Any:
    """What Terraform makes of these HCL expressions, as a list."""
    body = "\n".join(f"  v{i} = {expression}" for i, expression in enumerate(expressions))
    (directory / "main.tf").write_text(f"locals {{\n{body}\n}}\n", encoding="utf-8")
    # base64 keeps the console's own display escaping (Go-style) out of the comparison.
    expression = "base64encode(jsonencode([" + ", ".join(f"local.v{i}" for i in range(len(expressions))) + "]))\n"
    engine = find_engine(os.environ)
    proc = subprocess.run(
        [*engine.argv_prefix, "console", "-no-color"],
        cwd=directory,
        input=expression,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + (directory / "main.tf").read_text()
    return json.loads(base64.b64decode(json.loads(proc.stdout)))


def _all_nfc(*strings: str) -> bool:
    return all(unicodedata.is_normalized("NFC", s) for s in strings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(strings=st.lists(TEXT, min_size=1, max_size=12))
def test_every_string_reads_back_exactly_from_terraform_or_is_refused(strings: list[str], tmp_path: Path) -> None:
    if not _all_nfc(*strings):  # Terraform would normalize it: refused, never changed silently
        with pytest.raises(NotNormalized):
            render_value(strings)
        strings = [unicodedata.normalize("NFC", s) for s in strings]
    assert _evaluate(tmp_path, {str(i): s for i, s in enumerate(strings)}) == strings


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mapping=st.dictionaries(NFC_TEXT, NFC_TEXT, max_size=6), items=st.lists(NFC_TEXT, max_size=4))
def test_maps_and_lists_read_back_exactly(mapping: dict[str, str], items: list[str], tmp_path: Path) -> None:
    assert _evaluate(tmp_path, {"m": mapping, "l": items}) == [mapping, items]


# Found by hypothesis: Terraform stores U+0F43 as U+0F42 U+0FB7, and "e" + U+0301 as "é" (U+00E9).
NOT_NFC = ["\u0f43", "e\u0301", "\u212b", "A\u030a"]


@pytest.mark.parametrize("text", NOT_NFC)
def test_a_string_terraform_would_normalize_is_refused_by_the_writer(text: str, tmp_path: Path) -> None:
    assert _terraform_reads(tmp_path, [f'"{text}"']) == [unicodedata.normalize("NFC", text)] != [text]
    with pytest.raises(NotNormalized, match="NFC"):  # ... so the writer refuses it
        quote(text)
    with pytest.raises(NotNormalized):
        render_value({"k": [text]})


@pytest.mark.parametrize("text", NOT_NFC)
def test_a_config_string_terraform_would_normalize_is_rejected_naming_the_field(text: str) -> None:
    for path, where in ((["pipelines", 1, "branch"], "pipelines[1].branch"), (["tags", "Owner"], "tags.Owner")):
        with pytest.raises(ConfigError, match="NFC") as error:
            parse_config(_set(path, f"x{text}"), Path("t.toml"))
        assert where in str(error.value)
    with pytest.raises(ConfigError, match="key is not in Unicode normal form NFC"):
        parse_config(_set(["tags"], {f"k{text}": "v"}), Path("t.toml"))


def test_known_escapes() -> None:
    assert quote("${x}") == '"$${x}"'
    assert quote("%{ if }") == '"%%{ if }"'
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert quote("$${") == '"$$${"'  # `$` then the escaped `${`
    assert quote("\x00\u2028") == '"\\u0000\\u2028"'


def test_a_value_is_substituted_once_and_never_read_as_a_placeholder() -> None:
    raw = 'locals {\nbranch = "@@mlpipe-literal:branch@@"\nother = "@@mlpipe-literal:other@@"\n}\n'
    values = {"branch": "@@mlpipe-literal:other@@", "other": "${var.x}"}
    out = finalize_hcl(raw, values, {})
    assert 'branch = "@@mlpipe-literal:other@@"' in out and 'other = "$${var.x}"' in out


def test_a_placeholder_without_a_recorded_value_fails_the_synth() -> None:
    with pytest.raises(Exception, match="no value"):
        finalize_hcl('locals {\nx = "@@mlpipe-literal:x@@"\n}\n', {}, {})


# -- validation: every string field either names itself in a ConfigError or is kept exactly ----------------


def _set(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(LOCAL)
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


STRING_FIELDS: dict[str, tuple[list[Any], str, Any]] = {
    # name: (where in the TOML, the field name an error must carry, how to read the value back)
    "branch": (["pipelines", 1, "branch"], "pipelines[1].branch", lambda c: c.pipelines[1].branch),
    "hyperparameter": (
        ["defaults", "training", "hyperparameters", "eta"],
        "defaults.training.hyperparameters.eta",
        lambda c: c.pipelines[0].training.hyperparameters["eta"],
    ),
    "tag value": (["tags", "Owner"], "tags.Owner", lambda c: c.tags["Owner"]),
    "name prefix": (["project", "name_prefix"], "project.name_prefix", lambda c: c.name_prefix),
    "pipeline name": (["pipelines", 0, "name"], "pipelines[0]", lambda c: c.pipelines[0].name),
    "deploy role": (
        ["accounts", "training", "deploy_role"],
        "accounts.training.deploy_role",
        lambda c: c.training_account.deploy_role_arn.rsplit("/", 1)[1],
    ),
    "instance type": (
        ["defaults", "training", "instance_type"],
        "defaults.training.instance_type",
        lambda c: c.pipelines[0].training.instance_type,
    ),
    "smoke test data": (
        ["pipelines", 0, "serving"],
        "pipelines[0].serving.smoke_test_data",
        lambda c: c.pipelines[0].serving.smoke_test_data,
    ),
}


@pytest.mark.parametrize("field", sorted(STRING_FIELDS))
@settings(max_examples=150, deadline=None)
@given(value=TEXT)
def test_each_string_field_is_rejected_by_name_or_kept_exactly(field: str, value: str) -> None:
    path, where, read = STRING_FIELDS[field]
    data = _set(path, {"smoke_test_data": value} if field == "smoke test data" else value)
    try:
        config = parse_config(data, Path("t.toml"))
    except ConfigError as exc:
        assert exc.exit_code == 3
        assert where in str(exc), str(exc)
        return
    assert read(config) == value


@settings(max_examples=100, deadline=None)
@given(key=TEXT, value=TEXT)
def test_tag_keys_and_values_are_rejected_by_name_or_kept_exactly(key: str, value: str) -> None:
    data = _set(["tags"], {key: value})
    try:
        config = parse_config(data, Path("t.toml"))
    except ConfigError as exc:
        assert f"tags.{key}" in str(exc) or "tags = " in str(exc)
        return
    assert config.tags == {key: value}
