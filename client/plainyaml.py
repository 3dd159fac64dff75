"""YAML from text rx does not trust (rx-api's request bodies, arguments given as `name=value`): yaml.SafeLoader
without anchors and aliases, and without integers longer than INT_MAX_CHARS.

Aliases: a few lines of them stand for an exponentially large document (the "billion laughs"), which any
walk over the result (a check, msgpack) then pays for.  Long integers: YAML 1.1's base-60 ones (`1:2:3...`)
cost time quadratic in their length, and Python refuses decimal ones over 4300 digits with a ValueError.
"""

from __future__ import annotations

from typing import Any

import yaml

INT_MAX_CHARS = 100
"""Longest YAML integer read (a 64-bit one in binary with `_` separators fits)."""


class PlainLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases (*name) are not accepted")
        return super().compose_node(parent, index)

    def construct_yaml_int(self, node: Any) -> Any:
        if len(node.value) > INT_MAX_CHARS:
            raise yaml.constructor.ConstructorError(None, None, "an integer is out of range (64 bits)", node.start_mark)
        return super().construct_yaml_int(node)


PlainLoader.add_constructor("tag:yaml.org,2002:int", PlainLoader.construct_yaml_int)


def load_plain(text: str) -> Any:
    """`text` read with PlainLoader; yaml.YAMLError for anything refused or unreadable (also a date that does
    not exist, or nesting deeper than Python's recursion limit)."""
    try:
        return yaml.load(text, Loader=PlainLoader)  # noqa: S506 - a SafeLoader without aliases
    except (ValueError, RecursionError) as exc:
        raise yaml.YAMLError(str(exc)[:200]) from None
