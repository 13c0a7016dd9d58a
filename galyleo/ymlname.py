"""Read top-level keys of a conda environment.yml without PyYAML.

Input: the file's text. Output: the scalar value of one top-level key (for
`name:`), or YmlError naming the line when the text is not a YAML block mapping
at top level. Only what environment files use is understood: block mappings,
comments, `---`/`...` markers, plain/single/double-quoted scalars; a value
given as a nested block, a flow collection or a block scalar is not a name.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

KEY = re.compile(
    r"""(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{\[&*!|>%@`-][^#]*?|-[^\s#][^#]*?)"""
    r"""\s*:(?:\s+|\Z)(?P<rest>.*)\Z"""
)
ENV_NAME = re.compile(r"[^/\s:#]+\Z")


class YmlError(ValueError):
    """The text is not a YAML mapping galyleo can read; the message names the line."""


def top_level(text: str) -> Dict[str, Tuple[int, str]]:
    """Every top-level key -> (line number, raw value text, comment stripped)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    keys: Dict[str, Tuple[int, str]] = {}
    documents = 0
    for number, line in enumerate(text.splitlines(), 1):
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise YmlError(f"line {number}: a tab in indentation (YAML allows only spaces)")
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or line[0] == " ":
            continue
        if stripped == "---" or stripped.startswith("--- "):
            documents += 1
            if documents > 1 or keys:
                raise YmlError(f"line {number}: more than one YAML document")
            continue
        if stripped == "...":
            break
        if stripped.startswith("%"):
            continue  # a directive such as %YAML 1.2
        match = KEY.match(line.rstrip())
        if not match:
            raise YmlError(f"line {number}: expected a top-level 'key: value', found {stripped[:40]!r}")
        key = unquote(match.group("key").strip(), number)
        if key in keys:
            raise YmlError(f"line {number}: key {key!r} given twice")
        keys[key] = (number, match.group("rest"))
    return keys


def unquote(text: str, number: int) -> str:
    """A YAML scalar's value: quotes removed (YAML's escapes for the common cases)."""
    if text[:1] == "'":
        if len(text) < 2 or text[-1] != "'":
            raise YmlError(f"line {number}: unterminated quote")
        return text[1:-1].replace("''", "'")
    if text[:1] == '"':
        if len(text) < 2 or text[-1] != '"':
            raise YmlError(f"line {number}: unterminated quote")
        escapes = {"\\\\": "\\", '\\"': '"', "\\t": "\t", "\\n": "\n", "\\/": "/"}
        return re.sub(r'\\.', lambda m: escapes.get(m.group(0), m.group(0)), text[1:-1])
    return text


def scalar(raw: str, number: int) -> Optional[str]:
    """The value of `key: <raw>` when it is a one-line scalar; None when empty or nested."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = closing_quote(raw, quote)
        if end < 0:
            raise YmlError(f"line {number}: unterminated quote")
        after = raw[end + 1:].strip()
        if after and not after.startswith("#"):
            raise YmlError(f"line {number}: text after a quoted value")
        return unquote(raw[: end + 1], number)
    value = re.split(r"\s#", raw, maxsplit=1)[0].strip() if not raw.startswith("#") else ""
    if value[:1] in ("[", "{", "|", ">", "&", "*", "!"):
        return None
    return value or None


def closing_quote(text: str, quote: str) -> int:
    i = 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and text[i + 1:i + 2] == "'":
                i += 2
                continue
            return i
        i += 1
    return -1


def env_name(text: str) -> str:
    """The environment's `name:` (a top-level key), or YmlError saying what is wrong."""
    keys = top_level(text)
    if "name" not in keys:
        raise YmlError("no top-level 'name:' key")
    number, raw = keys["name"]
    value = scalar(raw, number)
    if not value:
        raise YmlError(f"line {number}: 'name:' is empty or not a single value")
    if not ENV_NAME.match(value):
        raise YmlError(f"line {number}: name {value!r} is not a valid conda environment name")
    return value


def read_env_name(path: str) -> str:
    """env_name of a file; unreadable or non-UTF-8 files are YmlErrors too."""
    try:
        with open(path, encoding="utf-8") as handle:
            return env_name(handle.read())
    except OSError as exc:
        raise YmlError(f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise YmlError("not UTF-8 text") from None
