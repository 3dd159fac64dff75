"""Access-control lists in Salt's format (`external_auth`, `publisher_acl`), parsed once into typed
rules and matched without I/O.

A user's rights are a list of entries:

    - 'test.*'                       # a function pattern: on every minion
    - 'web*':                        # a target (compound, as a bare glob or with G@, L@, ...):
        - 'pkg.version'              #   these functions on the minions it matches
        - 'cmd.run':                 #   with argument conditions (Salt's `args`/`kwargs`):
            args: ['ls .*']          #     positional ones by position, each a pattern (null: any)
            kwargs: {cwd: '/tmp'}    #     keyword ones by name
    - '@runner'                      # every runner (also '@wheel', or '@<module>': that module's runners
    - '@jobs': ['list_jobs']         #   and wheel functions; a mapping narrows it to functions)

Function and argument patterns are regular expressions that must match the WHOLE name or value
(Salt lets `test.ping` also match `test.pingx`; rx does not).  A table maps user names (exact, glob
or full regular expression, as Salt compares them) and `group%` entries (OS groups) to such lists;
`*` gives rights to users no other user entry names.  Keys of an eauth's table that start with `^`
are that back end's options (`^filename` for `file`).

Anything not understood is an `AclError` when the config is loaded (the master does not start with
an ACL it cannot read), so nothing unknown ever grants a right.  A target entry grants nothing on a
minion the master only might match (no grains cached): see `MinionRule`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["AclError", "Acl", "ArgRule", "FunRule", "MinionRule", "SpecRule", "UserTable", "parse_acl",
           "parse_table", "name_matches", "RUNNER", "WHEEL"]

RUNNER, WHEEL = "runner", "wheel"
MAX_PATTERN = 1024
"""Longest pattern accepted in an ACL (a regular expression the master compiles)."""


class AclError(ValueError):
    """An ACL entry rx cannot read; the message says where (user, item) and why."""


def _regex(pattern: Any, where: str) -> re.Pattern:
    if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN:
        raise AclError(f"{where}: {pattern!r} is not a pattern (a non-empty string of at most {MAX_PATTERN} characters)")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise AclError(f"{where}: {pattern!r} is not a regular expression: {exc}") from None


@dataclass(frozen=True)
class ArgRule:
    """One condition on a call's arguments: each listed positional argument (None: any value, but present)
    and each named keyword argument must match its pattern (as a string, whole)."""

    args: tuple[re.Pattern | None, ...] = ()
    kwargs: tuple[tuple[str, re.Pattern | None], ...] = ()

    def allows(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
        if len(args) < len(self.args):
            return False
        for rule, value in zip(self.args, args):
            if rule is not None and not rule.fullmatch(str(value)):
                return False
        for name, rule in self.kwargs:
            if name not in kwargs or (rule is not None and not rule.fullmatch(str(kwargs[name]))):
                return False
        return True


@dataclass(frozen=True)
class FunRule:
    """A function pattern (the whole name must match) and, optionally, conditions on the arguments (any
    one of them suffices; none: any arguments)."""

    pattern: re.Pattern
    conditions: tuple[ArgRule, ...] = ()

    def allows(self, fun: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> bool:
        if not self.pattern.fullmatch(fun):
            return False
        return not self.conditions or any(c.allows(args, kwargs or {}) for c in self.conditions)


@dataclass(frozen=True)
class MinionRule:
    """Functions allowed on the minions a target matches (None: on every minion).  The master resolves
    `target` as a compound expression with its matcher; only minions that definitely match count."""

    target: str | None
    funs: tuple[FunRule, ...]

    def allows(self, fun: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
        return any(r.allows(fun, args, kwargs) for r in self.funs)


@dataclass(frozen=True)
class SpecRule:
    """`@runner`, `@wheel` or `@<module>`: master-side functions.  `funs` None allows them all; else a
    function must match one (the full `module.function` for @runner/@wheel, the function name for
    @<module>)."""

    name: str
    funs: tuple[FunRule, ...] | None = None

    def allows(self, form: str, fun: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
        module, _, name = fun.partition(".")
        if self.name in (form, form + "s"):
            subject = fun
        elif self.name == module:
            subject = name
        else:
            return False
        return self.funs is None or any(r.allows(subject, args, kwargs) for r in self.funs)


@dataclass(frozen=True)
class Acl:
    """A user's rights: minion functions (`minions`) and master-side ones (`specs`); `source` is the list
    as written (what salt-api returns as `perms`)."""

    minions: tuple[MinionRule, ...] = ()
    specs: tuple[SpecRule, ...] = ()
    source: tuple = ()

    def __bool__(self) -> bool:
        return bool(self.minions or self.specs)

    def __add__(self, other: "Acl") -> "Acl":
        return Acl(self.minions + other.minions, self.specs + other.specs, self.source + other.source)

    def targets(self) -> list[str]:
        """The target expressions the rules name (to be resolved by the master)."""
        return sorted({r.target for r in self.minions if r.target is not None})

    def allows_minion(self, fun: str, args: Sequence[Any], kwargs: Mapping[str, Any], minion: str,
                      resolved: Mapping[str, frozenset[str]]) -> bool:
        """Whether `fun(*args, **kwargs)` may run on `minion`; `resolved` maps each of `targets()` to the
        minions it definitely matches (a target missing from it grants nothing)."""
        for rule in self.minions:
            if rule.target is None or minion in resolved.get(rule.target, ()):
                if rule.allows(fun, args, kwargs):
                    return True
        return False

    def allows_spec(self, form: str, fun: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
                    ) -> bool:
        """Whether the runner (form "runner") or wheel (form "wheel") function `fun` may run."""
        return any(r.allows(form, fun, args, kwargs or {}) for r in self.specs)


def _arg_rules(value: Any, where: str) -> tuple[ArgRule, ...]:
    conds = value if isinstance(value, list) else [value]
    out = []
    for n, cond in enumerate(conds):
        here = f"{where}, condition {n + 1}"
        if not isinstance(cond, dict) or not cond or set(cond) - {"args", "kwargs"}:
            raise AclError(f"{here}: expected a mapping with `args` (a list) and/or `kwargs` (a mapping)")
        args, kwargs = cond.get("args", []), cond.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise AclError(f"{here}: `args` must be a list and `kwargs` a mapping")
        if not all(isinstance(k, str) for k in kwargs):
            raise AclError(f"{here}: keyword argument names must be strings")
        out.append(ArgRule(tuple(None if a is None else _regex(a, here) for a in args),
                           tuple((k, None if v is None else _regex(v, here)) for k, v in kwargs.items())))
    return tuple(out)


def _fun_rules(value: Any, where: str) -> tuple[FunRule, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise AclError(f"{where}: an empty list of functions grants nothing; remove the entry")
    out = []
    for n, item in enumerate(items):
        here = f"{where}, function {n + 1}"
        if isinstance(item, str):
            out.append(FunRule(_regex(item, here)))
        elif isinstance(item, dict) and len(item) == 1:
            (pattern, conds), = item.items()
            out.append(FunRule(_regex(pattern, here), _arg_rules(conds, f"{here} ({pattern})")))
        else:
            raise AclError(f"{here}: expected a function pattern, or one pattern mapped to argument conditions")
    return tuple(out)


def _check_target(tgt: str, where: str, nodegroups: Mapping[str, Any] | None) -> None:
    from rx.targeting import TargetError, compile_target
    try:
        compile_target(tgt, "compound", nodegroups=nodegroups or {})
    except TargetError as exc:
        raise AclError(f"{where}: target {tgt!r}: {exc}") from None


def parse_acl(entries: Any, where: str, nodegroups: Mapping[str, Any] | None = None) -> Acl:
    """One user's (or group's) list of rights, parsed; AclError for anything not understood."""
    if not isinstance(entries, list):
        raise AclError(f"{where}: expected a list of rights, got {type(entries).__name__}")
    minions: list[MinionRule] = []
    specs: list[SpecRule] = []
    for n, entry in enumerate(entries):
        here = f"{where}, item {n + 1}"
        if isinstance(entry, str):
            if entry.startswith("@"):
                specs.append(SpecRule(_spec_name(entry, here)))
            else:
                minions.append(MinionRule(None, (FunRule(_regex(entry, here)),)))
        elif isinstance(entry, dict) and len(entry) == 1:
            (key, value), = entry.items()
            if not isinstance(key, str) or not key.strip():
                raise AclError(f"{here}: {key!r} is not a target or @name")
            if key.startswith("@"):
                specs.append(SpecRule(_spec_name(key, here), _fun_rules(value, f"{here} ({key})")))
            else:
                _check_target(key, here, nodegroups)
                minions.append(MinionRule(key, _fun_rules(value, f"{here} ({key})")))
        else:
            raise AclError(f"{here}: expected a function pattern, an @name, or one target (or @name) mapped to "
                           "a list of functions")
    return Acl(tuple(minions), tuple(specs), tuple(entries))


def _spec_name(text: str, where: str) -> str:
    name = text[1:]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise AclError(f"{where}: {text!r}: expected @runner, @wheel or @<module>")
    return name


def name_matches(pattern: str, name: str) -> bool:
    """Salt's user-name match: exact, shell glob, or a regular expression matching the whole name."""
    if pattern == name or fnmatch.fnmatchcase(name, pattern):
        return True
    try:
        return re.fullmatch(pattern, name) is not None
    except re.error:
        return False


