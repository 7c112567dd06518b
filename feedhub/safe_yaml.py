"""YAML read with bounds, for front matter and config files alike.

PyYAML's safe loader still lets a document do harm: a few hundred bytes of aliases
expand into billions of nodes for whoever walks the value, deep flow nesting crashes
libyaml's composer (a segmentation fault, past about 50,000 levels), and values such as
``2022-02-30`` or a 5,000-digit integer raise plain ValueErrors from the constructor.
Here the document is composed first, measured (nesting, nodes with every alias counted
each time it is used) and only then built; every failure is a :class:`YamlError`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.reader import Reader
from yaml.resolver import Resolver

from feedhub.limits import MAX_YAML_DEPTH
from feedhub.text import quoted


class YamlError(yaml.YAMLError):
    """A document that cannot be read; ``str()`` says where and why."""


# A flat mapping of one-line scalars (front matter as Jekyll sites write it): `key: value` lines,
# the value plain (not starting with an indicator, holding no ": " or " #"), or quoted without
# escapes or the quote inside. Anything else is left to the full parser.
_FLAT_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: (.*))?")
_QUOTED = re.compile(r'"([^"\\]*)"|\'([^\']*)\'')
_PLAIN_START_REFUSED = frozenset(" -?:,[]{}#&*!|>'\"%@`")
# Line breaks besides \n, tabs and a byte-order mark: what the parser treats its own way.
_PARSER_ONLY = ("\t", "\r", "\x85", "\u2028", "\u2029", "\ufeff")
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()
_STRING = "tag:yaml.org,2002:str"
_FLAT_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")
)


def _tag(plain: str) -> str:
    """The tag the parser gives a plain scalar (PyYAML's resolver is not typed)."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, plain, (True, False))  # type: ignore[no-untyped-call]
    return tag


def load_yaml(text: str, max_nodes: int, first_line: int = 1) -> Any:
    """The value of a one-document YAML text, or YamlError (lines counted from ``first_line``)."""
    flat = flat_mapping(text)
    if flat is not None:
        return flat
    # The measures cost more than the parse: taken only when the text could need them.
    if text.count("[") + text.count("{") > MAX_YAML_DEPTH:
        depth = flow_depth(text)
        if depth > MAX_YAML_DEPTH:
            raise YamlError(f"nests {depth} levels deep (at most {MAX_YAML_DEPTH})")
    may_alias = "&" in text and "*" in text  # an alias needs an anchor
    loader = yaml.CSafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise YamlError(yaml_problem(exc, first_line)) from None
        if node is None:
            return None
        if may_alias and expanded_size(node, max_nodes) > max_nodes:
            raise YamlError(f"expands to more than {max_nodes:,} values (through aliases)")
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise YamlError(yaml_problem(exc, first_line)) from None
        except Exception as exc:  # the constructors' own ValueError, OverflowError, ...
            raise YamlError(f"a value cannot be read: {quoted(str(exc))}") from None
    finally:
        loader.dispose()


def flat_mapping(text: str) -> dict[str, Any] | None:
    """The mapping a flat text of `key: scalar` lines holds, exactly as the YAML parser builds it
    (its own resolver and constructors type each plain scalar); None when the text is anything
    else, or something that needs the parser's messages. Most posts' front matter is flat, and this
    reads it in a fraction of the parser's time (a cold sync reads every post)."""
    if any(mark in text for mark in _PARSER_ONLY) or Reader.NON_PRINTABLE.search(text):
        return None
    mapping: dict[str, Any] = {}
    for line in text.split("\n"):
        if not line:
            continue
        match = _FLAT_LINE.fullmatch(line)
        if match is None:
            return None
        key, value = match.group(1), match.group(2) or ""
        if _tag(key) != _STRING:
            return None  # a key such as `yes` or `2022` is not text
        scalar = _flat_scalar(value)
        if scalar is None:
            return None
        mapping[key] = scalar[0]
    return mapping or None


def _flat_scalar(value: str) -> tuple[Any] | None:
    """(the value,) of a one-line scalar, or None when it is not one this reads."""
    if value[:1] in ("'", '"'):
        quoted = _QUOTED.fullmatch(value)
        if quoted is None:
            return None
        return (quoted.group(1) if quoted.group(1) is not None else quoted.group(2),)
    if value[:1] in _PLAIN_START_REFUSED or ": " in value or " #" in value or value.endswith((" ", ":")):
        return None
    tag = _tag(value)
    if tag == _STRING:
        return (value,)
    if tag not in _FLAT_TAGS:
        return None  # a merge key, `=`: the parser's
    try:
        return (_CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, yaml.ScalarNode(tag, value)),)
    except Exception:  # such as 2022-02-30: the parser says what is wrong with it
        return None


def yaml_problem(exc: yaml.YAMLError, first_line: int = 1) -> str:
    """Where and what: 'line 3, column 7: found character ...' (lines counted from ``first_line``)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return str(problem)
    return f"line {mark.line + first_line}, column {mark.column + 1}: {problem}"


def flow_depth(text: str) -> int:
    """How deep ``[`` and ``{`` nest outside quoted scalars: an upper bound of the composer's depth."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes of the built value, an alias counted once per use; stops counting past ``limit``.

    Each distinct node is measured once (its size remembered), so this is linear in the
    document, however many times its aliases multiply it. A node that contains itself
    expands without end.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[key] = min(total, limit + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            return limit + 1  # recursive: `&a [*a]`
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
