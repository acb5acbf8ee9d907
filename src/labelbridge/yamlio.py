"""YAML loading that knows line numbers and refuses duplicate keys.

PyYAML silently keeps the last of two equal keys; a mapping file with a label written
twice must instead be an error naming the file and line. :func:`load_yaml` returns plain
Python data plus, for every mapping key, the line it was written on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labelbridge.errors import UserError


@dataclass
class LinedYaml:
    """Parsed YAML with the 1-based line of every mapping key.

    Attributes:
        data: the document as plain dicts/lists/scalars.
        lines: ``{key_path: line}`` where ``key_path`` is a tuple of keys/indices from the
            root, e.g. ``("mapping", "Car")``.
        path: the file it came from (for messages), or ``"<string>"``.
    """

    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)
    path: str = "<string>"

    def where(self, *key_path: Any) -> str:
        """``"file:line"`` for a key path, falling back to the nearest known parent."""
        kp = tuple(key_path)
        while kp:
            if kp in self.lines:
                return f"{self.path}:{self.lines[kp]}"
            kp = kp[:-1]
        return self.path


class _DuplicateKeyError(Exception):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(key, line, first)
        self.key, self.line, self.first = key, line, first


def _construct(node: yaml.Node, loader: yaml.SafeLoader, path: tuple, lines: dict) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        seen: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKeyError(key, line, seen[key])
            seen[key] = line
            lines[path + (key,)] = line
            out[key] = _construct(value_node, loader, path + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, child in enumerate(node.value):
            lines[path + (i,)] = child.start_mark.line + 1
            items.append(_construct(child, loader, path + (i,), lines))
        return items
    return loader.construct_object(node, deep=True)


def load_yaml_text(text: str, source: str = "<string>") -> LinedYaml:
    """Parse YAML text; see :func:`load_yaml`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple, int] = {}
        data = None if node is None else _construct(node, loader, (), lines)
    except _DuplicateKeyError as exc:
        raise UserError(
            f"{source}:{exc.line}: duplicate key {exc.key!r} (first written on line {exc.first})"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{source}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    finally:
        loader.dispose()
    return LinedYaml(data=data, lines=lines, path=source)


def load_yaml(path: str | Path) -> LinedYaml:
    """Load a YAML file, refusing duplicate keys, and remember each key's line.

    Raises:
        UserError: the file is missing, unreadable, not YAML, or has a duplicate key;
            the message names the file and line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read: {exc}") from None
    return load_yaml_text(text, str(p))
