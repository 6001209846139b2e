"""The one YAML loader of hwsim: safe tags only, bounded size, depth and alias expansion, no duplicate keys.

``yaml.safe_load`` executes no tags but accepts a 1 KB alias bomb (``a: &a [x, x]; b: &b [*a, *a]`` ...)
whose expanded value is billions of nodes, a 500-level nested document that overflows the stack in
whoever walks it, and silently keeps the last of two equal keys.  :func:`load_yaml` refuses all three
with one line naming the file and the line, and bounds the file size before reading it
(budgets ``INPUT_BYTES``, ``YAML_NODES``, ``YAML_DEPTH`` of :mod:`hwsim.limits`).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from hwsim.errors import ConfigError, short_text
from hwsim.limits import budget, limit_message

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts expanded nodes and depth, and whose mappings refuse duplicates."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._weights: dict[int, int] = {}  # id(node) -> nodes in its alias-expanded subtree
        self._max_depth = budget("YAML_DEPTH")
        self._max_nodes = budget("YAML_NODES")

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > self._max_depth:
            raise yaml.YAMLError(f"line {mark.line + 1}: {limit_message('YAML_DEPTH', self._depth, 'nesting depth')}")
        is_alias = self.check_event(yaml.events.AliasEvent)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if id(node) not in self._weights:
            if is_alias:  # an alias to a node still being composed
                raise yaml.YAMLError(f"line {mark.line + 1}: recursive alias, not allowed")
            self._weigh(node, mark)
        return node

    def _weigh(self, node, mark) -> int:
        if isinstance(node, ScalarNode):
            weight = 1
        else:
            children = node.value if isinstance(node, SequenceNode) else [n for kv in node.value for n in kv]
            weight = 1
            for child in children:
                weight += self._weights[id(child)]
        if weight > self._max_nodes:
            raise yaml.YAMLError(f"line {mark.line + 1}: "
                                 f"{limit_message('YAML_NODES', weight, 'nodes after alias expansion')}")
        self._weights[id(node)] = weight
        return weight

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: the base constructor reports it
                if first is not None:
                    raise ConstructorError(None, None, f"duplicate key {short_text(repr(key), 80)} "
                                                       f"(first on line {first})", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_text_bounded(path: Path, what: str) -> str:
    """A text input, its size checked before reading; non-UTF-8 bytes named with the file and offset."""
    size = path.stat().st_size  # FileNotFoundError names the path
    if size > budget("INPUT_BYTES"):
        raise ConfigError(str(path), [f"{what}: {limit_message('INPUT_BYTES', size, 'file size in bytes')}"])
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"{what}: not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})"]) from None


def parse_yaml(text: str, *, source: str, what: str):
    """Parse YAML ``text`` with the bounded safe loader; errors become one :class:`ConfigError`."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"{what}: not valid YAML ({short_text(exc)})"]) from None
    except RecursionError:
        raise ConfigError(source, [f"{what}: nested too deeply to parse"]) from None
    finally:
        loader.dispose()


def load_yaml(path, *, what: str):
    """Read and parse the YAML file ``path`` (size checked before reading); return its data."""
    path = Path(path)
    return parse_yaml(read_text_bounded(path, what), source=str(path), what=what)


def load_yaml_mapping(path, *, what: str) -> dict:
    """:func:`load_yaml`, requiring a mapping at the top level."""
    data = load_yaml(path, what=what)
    if not isinstance(data, dict):
        raise ConfigError(str(path), [f"{what}: expected a mapping at the top level, not {type(data).__name__}"])
    return data