@dataclass(frozen=True)
class UserTable:
    """One eauth's (or publisher_acl's) users and `group%` entries with their parsed rights, and the
    back end's `^options`."""

    users: tuple[tuple[str, Acl], ...] = ()
    groups: tuple[tuple[str, Acl], ...] = ()
    options: Mapping[str, Any] | None = None

    def rights(self, user: str, groups: Iterable[str] = ()) -> Acl:
        """Everything the entries naming `user` or one of `groups` grant; `*` only if no other user entry
        names the user (as Salt does)."""
        out = Acl()
        named = False
        for pattern, acl in self.users:
            if pattern != "*" and name_matches(pattern, user):
                out, named = out + acl, True
        if not named:
            out = out + next((acl for pattern, acl in self.users if pattern == "*"), Acl())
        member = set(groups)
        for group, acl in self.groups:
            if group in member:
                out = out + acl
        return out

    def names(self) -> list[str]:
        return [u for u, _ in self.users] + [g + "%" for g, _ in self.groups]


def parse_table(table: Any, where: str, nodegroups: Mapping[str, Any] | None = None,
                options: frozenset[str] = frozenset()) -> UserTable:
    """A mapping of user / `group%` to rights; keys starting with `^` are back-end options, each of which
    must be in `options`."""
    if not isinstance(table, dict):
        raise AclError(f"{where}: expected a mapping of user names to rights, got {type(table).__name__}")
    users, groups, opts = [], [], {}
    for key, entries in table.items():
        if not isinstance(key, str) or not key:
            raise AclError(f"{where}: {key!r} is not a user name")
        if key.startswith("^"):
            if key[1:] not in options:
                known = ", ".join("^" + o for o in sorted(options)) or "none"
                raise AclError(f"{where}: unknown option {key!r} (this back end takes: {known})")
            opts[key[1:]] = entries
            continue
        if key.endswith("%"):
            groups.append((key[:-1], parse_acl(entries, f"{where}: {key}", nodegroups)))
        else:
            users.append((key, parse_acl(entries, f"{where}: {key}", nodegroups)))
    return UserTable(tuple(users), tuple(groups), opts)
