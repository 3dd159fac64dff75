"""Target matching, shared by the master (expected minions) and the minion (self-match).

Both sides compile the same (tgt, tgt_type) with `compile_target`, so they can
never disagree on the grammar.  A compiled target answers for one minion with
three values: True, False, or None when it depends on grains (or a pillar) the
master has not cached (the master then expects the minion and reports it as "no
grains cached" if it does not return).  The minion always knows its grains and
its pillar (one not fetched yet matches nothing), so for it the answer is True or False.

Compound expressions are parsed into a tree (never evaluated as code):
`not` binds tighter than `and`, which binds tighter than `or`; a bare word is a
glob on the id.  Nodegroups are expanded on the master before publishing.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from rx.transport.ids import TARGET_TYPES

DEFAULT_DELIMITER = ":"
MAX_NODEGROUP_DEPTH = 32
MAX_NESTING = 64
"""Deepest parenthesis/`not` nesting in a compound target (the parser recurses)."""

Tri = bool | None  # True / False / unknown (no grains cached)


class TargetError(ValueError):
    """A target expression that cannot be parsed or used; the message says where and why."""


@dataclass(frozen=True)
class MinionFacts:
    """What a matcher may look at: the id, and grains and pillar when known (None = not cached)."""

    id: str
    grains: Mapping[str, Any] | None = field(default=None)
    pillar: Mapping[str, Any] | None = field(default=None)


Matcher = Callable[[MinionFacts], Tri]


@dataclass(frozen=True)
class Target:
    """A compiled target: `match` decides one minion (True, False or None = unknown)."""

    expr: str | list
    tgt_type: str
    match: Matcher
    uses_grains: bool
    uses_pillar: bool = False

    def select(self, minions: Iterable[MinionFacts]) -> tuple[list[str], list[str]]:
        """(expected ids, of which the ones without cached grains that might match)."""
        expected, unknown = [], []
        for m in minions:
            r = self.match(m)
            if r is None:
                expected.append(m.id)
                unknown.append(m.id)
            elif r:
                expected.append(m.id)
        return sorted(expected), sorted(unknown)


# ---------------------------------------------------------------- leaf matchers

def _glob_id(pattern: str) -> Matcher:
    rx = re.compile(fnmatch.translate(pattern))
    return lambda m: rx.match(m.id) is not None


def _compile_regex(pattern: str, what: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TargetError(f"bad regular expression in {what} {pattern!r}: {exc}") from None


def _pcre_id(pattern: str) -> Matcher:
    rx = _compile_regex(pattern, "target")
    return lambda m: rx.match(m.id) is not None


def _list_ids(tgt: str | list) -> Matcher:
    ids = {str(t) for t in tgt} if isinstance(tgt, list) else {t for t in re.split(r"[,\s]+", tgt) if t}
    if not ids:
        raise TargetError("empty list target")
    return lambda m: m.id in ids


def _value_matches(value: Any, test: Callable[[str], bool]) -> bool:
    if isinstance(value, list):
        return any(_value_matches(v, test) for v in value)
    if isinstance(value, dict):
        return any(test(str(k)) for k in value)
    if isinstance(value, bool):
        return test(str(value)) or test(str(value).lower())
    return test("" if value is None else str(value))


def _grain(expr: str, delimiter: str, regex: bool, what: str = "grain") -> Matcher:
    """`key:sub:pattern` on the grains (`what`: or the pillar): every split into a key path and a pattern is tried."""
    parts = expr.split(delimiter)
    if len(parts) < 2:
        raise TargetError(f"{what} target {expr!r} needs the form key{delimiter}value")
    splits: list[tuple[tuple[str, ...], Callable[[str], bool]]] = []
    errors = []
    for i in range(1, len(parts)):
        pattern = delimiter.join(parts[i:])
        if regex:
            try:
                rx = re.compile(pattern)
            except re.error as exc:
                errors.append(f"{pattern!r}: {exc}")
                continue
            splits.append((tuple(parts[:i]), lambda s, rx=rx: rx.match(s) is not None))
        else:
            lowered = pattern.lower()
            splits.append((tuple(parts[:i]), lambda s, p=lowered: fnmatch.fnmatchcase(s.lower(), p)))
    if not splits:
        raise TargetError(f"bad regular expression in {what} target {expr!r}: {'; '.join(errors)}")

    def match(m: MinionFacts) -> Tri:
        data = m.grains if what == "grain" else m.pillar
        if data is None:
            return None
        for path, test in splits:
            value: Any = data
            for key in path:
                if not isinstance(value, dict) or key not in value:
                    break
                value = value[key]
            else:
                if _value_matches(value, test):
                    return True
        return False
    return match


def _ipcidr(expr: str) -> Matcher:
    try:
        net = ipaddress.ip_network(expr.strip(), strict=False)
    except ValueError:
        raise TargetError(f"bad IP address or CIDR {expr!r}") from None
    key = "ipv4" if net.version == 4 else "ipv6"

    def match(m: MinionFacts) -> Tri:
        if m.grains is None:
            return None
        addrs = m.grains.get(key)
        for addr in addrs if isinstance(addrs, list) else [addrs] if isinstance(addrs, str) else []:
            try:
                if ipaddress.ip_address(str(addr)) in net:
                    return True
            except ValueError:
                continue
        return False
    return match


# ---------------------------------------------------------------- compound

_ENGINES: dict[str, str] = {"G": "grain", "P": "grain_pcre", "L": "list", "E": "pcre", "S": "ipcidr",
                            "N": "nodegroup", "I": "pillar", "J": "pillar_pcre"}
_UNSUPPORTED_ENGINES = {"R": "range"}
_OPS = ("and", "or", "not")


@dataclass(frozen=True)
class _Tok:
    text: str
    pos: int


def _tokenize(expr: str) -> list[_Tok]:
    """Split on whitespace.  Leading '(' of a word always opens a group; trailing ')' close one
    when the word has more ')' than '(' (so `E@web(1|2)` keeps its regex group)."""
    toks: list[_Tok] = []
    for m in re.finditer(r"\S+", expr):
        word, pos = m.group(), m.start()
        while word.startswith("("):
            toks.append(_Tok("(", pos))
            word, pos = word[1:], pos + 1
        trail: list[_Tok] = []
        while word.endswith(")") and word.count(")") > word.count("("):
            trail.insert(0, _Tok(")", pos + len(word) - 1))
            word = word[:-1]
        if word:
            toks.append(_Tok(word, pos))
        toks.extend(trail)
    return toks


def as_compound(tgt: str | list, tgt_type: str) -> str:
    """The same target written as one compound term (for narrowing a job to some ids)."""
    if tgt_type == "compound":
        return f"( {tgt} )"
    if tgt_type == "list":
        ids = tgt if isinstance(tgt, list) else [t for t in re.split(r"[,\s]+", tgt) if t]
        return "L@" + ",".join(ids)
    prefix = {"glob": "", "pcre": "E@", "grain": "G@", "grain_pcre": "P@", "ipcidr": "S@", "nodegroup": "N@",
              "pillar": "I@", "pillar_pcre": "J@"}
    if tgt_type not in prefix:
        raise TargetError(f"unknown target type {tgt_type!r}")
    if any(c.isspace() for c in str(tgt)):
        raise TargetError(f"a {tgt_type} target with spaces cannot be narrowed to a list of minions")
    return prefix[tgt_type] + str(tgt)


def narrowed(tgt: str | list, tgt_type: str, ids: list[str]) -> str:
    """A compound target for `ids` that still requires the original target, so a minion that
    was only listed for lack of cached grains checks the real target itself."""
    return f"{as_compound(tgt, tgt_type)} and L@{','.join(ids)}"


class _Parser:
    def __init__(self, expr: str, delimiter: str, build_leaf: Callable[[str, str], "_Node"]) -> None:
        self.expr = expr
        self.toks = _tokenize(expr)
        self.i = 0
        self.depth = 0
        self.delimiter = delimiter
        self.build_leaf = build_leaf

    def _peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _fail(self, expected: str) -> TargetError:
        tok = self._peek()
        where = f"at position {tok.pos + 1} ({tok.text!r})" if tok else "at the end"
        return TargetError(f"malformed compound target {self.expr!r}: expected {expected} {where}")

    def parse(self) -> "_Node":
        if not self.toks:
            raise TargetError("empty compound target")
        node = self._or()
        if self._peek() is not None:
            raise self._fail("'and', 'or' or the end")
        return node

    def _chain(self, op: str, operand: Callable[[], "_Node"]) -> "_Node":
        """operand (op operand)*: one n-ary node, or the operand alone."""
        nodes = [operand()]
        while (t := self._peek()) is not None and t.text == op:
            self.i += 1
            nodes.append(operand())
        return nodes[0] if len(nodes) == 1 else _Node(op, nodes)

    def _or(self) -> "_Node":
        return self._chain("or", self._and)

    def _and(self) -> "_Node":
        return self._chain("and", self._not)

    def _nest(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise TargetError(f"compound target nested deeper than {MAX_NESTING} levels at position {tok.pos + 1}")

    def _not(self) -> "_Node":
        t = self._peek()
        if t is not None and t.text == "not":
            self.i += 1
            self._nest(t)
            node = _Node("not", [self._not()])
            self.depth -= 1
            return node
        return self._primary()

    def _primary(self) -> "_Node":
        t = self._peek()
        if t is None or t.text in ("and", "or", ")"):
            raise self._fail("a target or '('")
        self.i += 1
        if t.text == "(":
            self._nest(t)
            node = self._or()
            if (close := self._peek()) is None or close.text != ")":
                raise self._fail("')'")
            self.i += 1
            self.depth -= 1
            return node
        return self.build_leaf(t.text, f"position {t.pos + 1}")


@dataclass(frozen=True)
class _Node:
    op: str  # and / or / not / leaf
    children: list["_Node"] = field(default_factory=list)
    leaf: Matcher | None = None
    needs: frozenset[str] = frozenset()  # what a leaf looks at besides the id: "grains", "pillar"

    def eval(self, m: MinionFacts) -> Tri:
        if self.op == "leaf":
            assert self.leaf is not None
            return self.leaf(m)
        if self.op == "not":
            r = self.children[0].eval(m)
            return None if r is None else not r
        decisive, unknown = self.op == "or", False  # True decides an `or`, False an `and`
        for r in (c.eval(m) for c in self.children):
            if r is decisive:
                return decisive
            unknown |= r is None
        return None if unknown else not decisive

    def needed(self) -> frozenset[str]:
        return self.needs.union(*(c.needed() for c in self.children))

    def target(self, expr: str, tgt_type: str) -> "Target":
        needs = self.needed()
        return Target(expr, tgt_type, self.eval, "grains" in needs, "pillar" in needs)


def _leaf_builder(delimiter: str, nodegroups: Mapping[str, Any] | None, seen: tuple[str, ...]
                  ) -> Callable[[str, str], _Node]:
    def build(word: str, where: str) -> _Node:
        if len(word) > 2 and word[1] == "@" and word[0].isupper():
            engine, expr = word[0], word[2:]
            if engine in _UNSUPPORTED_ENGINES:
                raise TargetError(f"{_UNSUPPORTED_ENGINES[engine]} targeting ({engine}@ at {where}) is not "
                                  "available in rx")
            tgt_type = _ENGINES.get(engine)
            if tgt_type is None:
                raise TargetError(f"unknown target engine {engine}@ at {where}; use one of "
                                  + ", ".join(f"{e}@" for e in _ENGINES))
            if tgt_type == "nodegroup":
                return _nodegroup_node(expr, delimiter, nodegroups, seen)
            m, needs = _simple(expr, tgt_type, delimiter)
            return _Node("leaf", leaf=m, needs=needs)
        if word in _OPS:
            raise TargetError(f"operator {word!r} at {where} is missing an operand")
        return _Node("leaf", leaf=_glob_id(word))
    return build


def _nodegroup_node(name: str, delimiter: str, nodegroups: Mapping[str, Any] | None, seen: tuple[str, ...]) -> _Node:
    if nodegroups is None:
        raise TargetError(f"nodegroup {name!r} can only be expanded on the master")
    if name in seen:
        raise TargetError("nodegroup cycle: " + " -> ".join((*seen, name)))
    if len(seen) >= MAX_NODEGROUP_DEPTH:
        raise TargetError(f"nodegroups nested deeper than {MAX_NODEGROUP_DEPTH}")
    if name not in nodegroups:
        known = ", ".join(sorted(nodegroups)) or "none are defined"
        raise TargetError(f"unknown nodegroup {name!r} (known: {known})")
    value = nodegroups[name]
    if isinstance(value, list):
        return _Node("leaf", leaf=_list_ids(value))
    if not isinstance(value, str):
        raise TargetError(f"nodegroup {name!r} must be a compound expression or a list of ids")
    return _Parser(value, delimiter, _leaf_builder(delimiter, nodegroups, (*seen, name))).parse()


_NONE, _GRAINS, _PILLAR = frozenset(), frozenset({"grains"}), frozenset({"pillar"})


def _simple(expr: Any, tgt_type: str, delimiter: str) -> tuple[Matcher, frozenset[str]]:
    if tgt_type == "list":
        return _list_ids(expr), _NONE
    if not isinstance(expr, str):
        raise TargetError(f"a {tgt_type} target must be a string")
    if tgt_type == "glob":
        return _glob_id(expr), _NONE
    if tgt_type == "pcre":
        return _pcre_id(expr), _NONE
    if tgt_type in ("grain", "grain_pcre", "pillar", "pillar_pcre"):
        what = tgt_type.split("_")[0]
        return _grain(expr, delimiter, tgt_type.endswith("_pcre"), what), _GRAINS if what == "grain" else _PILLAR
    if tgt_type == "ipcidr":
        return _ipcidr(expr), _GRAINS
    raise TargetError(f"unknown target type {tgt_type!r}")


def compile_target(tgt: str | list, tgt_type: str = "glob", *, delimiter: str = DEFAULT_DELIMITER,
                   nodegroups: Mapping[str, Any] | None = None) -> Target:
    """Compile a target expression; raises TargetError for a bad one.

    `nodegroups` is the master's table; without it (on a minion) N@ is an error,
    which cannot happen for jobs because the master expands nodegroups first.
    """
    if tgt_type not in TARGET_TYPES:
        raise TargetError(f"unknown target type {tgt_type!r} (use one of: {', '.join(TARGET_TYPES)})")
    if isinstance(tgt, str) and not tgt.strip():
        raise TargetError("empty target")
    if not delimiter:
        raise TargetError("the grain delimiter must not be empty")
    if tgt_type == "compound":
        if not isinstance(tgt, str):
            raise TargetError("a compound target must be a string")
        return _Parser(tgt, delimiter, _leaf_builder(delimiter, nodegroups, ())).parse().target(tgt, tgt_type)
    if tgt_type == "nodegroup":
        if not isinstance(tgt, str):
            raise TargetError("a nodegroup target must be a group name")
        return _nodegroup_node(tgt, delimiter, nodegroups, ()).target(tgt, tgt_type)
    matcher, needs = _simple(tgt, tgt_type, delimiter)
    return Target(tgt, tgt_type, matcher, "grains" in needs, "pillar" in needs)


def check_nodegroups(nodegroups: Mapping[str, Any]) -> None:
    """Raise TargetError for the first nodegroup that cannot be used (bad type, syntax, cycle, unknown name)."""
    for name in nodegroups:
        if not isinstance(name, str):
            raise TargetError(f"nodegroup name {name!r} must be a string")
        value = nodegroups[name]
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise TargetError(f"nodegroup {name!r}: a list nodegroup holds minion ids (strings)")
        compile_target(name, "nodegroup", nodegroups=nodegroups)
        expand_nodegroups(name, "nodegroup", nodegroups)


def expand_nodegroups(tgt: str | list, tgt_type: str, nodegroups: Mapping[str, Any]) -> tuple[str | list, str]:
    """Rewrite a target so minions can match it without the master's nodegroup table."""
    if tgt_type == "nodegroup":
        return _expand_group(str(tgt), nodegroups, ()), "compound"
    if tgt_type != "compound" or not isinstance(tgt, str) or "N@" not in tgt:
        return tgt, tgt_type
    words = []
    for tok in _tokenize(tgt):
        if tok.text.startswith("N@"):
            words.append(_expand_group(tok.text[2:], nodegroups, ()))
        else:
            words.append(tok.text)
    return " ".join(words), "compound"


def _expand_group(name: str, nodegroups: Mapping[str, Any], seen: tuple[str, ...]) -> str:
    if name in seen:
        raise TargetError("nodegroup cycle: " + " -> ".join((*seen, name)))
    if name not in nodegroups:
        known = ", ".join(sorted(nodegroups)) or "none are defined"
        raise TargetError(f"unknown nodegroup {name!r} (known: {known})")
    if len(seen) >= MAX_NODEGROUP_DEPTH:
        raise TargetError(f"nodegroups nested deeper than {MAX_NODEGROUP_DEPTH}")
    value = nodegroups[name]
    if isinstance(value, list):
        return "( L@" + ",".join(str(v) for v in value) + " )"
    if not isinstance(value, str):
        raise TargetError(f"nodegroup {name!r} must be a compound expression or a list of ids")
    words = []
    for tok in _tokenize(str(value)):
        words.append(_expand_group(tok.text[2:], nodegroups, (*seen, name)) if tok.text.startswith("N@") else tok.text)
    return "( " + " ".join(words) + " )"
