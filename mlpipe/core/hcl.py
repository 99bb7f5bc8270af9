"""Values from the configuration file written as HCL literals that Terraform reads back exactly.

HCL's quoted strings are templates: ``${...}`` interpolates and ``%{...}`` runs directives, so a
user's branch name or hyper-parameter must have both escaped (``$${``, ``%%{``), besides quotes,
backslashes and control characters. This is the only place that writes such literals; the tests
check it against Terraform itself (``terraform console``) with arbitrary strings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class NotNormalized(ValueError):
    """A string Terraform would change: it stores every string in Unicode normal form NFC."""


def quote(value: str) -> str:
    """``value`` as a quoted HCL string literal whose evaluated value is exactly ``value``.

    Terraform normalizes every string literal to NFC, escapes included (``"\\u0F43"`` reads back
    as U+0F42 U+0FB7), so no spelling keeps a string that is not in NFC: it is refused here, and
    the configuration rejects it first, naming the field.
    """
    if not unicodedata.is_normalized("NFC", value):
        raise NotNormalized(
            f"{value!r} is not in Unicode normal form NFC; Terraform would store it as "
            f"{unicodedata.normalize('NFC', value)!r}"
        )
    out: list[str] = ['"']
    for index, char in enumerate(value):
        following = value[index + 1 : index + 2]
        if char in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[char])
        elif char in "$%" and following == "{":
            out.append(char * 2)  # `$${` and `%%{` are the literal `${` and `%{`
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render_value(value: Any, indent: int = 0) -> str:
    """A string, number, bool, list or string-keyed map as an HCL literal expression."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    pad = "  " * (indent + 1)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        lines = [f"{pad}{quote(str(k))} = {render_value(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + "\n".join(lines) + "\n" + "  " * indent + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [f"{pad}{render_value(v, indent + 1)}," for v in value]
        return "[\n" + "\n".join(items) + "\n" + "  " * indent + "]"
    raise TypeError(f"cannot write {type(value).__name__} as an HCL literal")
