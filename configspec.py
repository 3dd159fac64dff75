"""How a config key is declared once, and what is derived from that one declaration.

A key is a field of a frozen dataclass: its annotation is the type, `setting()` gives
the default, the rule its value must satisfy and a one-line doc.  From those fields
come the loader's checks (type, bool-is-not-int, rule, deprecated names, did-you-mean
for unknown keys), the generated reference (docs/config.md) and `--print-config`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

log = logging.getLogger("rx.config")

T = TypeVar("T")

_SPEC = "rx.setting"

# annotation -> (the YAML value types it accepts, its name in the docs)
_YAML_TYPES: dict[Any, tuple[tuple[type, ...], str]] = {
    str: ((str,), "string"),
    bool: ((bool,), "boolean"),
    int: ((int,), "integer"),
    float: ((int, float), "number"),
    Mapping: ((dict,), "mapping"),
    tuple: ((list,), "list"),
    list: ((list,), "list"),
}


class ConfigError(Exception):
    """A setting that cannot be used; the message names file, key, value and what is allowed."""

    def __init__(self, message: str, *, path: str = "", key: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.key = key


@dataclass(frozen=True)
class Rule:
    """What a value must satisfy beyond its type (`ok`), said in words for errors and docs (`allowed`);
    `canonical` rewrites an accepted value into the one form the code compares against."""

    allowed: str
    ok: Callable[[Any], bool] | None = None
    canonical: Callable[[Any], Any] | None = None


def one_of(*choices: str) -> Rule:
    """A rule that takes exactly one of `choices`."""
    return Rule("one of " + ", ".join(choices) if len(choices) > 1 else choices[0], lambda v: v in choices)


@dataclass(frozen=True)
class Spec:
    """Everything about a key except its name, type and default (which the dataclass field holds)."""

    rule: Rule
    doc: str
    shown_default: str = ""
    under_root: str = ""
    old_names: tuple[str, ...] = ()


def setting(default: Any = dataclasses.MISSING, *, rule: Rule, doc: str, factory: Callable[[], Any] | None = None,
            shown_default: str = "", under_root: str = "", old_names: tuple[str, ...] = ()) -> Any:
    """Declare a config key as a dataclass field.

    `factory` replaces `default` for computed or mutable defaults (`shown_default` then says what the
    docs print, so they do not depend on the machine that generates them).  `under_root` is the
    default path below `root_dir` (`{role}` becomes `master` or `minion`).  `old_names` are
    deprecated spellings still accepted with a warning.
    """
    meta = {_SPEC: Spec(rule, doc, shown_default, under_root, old_names)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Key:
    """One declared key, as the loader and the docs see it."""

    name: str
    types: tuple[type, ...]
    type_name: str
    spec: Spec
    field: dataclasses.Field

    def check(self, path: Path, given_as: str, value: Any) -> Any:
        """The value in canonical form, or ConfigError naming file, key (as written), value and what is allowed."""
        rule = self.spec.rule
        type_ok = isinstance(value, self.types) and not (isinstance(value, bool) and bool not in self.types)
        if not type_ok or (rule.ok is not None and not rule.ok(value)):
            raise ConfigError(f"{path}: {given_as}: {value!r} is not allowed; expected {rule.allowed}",
                              path=str(path), key=given_as)
        return rule.canonical(value) if rule.canonical else value

    def default_text(self, role: str) -> str:
        """The default as the reference shows it."""
        if self.spec.shown_default:
            return self.spec.shown_default
        if self.spec.under_root:
            return f"`{self.spec.under_root.format(role=role)}`"
        factory = self.field.default_factory
        default = self.field.default if factory is dataclasses.MISSING else factory()
        return f"`{default}`" if isinstance(default, str) and default else f"`{json.dumps(default)}`"


@functools.cache
def keys(cls: type) -> dict[str, Key]:
    """The keys `cls` declares with `setting()`, by name, in declaration order."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Key] = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_SPEC)
        if spec is None:
            continue
        hint = hints[f.name]
        types, type_name = _YAML_TYPES[typing.get_origin(hint) or hint]
        out[f.name] = Key(f.name, types, type_name, spec, f)
    return out


def check_settings(path: Path, raw: Mapping[str, Any], cls: type) -> dict[str, Any]:
    """The settings in `raw` that `cls` declares, checked and in canonical form.

    Unknown keys are dropped with a warning (and a "did you mean"); a deprecated name is read as the
    new one with a warning, and loses to the new one when both are given.
    """
    table = keys(cls)
    renamed = {old: key.name for key in table.values() for old in key.spec.old_names}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        key = table.get(renamed.get(name, name))
        if key is None:
            import difflib  # only for a misspelt key's hint: not loaded at every start
            hint = difflib.get_close_matches(str(name), table, n=1)
            log.warning("%s: unknown setting %r ignored%s", path, name, f" (did you mean {hint[0]!r}?)" if hint else "")
            continue
        if name != key.name:
            both = f" (both are set: {key.name} wins, {name} is ignored)" if key.name in raw else ""
            log.warning("%s: %s is deprecated; use %s%s", path, name, key.name, both)
            if both:
                continue
        out[key.name] = key.check(path, name, value)
    return out


def markdown_table(table: Iterable[Key], roles: tuple[str, ...]) -> str:
    """A Markdown table of `table`'s keys: type, default (per role), allowed values and doc."""
    rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for key in table:
        default = ", ".join(dict.fromkeys(key.default_text(role) for role in roles))
        doc = key.spec.doc + "".join(f" (old name `{old}`: still read, with a warning)" for old in key.spec.old_names)
        allowed = key.spec.rule.allowed.replace("\\", "\\\\")  # plain text: a backslash is shown, not an escape
        cells = (f"`{key.name}`", key.type_name, default, allowed, doc)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def narrow(cfg: object, cls: type[T]) -> T:
    """Build the frozen dataclass `cls` from the same-named fields and properties of `cfg`, so a
    component is handed only the settings it uses; TypeError names every field `cfg` lacks."""
    params = getattr(cls, "__dataclass_params__", None)
    if not dataclasses.is_dataclass(cls) or params is None or not params.frozen:
        raise TypeError(f"narrow: {cls.__name__} is not a frozen dataclass")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    missing = [n for n in names if not hasattr(cfg, n)]
    if missing:
        raise TypeError(f"narrow: {type(cfg).__name__} has no {', '.join(missing)} (wanted by {cls.__name__})")
    return cls(**{n: getattr(cfg, n) for n in names})


# ---------------------------------------------------------------- rules of several keys

def dsn_ok(value: str) -> bool:
    """A libpq connection string psycopg can parse (any non-blank string when psycopg is not installed)."""
    if not value:
        return True
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return bool(value.strip())
    try:
        conninfo_to_dict(value)
    except Exception:  # noqa: BLE001 - psycopg.ProgrammingError, but anything it cannot parse is refused
        return False
    return True


def user_exists(name: str) -> bool:
    import pwd
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


DIR = Rule("a directory path")
FILE = Rule("a file path")
PORT = Rule("a port number 1-65535", lambda v: 1 <= v <= 65535)
SECONDS = Rule("a number of seconds > 0", lambda v: v > 0)


def regexes_ok(v: list) -> bool:
    try:
        return all(isinstance(r, str) and re.compile(r) is not None for r in v)
    except re.error:
        return False
