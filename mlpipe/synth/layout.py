"""Lay out the HCL of CDK for Terraform the way a person would write it, and make it data-safe.

The renderer of CDK for Terraform writes each ``jsonencode(...)`` document on one line of up to
1,500 characters, quotes provider references and ``depends_on`` entries, and does not escape user
strings in every context. This module rewrites one stack's ``cdk.tf``:

* configuration literals: each ``@@mlpipe-literal:<name>@@`` placeholder in the ``locals`` block
  becomes the value written by ``mlpipe.core.hcl`` (escaped, so it is data, never code);
* every ``jsonencode`` document spans lines, one statement per block (``terraform fmt`` aligns);
* ``provider = aws.x``, ``depends_on = [a.b]`` and ``x = "${a.b}"`` are bare references;
* each declared checkov skip becomes an inline ``# checkov:skip=ID:reason`` in its resource.

Everything it does not recognise it leaves byte for byte; anything it cannot parse is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlpipe.core.errors import SynthError
from mlpipe.core.hcl import IDENTIFIER, render_value

QUOTED_PROVIDER = re.compile(r'^(\s*provider\s*=\s*)"(aws\.[A-Za-z0-9_-]+)"\s*$', re.MULTILINE)
DEPENDS_ON = re.compile(r"^(\s*)depends_on\s*=\s*\[(.*?)\]", re.DOTALL | re.MULTILINE)
LITERAL = re.compile(r'"@@mlpipe-literal:([a-z][a-z0-9_]*)@@"')
# A string that is exactly one interpolation of a reference: `"${aws_x.y.arn}"` is `aws_x.y.arn`.
INTERPOLATION_ONLY = re.compile(r'(?<![\\$])"\$\{((?:data\.)?[A-Za-z_][\w-]*(?:\.[\w-]+)+)\}"')
BLANK_RUNS = re.compile(r"\n(?:[ \t]*\n)+")
TOP_LEVEL_END = re.compile(r"^\}\n(?=\S)", re.MULTILINE)
JSONENCODE_LINE = re.compile(r'^(\s*)([A-Za-z_][A-Za-z0-9_-]*|"[^"]*")\s*=\s*"\$\{jsonencode\((.*)\)\}"\s*$')
INLINE_LIST_WIDTH = 80


def finalize_hcl(text: str, literals: Mapping[str, Any], skips: Mapping[str, list[dict[str, str]]]) -> str:
    """Apply every rewrite above to one stack's HCL."""
    text = QUOTED_PROVIDER.sub(r"\1\2", text)
    text = DEPENDS_ON.sub(_depends_on, text)
    text = _substitute_literals(text, literals)
    text = INTERPOLATION_ONLY.sub(r"\1", text)
    text = "\n".join(_pretty_line(line) for line in text.split("\n"))
    text = _insert_skips(text, skips)
    return BLANK_RUNS.sub("\n", text)  # no blank lines inside blocks; see space_blocks


POLICY_DOCUMENT = re.compile(r'^data "aws_iam_policy_document" "[^"]+" \{\n.*?^\}$', re.MULTILINE | re.DOTALL)
SINGLE_ITEM_LIST = re.compile(r'^(\s*[a-z_]+\s*=\s*)\[\n\s*("[^"\n]*"|[A-Za-z_][\w.\[\]-]*)\n\s*\]$', re.MULTILINE)
STATEMENT = re.compile(r"^  statement \{\n(.*?)^  \}$", re.MULTILINE | re.DOTALL)


def tidy_policy_documents(formatted: str) -> str:
    """``sid`` first in each policy statement; one-item lists on one line (everywhere).

    Runs on formatted text (blocks are indented); ``terraform fmt`` realigns afterwards.
    """

    def statement(match: re.Match[str]) -> str:
        lines = match.group(1).splitlines(keepends=True)
        sid = [line for line in lines if line.lstrip().startswith("sid ")]
        rest = [line for line in lines if line not in sid]
        return "  statement {\n" + "".join(sid + rest) + "  }"

    def document(match: re.Match[str]) -> str:
        block = SINGLE_ITEM_LIST.sub(r"\1[\2]", match.group(0))
        return STATEMENT.sub(statement, block)

    return SINGLE_ITEM_LIST.sub(r"\1[\2]", POLICY_DOCUMENT.sub(document, formatted))


def space_blocks(formatted: str) -> str:
    """One blank line between top-level blocks (run after ``terraform fmt`` has indented the file)."""
    return TOP_LEVEL_END.sub("}\n\n", formatted)


def _depends_on(match: re.Match[str]) -> str:
    entries = [e.strip().strip('"') for e in match.group(2).replace("\n", ",").split(",") if e.strip()]
    return f"{match.group(1)}depends_on = [{', '.join(entries)}]"


def _substitute_literals(text: str, literals: Mapping[str, Any]) -> str:
    used: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in literals:
            raise SynthError(f"the HCL has a placeholder for literal {name!r}, but synth recorded no value for it")
        used.add(name)
        return render_value(literals[name], indent=1)

    # One pass: a value is never scanned again, so a value that looks like a placeholder stays data.
    text = LITERAL.sub(replace, text)
    if missing := sorted(set(literals) - used):
        raise SynthError(f"literals {missing} were recorded but never written to the HCL")
    return text


