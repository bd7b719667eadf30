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


class _Loader(yaml.SafeLoader):
    """SafeLoader without sexagesimal numbers and yes/no/on/off booleans; refuses duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
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
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as e:  # no position known
        raise ConfigError(f"{source}: YAML error: {e}") from None


def parse_scalar(text: str) -> Any:
    """Type a command-line or environment value as YAML would (``3`` -> 3, ``[1, 2]`` -> list).

    Text that is not valid YAML on its own stays a string."""
    try:
        return _load(text)
    except yaml.YAMLError:
        return text


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
