"""YAML documents with their node trees, so a field path maps back to a line of the file.

``load_documents`` parses every document of a stream with PyYAML's SafeLoader, keeping the
composed node (``yaml.compose`` form) beside the constructed data; ``line_of`` walks the node
tree along a field path and returns the 1-based line of the deepest key it finds. Syntax errors
become :class:`YamlSyntaxError` with a 1-based line and column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["YamlDoc", "YamlSyntaxError", "line_of", "load_documents"]


@dataclass(frozen=True)
class YamlDoc:
    """One document of a YAML stream: its index (0-based), data and composed node."""

    index: int
    data: Any
    node: yaml.Node


class YamlSyntaxError(Exception):
    """The stream is not YAML; ``line``/``column`` are 1-based (None when unknown)."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def _mark_position(error: yaml.MarkedYAMLError) -> tuple[int | None, int | None]:
    mark = error.problem_mark or error.context_mark
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


def load_documents(text: str) -> list[YamlDoc]:
    """Every document of ``text`` (empty ones included); YamlSyntaxError on the first problem."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as e:  # a non-printable character
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise YamlSyntaxError(f"invalid YAML: {_printable(e.reason)}", line, column) from e
    docs: list[YamlDoc] = []
    node: yaml.Node | None = None
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            _check_size(node)
            docs.append(YamlDoc(len(docs), loader.construct_document(node), node))
    except yaml.MarkedYAMLError as e:
        mark_line, mark_column = _mark_position(e)
        problem = e.problem or e.context or "syntax error"
        raise YamlSyntaxError(f"invalid YAML: {_printable(problem)}", mark_line, mark_column) from e
    except yaml.reader.ReaderError as e:
        at = text.count("\n", 0, e.position) + 1
        raise YamlSyntaxError(f"invalid YAML: {_printable(e.reason)}", at, None) from e
    except yaml.YAMLError as e:
        raise YamlSyntaxError(f"invalid YAML: {_printable(str(e))}", None, None) from e
    except RecursionError as e:
        raise YamlSyntaxError("invalid YAML: nested too deeply", None, None) from e
    except (ValueError, TypeError, OverflowError) as e:  # e.g. a timestamp with month 13
        bad = _failing_line(node) if node is not None else None
        raise YamlSyntaxError(f"invalid YAML value: {_printable(str(e))}", bad, None) from e
    finally:
        loader.dispose()
    return docs


MAX_NODES = 100_000
"""Most nodes a document may hold once its aliases are expanded (a guard against alias bombs)."""


def _check_size(root: yaml.Node) -> None:
    """YamlSyntaxError when aliases make ``root`` recursive or expand it past MAX_NODES nodes.

    Sizes are memoised per node, so the check is linear in the composed (unexpanded) tree.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            active.discard(id(node))
            children = _children(node)
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_NODES:
                line = node.start_mark.line + 1
                message = f"invalid YAML: aliases expand to more than {MAX_NODES} nodes"
                raise YamlSyntaxError(message, line, None)
            continue
        if id(node) in sizes:
            continue
        if id(node) in active:
            line = node.start_mark.line + 1
            raise YamlSyntaxError("invalid YAML: an alias refers to itself", line, None)
        active.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _failing_line(node: yaml.Node) -> int:
    """1-based line of the first scalar under ``node`` that cannot be constructed."""
    stack = [node]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.ScalarNode):
            try:
                yaml.constructor.SafeConstructor().construct_object(current)
            except (yaml.YAMLError, ValueError, TypeError, OverflowError):
                return current.start_mark.line + 1
        elif isinstance(current, yaml.MappingNode):
            stack.extend(reversed([n for pair in current.value for n in pair]))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(reversed(current.value))
    return node.start_mark.line + 1


def _printable(text: str) -> str:
    """One printable line (control characters escaped) for an error message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(text.split()))


def line_of(node: yaml.Node, path: Sequence[str | int]) -> int:
    """1-based line of the deepest entry of ``path`` present under ``node``.

    A mapping entry's line is its key's line; a sequence item's is the item's own. The walk stops
    at the first step that is not there, so a missing field maps to its parent's line.
    """
    current = node
    line = node.start_mark.line + 1
    for step in path:
        if isinstance(current, yaml.MappingNode):
            for key, value in reversed(current.value):  # the last duplicate key wins
                if isinstance(key, yaml.ScalarNode) and key.value == str(step):
                    line = key.start_mark.line + 1
                    current = value
                    break
            else:
                return line
        elif isinstance(current, yaml.SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(current.value):
                return line
            current = current.value[step]
            line = current.start_mark.line + 1
        else:
            return line
    return line
