"""The block-style YAML subset Kubernetes manifests are written in, read into dicts and lists:
mappings, sequences (indented under their key, or at its level as kustomize writes them),
plain (also folded over lines), quoted and block (`|`, `>`) scalars, flow sequences
(`["python", "-m", "x"]`, also over several lines), `{}`, comments, `---` between
documents. Enough to ask a manifest structural questions without
PyYAML (not a dependency); anything else in a manifest is a ValueError naming the line."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["load_all"]

_Line = tuple[int, str, int]  # indent, content, line number


def load_all(text: str) -> list[Any]:
    """Every non-empty document of `text`."""
    docs = re.split(r"^---[ \t]*$", text, flags=re.M)
    out = []
    for doc in docs:
        lines = _lines(doc)
        if lines:
            value, end = _node(lines, 0, lines[0][0])
            if end != len(lines):
                raise ValueError(f"line {lines[end][2]}: unexpected {lines[end][1]!r}")
            out.append(value)
    return out


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _lines(doc: str) -> list[_Line]:
    out: list[_Line] = []
    pending: list[str] = []  # a flow sequence still open
    for number, raw in enumerate(doc.splitlines(), 1):
        text = _strip_comment(raw)
        if not text.strip():
            continue
        if pending:
            pending.append(text.strip())
            if text.rstrip().endswith("]"):
                indent, _, start = out[-1]
                out[-1] = (indent, " ".join(pending), start)
                pending = []
            continue
        out.append((len(text) - len(text.lstrip(" ")), text.strip(), number))
        value = text.split(":", 1)[1].strip() if ":" in text else text.strip().lstrip("- ")
        if value.startswith("[") and not value.endswith("]"):
            pending = [text.strip()]
    return out


def _scalar(text: str) -> Any:
    if text == "{}":
        return {}
    if text.startswith("{"):
        raise ValueError(f"flow mappings are not in the subset: {text!r}")
    if text.startswith("[") and text.endswith("]"):
        return json.loads(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _continued(lines: list[_Line], i: int, indent: int, text: str) -> tuple[str, int]:
    """A plain scalar folded over more-indented lines (kustomize wraps long ones)."""
    while i < len(lines) and lines[i][0] > indent:
        text += " " + lines[i][1]
        i += 1
    return text, i


def _node(lines: list[_Line], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1] == "-" or lines[i][1].startswith("- "):
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _sequence(lines: list[_Line], i: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("-"):
        rest = lines[i][1][1:].strip()
        if not rest:
            if i + 1 < len(lines) and lines[i + 1][0] > indent:
                item, i = _node(lines, i + 1, lines[i + 1][0])
            else:
                item, i = None, i + 1
        elif re.match(r"^[^\s\"'\[][^:]*:(\s|$)", rest):
            # "- key: value" opens a mapping whose keys sit two columns further in.
            lines[i] = (indent + 2, rest, lines[i][2])
            item, i = _mapping(lines, i, indent + 2)
        else:
            text, i = _continued(lines, i + 1, indent, rest)
            item = _scalar(text)
        items.append(item)
    return items, i


def _mapping(lines: list[_Line], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
        content, number = lines[i][1], lines[i][2]
        if ":" not in content:
            raise ValueError(f"line {number}: expected `key: value`, got {content!r}")
        key, _, value = content.partition(":")
        key, value = _scalar(key.strip()), value.strip()
        i += 1
        if value in ("|", "|-", ">", ">-"):  # a block scalar (kustomize writes Secrets so)
            start = i
            while i < len(lines) and lines[i][0] > indent:
                i += 1
            out[key] = ("\n" if value[0] == "|" else " ").join(x[1] for x in lines[start:i])
        elif value:
            text, i = _continued(lines, i, indent, value)
            out[key] = _scalar(text)
        elif i < len(lines) and lines[i][0] > indent:
            out[key], i = _node(lines, i, lines[i][0])
        elif i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("-"):
            out[key], i = _sequence(lines, i, indent)
        else:
            out[key] = None
    if i < len(lines) and lines[i][0] > indent:
        raise ValueError(f"line {lines[i][2]}: unexpected indentation")
    return out, i
