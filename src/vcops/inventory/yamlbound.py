"""YAML with limits: what the inventory loader parses, however hostile the file.

PyYAML's ``safe_load`` builds no objects from tags, but it expands aliases (a 466-byte
"billion laughs" becomes 9^9 strings for whatever walks the result), recurses once per
nesting level, and turns any run of digits into a Python ``int`` (5000 digits raise a
bare ``ValueError``). :func:`load_bounded` checks the event stream first (nesting depth,
integer length), then the composed node graph (its size with every alias expanded),
and only then constructs the data.

Example::

    node, data = load_bounded("servers: [{name: kam-01}]\\n")
"""

from __future__ import annotations

import re

import yaml

#: Deepest nesting of sequences and mappings (an inventory needs about six).
MAX_DEPTH = 64
#: Most nodes the document may expand to, counting every alias at full size.
MAX_NODES = 1_000_000
#: Longest integer literal (ports, counts and ids need a handful of digits).
MAX_INT_DIGITS = 30

#: libyaml's parser when PyYAML has it (about 8x faster on an inventory): the same events,
#: nodes and safe constructor as PyYAML's own, which :func:`load_bounded` falls back to
#: for a malformed document, so the error says what PyYAML says.
_FAST: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT_LIKE = re.compile(r"[-+]?(0b|0o|0x)?[0-9_a-fA-F]+")


class YamlLimit(ValueError):
    """The document breaks a limit; ``line`` (1-based) is where, when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def _line(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None


def _check_events(text: str, loader: type[yaml.SafeLoader]) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlLimit(f"nested deeper than {MAX_DEPTH} levels", _line(event))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif (
            isinstance(event, yaml.ScalarEvent)
            and not event.style  # plain: None from PyYAML, "" from libyaml
            and len(event.value) > MAX_INT_DIGITS
            and _INT_LIKE.fullmatch(event.value)
            and any(c.isdigit() for c in event.value)
        ):
            raise YamlLimit(f"an integer with more than {MAX_INT_DIGITS} digits", _line(event))


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in the document with every alias expanded (each node is visited once)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a recursive alias counts once instead of looping
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        total = min(total, MAX_NODES + 1)
        sizes[id(node)] = total
        return total

    return size(root)


def load_bounded(text: str) -> tuple[yaml.Node | None, object]:
    """(the composed node, the constructed data) of one YAML document.

    Raises:
        YamlLimit: a limit is broken (the message names it).
        yaml.YAMLError: the YAML is malformed.
    """
    try:
        return _load(text, _FAST)
    except yaml.YAMLError:
        if _FAST is yaml.SafeLoader:
            raise
        return _load(text, yaml.SafeLoader)  # raises again, in PyYAML's own words


def _load(text: str, loader_class: type[yaml.SafeLoader]) -> tuple[yaml.Node | None, object]:
    _check_events(text, loader_class)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        if _expanded_size(node) > MAX_NODES:
            raise YamlLimit(
                f"aliases expand to more than {MAX_NODES} nodes (an alias bomb?)",
                node.start_mark.line + 1,
            )
        return node, loader.construct_document(node)
    finally:
        loader.dispose()
