"""Compiling one minion's pillar: the top files say which sls files are its; they are rendered in order
and merged, then the external pillars on top.

Top files: the `top.sls` of each environment (the first of its roots that has one), or only that of the
minion's `pillarenv`.  Salt's shape:

    base:                        # the environment whose roots hold the files named below
      '*':                       # a target: compound by default (a bare word is a glob on the id)
        - common                 # common.sls or common/init.sls
      'os:Debian':
        - match: grain           # glob, pcre, list, grain, grain_pcre, ipcidr, compound or nodegroup
        - debian
      'db*':
        - db.secrets
        - ignore_missing: true   # a file of this target that does not exist is skipped, not an error

Targets are matched with the minion's id and the grains it sent; pillar targets (`I@`, `J@`) cannot be
used in a pillar top file.  An environment and target named in two top files: the later file's entry
wins.  Targets are taken in file order, or by `order: N` (lowest first); an sls named again renders once.

Merging (`pillar_source_merging_strategy`): `smart` and `recurse` (Salt's default) merge maps key by key
at every depth, the later file winning where both hold a value that is not a map; `overwrite` lets a later
file replace whole top-level keys.  `pillar_merge_lists` joins lists (the later one's new items appended)
instead of replacing them.  A file's `include:` list is rendered first, its files merged in order, then the
including file on top of them; an include may be relative (`.sibling`, `..up`) and may nest the included
data under a key (`- users: {key: people}`) or give it Jinja variables (`defaults: {...}`).

Any error (a file missing or not a map, a render error, a bad target, a name that leaves the root) fails
the whole compile with the file and line: no partial pillar is ever sent.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from rx.master.pillar.ext import ExtPillars
from rx.master.pillar.render import Renderer, traverse
from rx.master.pillar.sources import PillarError, Roots, Source, sls_parts
from rx.targeting import MinionFacts, TargetError, compile_target

TOP = "top.sls"
STRATEGIES = ("smart", "recurse", "overwrite")
MAX_INCLUDE_DEPTH = 32
TOP_MATCHERS = ("glob", "pcre", "list", "grain", "grain_pcre", "ipcidr", "compound", "nodegroup")
_TOP_OPTIONS = {"match", "ignore_missing", "order"}


@dataclass(frozen=True)
class PillarSettings:
    """What the compiler needs of the master config."""

    roots: Mapping[str, list[str]]
    strategy: str = "smart"
    merge_lists: bool = False
    nodegroups: Mapping[str, Any] = field(default_factory=dict)


def merge(dest: Mapping, upd: Mapping, strategy: str = "smart", merge_lists: bool = False) -> dict:
    """`upd` merged over `dest` (neither is changed)."""
    out = dict(dest)
    for key, value in upd.items():
        old = out.get(key)
        if strategy != "overwrite" and isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge(old, value, strategy, merge_lists)
        elif merge_lists and isinstance(old, list) and isinstance(value, list):
            out[key] = old + [v for v in value if v not in old]
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class _Entry:
    """One target of a top file: the sls names it gives a matching minion."""

    env: str
    names: tuple[str, ...]
    matches: bool
    ignore_missing: bool
    order: int
    where: str
    line: int


@dataclass
class _Run:
    """One compile's state."""

    minion_id: str
    grains: dict
    pillar: dict = field(default_factory=dict)
    seen: set = field(default_factory=set)


