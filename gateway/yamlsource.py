"""YAML loading that remembers where each value came from, so validation errors can name file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceIssue:
    """One problem in a source file: where it is and what is wrong."""

    file: str
    line: int
    location: str
    reason: str

    def __str__(self) -> str:
        where = f" {self.location}:" if self.location else ""
        return f"{self.file}:{self.line}:{where} {self.reason}"


class SourceError(Exception):
    """A file that cannot be used, with every problem found in it."""

    def __init__(self, issues: list[SourceIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


def format_location(location: Location) -> str:
    """Render ('chargers', 0, 'registration') as `chargers[0].registration`."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class YamlDocument:
    """Parsed YAML data plus the line of every mapping key and sequence item."""

    file: str
    data: Any
    lines: dict[Location, int]

    def line_of(self, location: Location) -> int:
        """The line of the deepest known part of `location` (pydantic adds parts YAML never had)."""
        for end in range(len(location), -1, -1):
            line = self.lines.get(tuple(location[:end]))
            if line is not None:
                return line
        return 1

    def issue(self, location: Location, reason: str) -> SourceIssue:
        return SourceIssue(self.file, self.line_of(location), format_location(location), reason)


def load_yaml(path: Path) -> YamlDocument:
    """Read and parse `path`; syntax errors and duplicate keys raise `SourceError` with their line."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([SourceIssue(name, 0, "", f"cannot read: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise SourceError([SourceIssue(name, line, "", "not UTF-8 text: save the file as UTF-8")]) from exc
    return parse_yaml(text, name)


# libyaml's parser where PyYAML has it (it keeps the line marks): a thousand-charger mapping parses in a fifth of
# the pure-Python time.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, name: str) -> YamlDocument:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(name, {}, {(): 1})
        lines: dict[Location, int] = {}
        issues: list[SourceIssue] = []
        _walk(node, (), lines, issues, name)
        if issues:
            raise SourceError(issues)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise SourceError([SourceIssue(name, line, "", f"YAML syntax: {reason}")]) from exc
    except yaml.YAMLError as exc:
        raise SourceError([SourceIssue(name, 1, "", f"YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    return YamlDocument(name, data, lines)


def _walk(
    node: yaml.Node, location: Location, lines: dict[Location, int], issues: list[SourceIssue], name: str
) -> None:
    lines[location] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = format_location((*location, key))
                issues.append(SourceIssue(name, line, where, f"duplicate key (first at line {seen[key]})"))
                continue
            seen[key] = line
            _walk(value_node, (*location, key), lines, issues, name)
            lines[(*location, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*location, index), lines, issues, name)
