"""Safe YAML reading with YAML 1.2-like scalars, duplicate-key errors and file:line:column messages.

PyYAML follows YAML 1.1, where ``time: 30:00`` is the integer 1800 (base 60) and ``yes``/``on``
are booleans (and ``010`` is octal). A Slurm time limit or a partition named ``on`` must stay strings, so this loader
only knows ``true``/``false`` as booleans and decimal/hex/octal numbers.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import ConfigError


MAX_VALUES = 100_000   # scalars, lists and mappings in a document once its aliases are expanded
MAX_DEPTH = 100        # nesting levels


class Refused(yaml.MarkedYAMLError):
    """A document refused before it is built: too big once aliases are expanded, too deep, recursive."""


def _check_graph(root: yaml.Node) -> None:
    """Refuse a node graph whose expansion (every alias copied out, as the config's consumers see it) has more
    than MAX_VALUES values or MAX_DEPTH levels, or that contains itself; linear in the graph's size."""
    sizes: dict[int, tuple[int, int]] = {}   # id(node) -> (expanded values, depth)
    open_nodes: set[int] = set()              # the path from the root to the node being expanded
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = [] if isinstance(node, yaml.ScalarNode) else (
            [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else list(node.value))
        if done:
            size = 1 + sum(sizes[id(c)][0] for c in children)
            depth = 1 + max((sizes[id(c)][1] for c in children), default=0)
            if size > MAX_VALUES:
                raise Refused(None, None, f"more than {MAX_VALUES} values once its aliases are expanded "
                                          "(an alias bomb?)", node.start_mark)
            if depth > MAX_DEPTH:
                raise Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", node.start_mark)
            sizes[id(node)] = (size, depth)
            open_nodes.discard(id(node))
            continue
        if id(node) in sizes:
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        for c in children:
            if id(c) in open_nodes:
                raise Refused(None, None, "an alias refers to a node that contains it (recursive alias)",
                              c.start_mark)
            if id(c) not in sizes:
                stack.append((c, False))


class _Loader(yaml.SafeLoader):
    """SafeLoader without sexagesimal numbers and yes/no/on/off booleans; refuses duplicate keys, keys that are
    not scalars, alias bombs and documents nested too deeply."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_graph(node)
        return node

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar (a name or a number), not a list or a mapping",
                    key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1})", mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (
        "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+)$"),
    list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
               r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _construct_int(loader: _Loader, node) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    if text.startswith(("0x", "0X")):
        return int(text, 16)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _load(text: str) -> Any:
    """One YAML document through the safe loader below (what ``yaml.safe_load`` does, with our rules)."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse(text: str, source: str) -> Any:
    """Parse YAML text; ``source`` names it in errors (``file:line:column: problem``)."""
    try:
        return _load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = e.problem or e.context or "invalid YAML"
        kind = "YAML document refused" if isinstance(e, Refused) else "YAML syntax error"
        raise ConfigError(f"{where}: {kind}: {problem}") from None
    except yaml.YAMLError as e:  # no position known
        raise ConfigError(f"{source}: YAML error: {e}") from None
    except RecursionError:       # the composer recurses per level before _check_graph can count them
        raise ConfigError(f"{source}: YAML document refused: nested more than {MAX_DEPTH} levels deep") from None


def parse_scalar(text: str) -> Any:
    """Type a command-line or environment value as YAML would (``3`` -> 3, ``[1, 2]`` -> list).

    Text that is not valid YAML on its own stays a string."""
    try:
        return _load(text)
    except (yaml.YAMLError, RecursionError):
        return text


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