class Compiler:
    """Compiles pillars from `pillar_roots`; one per worker process (its Jinja caches are reused)."""

    def __init__(self, settings: PillarSettings, ext: ExtPillars | None = None) -> None:
        if settings.strategy not in STRATEGIES:
            raise ValueError(f"pillar_source_merging_strategy {settings.strategy!r}: use one of {STRATEGIES}")
        self.settings = settings
        self.roots = Roots(settings.roots)
        self.renderer = Renderer(self.roots)
        self.ext = ext if ext is not None else ExtPillars()

    def compile(self, minion_id: str, grains: dict, pillarenv: str = "") -> dict:
        """The pillar of `minion_id`; PillarError (file and line) if any part of it cannot be compiled."""
        if pillarenv and pillarenv not in self.roots.roots:
            raise PillarError("pillarenv", f"environment {pillarenv!r} is not in the master's pillar_roots "
                                           f"(it has: {', '.join(self.roots.envs()) or 'none'})")
        run = _Run(minion_id, grains)
        for entry in self._top(run, pillarenv):
            for name in entry.names:
                if (entry.env, name) in run.seen:
                    continue
                src = self.roots.sls(entry.env, name, entry.where)
                if src is None:
                    if entry.ignore_missing:
                        continue
                    raise PillarError(entry.where, f"sls {name!r} is not in environment {entry.env!r}: no "
                                                   f"{_path(name)}.sls nor {_path(name)}/init.sls in its roots",
                                      entry.line)
                run.pillar = self._merge(run.pillar, self._sls(run, src, name, {}, 0))
        return self.ext.apply(minion_id, grains, run.pillar, self._merge)

    def _merge(self, dest: Mapping, upd: Mapping) -> dict:
        return merge(dest, upd, self.settings.strategy, self.settings.merge_lists)

    def _context(self, run: _Run, env: str, sls: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
        so_far = copy.deepcopy(run.pillar)
        helpers = {"grains.get": lambda key, default="", delimiter=":": traverse(run.grains, key, default, delimiter),
                   "pillar.get": lambda key, default="", delimiter=":": traverse(so_far, key, default, delimiter)}
        return {**defaults, "grains": run.grains, "id": run.minion_id, "saltenv": env, "sls": sls,
                "pillar": so_far, "salt": helpers}

    # ------------------------------------------------------------ top files

    def _top(self, run: _Run, pillarenv: str) -> list[_Entry]:
        """The matching entries of every environment's top file (only `pillarenv`'s, if set), in order."""
        entries: dict[tuple[str, str], _Entry] = {}
        for env in [pillarenv] if pillarenv else self.roots.envs():
            src = self.roots.find(env, [TOP])
            if src is None:
                continue
            text, rendered = self.renderer.render_text(src, self._context(run, env, "top", {}))
            data, lines = self.renderer.load(src, text, rendered), _KeyLines(text)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise PillarError(src.shown, f"must be a map of environment to targets, not a {_kind(data)}")
            for section, targets in data.items():
                if section == "include" or (pillarenv and section != pillarenv):
                    continue  # with a pillarenv, only its section counts
                if section not in self.roots.roots:
                    raise PillarError(src.shown, f"environment {section!r} is not in the master's pillar_roots",
                                      lines.line([section]))
                if targets is None:
                    continue
                if not isinstance(targets, dict):
                    raise PillarError(src.shown, f"environment {section!r} must map targets to lists of sls names, "
                                                 f"not be a {_kind(targets)}", lines.line([section]))
                for tgt, items in targets.items():
                    entries[(section, str(tgt))] = self._entry(run, src, lines, section, tgt, items)
        ordered = sorted(entries.values(), key=lambda e: e.order)
        return [e for e in ordered if e.matches]

    def _entry(self, run: _Run, src: Source, lines: "_KeyLines", env: str, tgt: Any, items: Any) -> _Entry:
        def fail(message: str) -> PillarError:
            return PillarError(src.shown, f"target {str(tgt)[:200]!r}: {message}", lines.line([env, str(tgt)]))
        if not isinstance(tgt, str):
            raise fail("a target must be a string")
        if not isinstance(items, list):
            raise fail(f"must be a list of sls names (and match:, ignore_missing:, order:), not a {_kind(items)}")
        names, options = [], {"match": "compound", "ignore_missing": False, "order": 0}
        for item in items:
            if isinstance(item, str):
                try:
                    sls_parts(item, src.shown)
                except PillarError as exc:
                    raise fail(exc.reason) from None
                names.append(item)
            elif isinstance(item, dict) and item and set(item) <= _TOP_OPTIONS:
                options.update(item)
            else:
                raise fail(f"{str(item)[:80]!r} is neither an sls name nor one of match:, ignore_missing:, order:")
        match, order = options["match"], options["order"]
        if match not in TOP_MATCHERS:
            why = " (pillar targets cannot be used to compile pillar)" if match in ("pillar", "pillar_pcre") else ""
            raise fail(f"match {str(match)[:40]!r} is not one of {', '.join(TOP_MATCHERS)}{why}")
        if not isinstance(order, int) or isinstance(order, bool):
            raise fail("order must be a whole number")
        try:
            target = compile_target(tgt, match, nodegroups=self.settings.nodegroups)
        except TargetError as exc:
            raise fail(str(exc)) from None
        if target.uses_pillar:
            raise fail("pillar targets (I@, J@) cannot be used to compile pillar")
        matches = bool(target.match(MinionFacts(run.minion_id, run.grains)))
        return _Entry(env, tuple(names), matches, bool(options["ignore_missing"]), order, src.shown,
                      lines.line([env, str(tgt)]) if matches else 0)

    # ------------------------------------------------------------ sls files and includes

    def _sls(self, run: _Run, src: Source, name: str, defaults: Mapping[str, Any], depth: int) -> dict:
        """The data of one sls file with its includes merged under it."""
        run.seen.add((src.env, name))
        data = self.renderer.render(src, self._context(run, src.env, name, defaults))
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise PillarError(src.shown, f"is not a map but a {_kind(data)}: a pillar file must be a YAML mapping "
                                         "(key: value)")
        bad = next((k for k in data if not isinstance(k, str)), None)
        if bad is not None:
            raise PillarError(src.shown, f"top-level key {str(bad)[:80]!r} is not a string")
        includes = data.pop("include", None) or []
        if not isinstance(includes, list):
            raise PillarError(src.shown, "include: must be a list of sls names")
        under: dict = {}
        for item in includes:
            inc, key, inc_defaults = self._include(src, item)
            inc_name = _resolve(inc, name, src)
            if (src.env, inc_name) in run.seen:
                continue  # rendered already in this compile (an include cycle ends here)
            if depth >= MAX_INCLUDE_DEPTH:
                raise PillarError(src.shown, f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
            inc_src = self.roots.sls(src.env, inc_name, src.shown)
            if inc_src is None:
                raise PillarError(src.shown, f"include {inc_name!r}: no {_path(inc_name)}.sls nor "
                                             f"{_path(inc_name)}/init.sls in environment {src.env!r}")
            sub = self._sls(run, inc_src, inc_name, inc_defaults, depth + 1)
            for part in reversed(key.split(":") if key else []):
                sub = {part: sub}
            under = self._merge(under, sub)
        return self._merge(under, data)

    @staticmethod
    def _include(src: Source, item: Any) -> tuple[str, str, Mapping[str, Any]]:
        """(name, key, defaults) of one `include:` item: `name`, or `{name: {key: k, defaults: {...}}}`."""
        if isinstance(item, str):
            return item, "", {}
        if isinstance(item, dict) and len(item) == 1:
            (name, opts), = item.items()
            opts = opts or {}
            if isinstance(name, str) and isinstance(opts, dict) and set(opts) <= {"key", "defaults"} \
                    and isinstance(opts.get("key", ""), str) and isinstance(opts.get("defaults", {}), dict):
                return name, opts.get("key", ""), opts.get("defaults", {})
        raise PillarError(src.shown, f"include item {str(item)[:80]!r}: give an sls name, or "
                                     "{name: {key: ..., defaults: {...}}}")


def _resolve(inc: str, current: str, src: Source) -> str:
    """An include's sls name; a leading `.` is relative to the including file's package, each further `.`
    one level up (never above the root)."""
    if not isinstance(inc, str) or not inc.startswith("."):
        return inc
    rest = inc.lstrip(".")
    package = current.split(".") if src.rel.endswith("init.sls") else current.split(".")[:-1]
    up = len(inc) - len(rest) - 1
    if not rest or up > len(package):
        raise PillarError(src.shown, f"include {inc[:80]!r} goes above the pillar root (or names nothing)")
    return ".".join([*package[:len(package) - up], rest])


def _path(name: str) -> str:
    return name.replace(".", "/")


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value),
                                                                                              type(value).__name__)


class _KeyLines:
    """Where the keys of a YAML text are, for errors to point at (the text is composed once, when first asked)."""

    def __init__(self, text: str) -> None:
        self.text = text

    @functools.cached_property
    def root(self) -> Any:
        try:
            return yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return None

    def line(self, path: list[Any]) -> int:
        """The line of the mapping key at `path` (0 if not found)."""
        return _key_line(self.root, path)


def _key_line(node: Any, path: list[Any]) -> int:
    line = 0
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            return line
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                line, node = k.start_mark.line + 1, v
                break
        else:
            return line
    return line