def _insert_skips(text: str, skips: Mapping[str, list[dict[str, str]]]) -> str:
    for address, entries in skips.items():
        rtype, name = address.split(".", 1)
        header = re.compile(rf'^resource\s+"{re.escape(rtype)}"\s+"{re.escape(name)}"\s*\{{\s*$', re.MULTILINE)
        match = header.search(text)
        if not match:
            raise SynthError(f"declared checkov skip for {address}, but the resource is not in the HCL")
        comments = "".join(f"\n  # checkov:skip={e['check']}:{e['reason']}" for e in entries)
        text = text[: match.end()] + comments + text[match.end() :]
    return text


# ---------------------------------------------------------------------------------------------
# jsonencode documents over several lines
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    """An expression kept exactly as written: a string literal (with its quotes) or a reference."""

    text: str
    is_string: bool


def _pretty_line(line: str) -> str:
    match = JSONENCODE_LINE.match(line)
    if not match:
        return line
    indent, key, expression = match.groups()
    value = _Parser(expression).parse()
    return f"{indent}{key} = jsonencode({_render(value, len(indent) // 2)})"


class _Parser:
    """A parser for the expression subset CDK for Terraform writes inside ``jsonencode(...)``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> Any:
        value = self._value()
        self._space()
        if self.pos != len(self.text):
            self._fail("unexpected text after the document")
        return value

    def _fail(self, what: str) -> None:
        excerpt = self.text[max(0, self.pos - 40) : self.pos + 40]
        raise SynthError(f"cannot lay out a jsonencode document: {what} at offset {self.pos}: ...{excerpt}...")

    def _space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def _value(self) -> Any:
        self._space()
        if self.pos >= len(self.text):
            self._fail("unexpected end")
        char = self.text[self.pos]
        if char == "{":
            return self._object()
        if char == "[":
            return self._tuple()
        if char == '"':
            return _Raw(self._string(), True)
        return _Raw(self._bare(), False)

    def _object(self) -> dict[_Raw, Any]:
        self.pos += 1
        result: dict[_Raw, Any] = {}
        while True:
            self._space()
            if self.text[self.pos] == "}":
                self.pos += 1
                return result
            key = self._value()
            if not isinstance(key, _Raw):
                self._fail("an object key must be a string or a name")
            self._space()
            if self.text[self.pos] not in "=:":
                self._fail("expected '='")
            self.pos += 1
            result[key] = self._value()
            self._space()
            if self.text[self.pos] == ",":
                self.pos += 1

    def _tuple(self) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        while True:
            self._space()
            if self.text[self.pos] == "]":
                self.pos += 1
                return result
            result.append(self._value())
            self._space()
            if self.text[self.pos] == ",":
                self.pos += 1

    def _string(self) -> str:
        """A quoted template, including any ``${...}`` interpolation (which may hold quotes)."""
        start = self.pos
        self.pos += 1
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            if depth == 0 and char == '"':
                self.pos += 1
                return self.text[start : self.pos]
            if self.text.startswith("$${", self.pos) or self.text.startswith("%%{", self.pos):
                self.pos += 3
                continue
            if self.text.startswith("${", self.pos):
                depth += 1
                self.pos += 2
                continue
            if depth and char == '"':
                self.pos = self._skip_nested_string(self.pos)
                continue
            if depth and char == "}":
                depth -= 1
            self.pos += 1
        self._fail("unterminated string")
        return ""

    def _skip_nested_string(self, pos: int) -> int:
        pos += 1
        while pos < len(self.text) and self.text[pos] != '"':
            pos += 2 if self.text[pos] == "\\" else 1
        return pos + 1

    def _bare(self) -> str:
        """A number, ``true``/``false``/``null`` or a reference such as ``local.x`` or ``aws_x.y.arn``."""
        start = self.pos
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in "[(":
                depth += 1
            elif char in "])" and depth:
                depth -= 1
            elif depth == 0 and char in ",}] \t=":
                break
            self.pos += 1
        if self.pos == start:
            self._fail("expected a value")
        return self.text[start : self.pos]


def _key(key: _Raw) -> str:
    if key.is_string and IDENTIFIER.fullmatch(key.text[1:-1]):
        return key.text[1:-1]
    return key.text


def _render(value: Any, indent: int) -> str:
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, _Raw):
        return value.text
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = [f"{inner}{_key(k)} = {_render(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + "\n".join(lines) + f"\n{pad}}}"
    if not value:
        return "[]"
    if all(isinstance(v, _Raw) for v in value):
        inline = "[" + ", ".join(v.text for v in value) + "]"
        if len(inline) <= INLINE_LIST_WIDTH:
            return inline
    items = [f"{inner}{_render(v, indent + 1)}," for v in value]
    return "[\n" + "\n".join(items) + f"\n{pad}]"
