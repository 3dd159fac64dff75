"""Helpers of the `file` and `archive` modules (private: not in MODULES): path checks, clear
errors for OSError, modes, owners, `file.stats`' shape, `file.find`'s filters."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import stat
import time
from typing import Any, Callable, Iterator

from rx.modules import CommandError

READ_MAX_BYTES = 8_000_000
"""Largest file `file.read` returns (a return string must stay under the wire's 8 MiB limit)."""
EDIT_MAX_BYTES = 64 * 2**20
"""Largest file `file.replace`/`file.search` load into memory."""
FIND_MAX_RESULTS = 100_000


def path_arg(path: Any, what: str = "path") -> str:
    """`path` checked: a non-empty string without NUL, absolute after expanding `~`."""
    if not isinstance(path, str) or not path:
        raise CommandError(f"{what} must be an absolute path, got {path!r}")
    if "\0" in path:
        raise CommandError(f"{what} {path!r} contains a NUL byte")
    expanded = os.path.expanduser(path)
    if not os.path.isabs(expanded):
        raise CommandError(f"{what} {path!r} is relative: give an absolute path")
    return expanded


@contextlib.contextmanager
def oserrors() -> Iterator[None]:
    """Turn an OSError inside the block into a CommandError naming the path and the reason."""
    try:
        yield
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        if exc.filename2:
            where = f"{exc.filename} -> {exc.filename2}: "
        raise CommandError(f"{where}{exc.strerror or exc}") from None


def mode_arg(mode: Any) -> int:
    """A mode as Salt takes it: '0644', '644', 644 (digits read as octal), up to 07777."""
    text = str(mode).strip() if not isinstance(mode, bool) else ""
    if not re.fullmatch(r"0?[0-7]{1,4}", text):
        raise CommandError(f"mode {mode!r} is not an octal mode like 0644")
    return int(text, 8)


def mode_str(st_mode: int) -> str:
    """Salt's mode string: at least four octal digits ('0644', '4755')."""
    return f"{stat.S_IMODE(st_mode):04o}"


def uid_of(user: Any) -> int:
    """A user name or number as a uid; -1 for None or '' (unchanged)."""
    import pwd
    if user in (None, ""):
        return -1
    if isinstance(user, int) or str(user).isdigit():
        return int(user)
    try:
        return pwd.getpwnam(str(user)).pw_uid
    except KeyError:
        raise CommandError(f"user {user!r} does not exist") from None


def gid_of(group: Any) -> int:
    import grp
    if group in (None, ""):
        return -1
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        raise CommandError(f"group {group!r} does not exist") from None


def user_name(uid: int) -> str:
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    import grp
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


_TYPES = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "link"), (stat.S_ISCHR, "char"),
          (stat.S_ISBLK, "block"), (stat.S_ISFIFO, "pipe"), (stat.S_ISSOCK, "socket"))


def type_name(st_mode: int) -> str:
    return next((name for test, name in _TYPES if test(st_mode)), "unknown")


def stats_of(path: str, follow_symlinks: bool = True) -> dict:
    """`file.stats`' shape (Salt's keys)."""
    st = os.stat(path) if follow_symlinks else os.lstat(path)
    return {"inode": st.st_ino, "uid": st.st_uid, "gid": st.st_gid, "group": group_name(st.st_gid),
            "user": user_name(st.st_uid), "atime": st.st_atime, "mtime": st.st_mtime, "ctime": st.st_ctime,
            "size": st.st_size, "mode": mode_str(st.st_mode), "type": type_name(st.st_mode),
            "target": os.path.realpath(path)}


def hash_file(path: str, form: str = "sha256", chunk_size: int = 65536) -> str:
    import hashlib
    if form not in hashlib.algorithms_guaranteed:
        raise CommandError(f"hash type {form!r} is not one of {sorted(hashlib.algorithms_guaranteed)}")
    h = hashlib.new(form)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(max(int(chunk_size), 4096)), b""):
            h.update(chunk)
    return h.hexdigest() if not form.startswith("shake") else h.hexdigest(32)  # type: ignore[call-arg]


def re_flags(flags: Any) -> int:
    """Salt's `flags`: an int (8 = re.MULTILINE) or a list of names (['IGNORECASE', 'MULTILINE'])."""
    if isinstance(flags, int) and not isinstance(flags, bool):
        return flags
    names = flags if isinstance(flags, list) else str(flags).replace(",", " ").split()
    value = 0
    for name in names:
        bit = getattr(re, str(name).upper(), None)
        if not isinstance(bit, re.RegexFlag):
            raise CommandError(f"unknown regex flag {name!r}")
        value |= bit
    return value


def read_limited(path: str, limit: int) -> bytes:
    size = os.path.getsize(path)
    if size > limit:
        raise CommandError(f"{path} is {size} bytes, over the {limit}-byte limit of this function")
    with open(path, "rb") as f:
        return f.read(limit + 1)


def remove_tree(p: str) -> None:
    if os.path.isdir(p) and not os.path.islink(p):
        import shutil
        shutil.rmtree(p)
    else:
        os.remove(p)


def make_dirs(path: str, user: Any, group: Any, mode: Any) -> bool:
    """Create `path` and its missing parents, each with the owner and mode given; False if it existed."""
    uid, gid = uid_of(user), gid_of(group)
    bits = None if mode in (None, "") else mode_arg(mode)
    missing = []
    d = os.path.normpath(path)
    while not os.path.isdir(d):
        if os.path.lexists(d):
            raise CommandError(f"{d} exists and is not a directory")
        missing.append(d)
        d = os.path.dirname(d)
    with oserrors():
        for d in reversed(missing):
            os.mkdir(d)
            if bits is not None:
                os.chmod(d, bits)
            if uid != -1 or gid != -1:
                os.chown(d, uid, gid)
    return bool(missing)


# ------------------------------------------------------------ file.replace, file.search

def edit(path: str, pattern: str, repl: str, count: int, flags: Any, append_if_not_found: bool,
          prepend_if_not_found: bool, not_found_content: str | None, backup: Any, dry_run: bool,
          search_only: bool, show_changes: bool, ignore_if_missing: bool) -> Any:
    """file.replace and file.search: the regex over the whole file (decoded keeping any non-UTF-8 byte)."""
    import re
    p = path_arg(path)
    if not os.path.isfile(p):
        if ignore_if_missing:
            return False
        raise CommandError(f"{p} does not exist or is not a regular file")
    try:
        regex = re.compile(str(pattern), re_flags(flags))
    except re.error as exc:
        raise CommandError(f"bad pattern {pattern!r}: {exc}") from None
    with oserrors():
        old = read_limited(p, EDIT_MAX_BYTES).decode("utf-8", "surrogateescape")
    if search_only:
        return regex.search(old) is not None
    try:
        new, n = regex.subn(str(repl), old, count=int(count))
    except (re.error, IndexError) as exc:
        raise CommandError(f"bad replacement {repl!r}: {exc}") from None
    if n == 0 and (append_if_not_found or prepend_if_not_found):
        add = str(repl if not_found_content is None else not_found_content)
        if add not in old:
            if append_if_not_found:
                new = old + ("" if not old or old.endswith("\n") else "\n") + add + "\n"
            else:
                new = add + "\n" + old
    changed = new != old
    if changed and not dry_run:
        with oserrors():
            if backup:
                import shutil
                shutil.copy2(p, p + str(backup))
            with open(p, "r+b") as f:  # in place: the inode, owner and mode stay
                f.write(new.encode("utf-8", "surrogateescape"))
                f.truncate()
    if not show_changes:
        return changed
    import difflib
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "", ""))


# ------------------------------------------------------------ file.find

FIND_OPTIONS = ("name", "iname", "regex", "iregex", "type", "maxdepth", "mindepth", "user", "group", "size",
                "mtime")
_FIND_TYPES = {"f": "file", "d": "dir", "l": "link", "c": "char", "b": "block", "p": "pipe", "s": "socket"}
_UNITS = {"b": 512, "c": 1, "k": 1024, "m": 2**20, "g": 2**30, "": 1}
_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "": 86400}


def _compare(spec: str, units: dict[str, int], what: str) -> Callable[[float], bool]:
    """'+N' (over), '-N' (under) or 'N' (equal, in whole units) for find's size and mtime."""
    m = re.fullmatch(r"([+-]?)(\d+)([a-z]?)", str(spec).strip().lower())
    if not m or m.group(3) not in units:
        raise CommandError(f"find {what}={spec!r}: use [+-]N with a unit among {sorted(u for u in units if u)}")
    sign, unit = m.group(1), units[m.group(3)]
    n = int(m.group(2))
    if sign == "+":
        return lambda v: v > n * unit
    if sign == "-":
        return lambda v: v < n * unit
    return lambda v: int(v // unit) == n


def find_filter(opts: dict) -> tuple[Callable[[str, str, os.stat_result], bool], int, int]:
    """(test(path, name, lstat), mindepth, maxdepth) for `file.find`'s options."""
    unknown = sorted(set(opts) - set(FIND_OPTIONS))
    if unknown:
        raise CommandError(f"find: unsupported option(s) {unknown}; supported: {', '.join(FIND_OPTIONS)}")
    tests: list[Callable[[str, str, os.stat_result], bool]] = []
    if "name" in opts:
        pat = str(opts["name"])
        tests.append(lambda p, n, st: fnmatch.fnmatchcase(n, pat))
    if "iname" in opts:
        ipat = str(opts["iname"]).lower()
        tests.append(lambda p, n, st: fnmatch.fnmatchcase(n.lower(), ipat))
    for key, fl in (("regex", 0), ("iregex", re.IGNORECASE)):
        if key in opts:
            try:
                rx = re.compile(str(opts[key]), fl)
            except re.error as exc:
                raise CommandError(f"find {key}={opts[key]!r}: {exc}") from None
            tests.append(lambda p, n, st, rx=rx: rx.fullmatch(p) is not None)
    if "type" in opts:
        letters = str(opts["type"])
        if not letters or set(letters) - set(_FIND_TYPES):
            raise CommandError(f"find type={letters!r}: use letters among {''.join(_FIND_TYPES)}")
        wanted = {_FIND_TYPES[c] for c in letters}
        tests.append(lambda p, n, st: type_name(st.st_mode) in wanted)
    if "user" in opts:
        uid = uid_of(opts["user"])
        tests.append(lambda p, n, st: st.st_uid == uid)
    if "group" in opts:
        gid = gid_of(opts["group"])
        tests.append(lambda p, n, st: st.st_gid == gid)
    if "size" in opts:
        size_ok = _compare(opts["size"], _UNITS, "size")
        tests.append(lambda p, n, st: size_ok(st.st_size))
    if "mtime" in opts:
        age_ok = _compare(opts["mtime"], _TIME_UNITS, "mtime")
        now = time.time()
        tests.append(lambda p, n, st: age_ok(now - st.st_mtime))
    try:
        mindepth = int(opts.get("mindepth", 0))
        maxdepth = int(opts.get("maxdepth", 10**6))
    except (TypeError, ValueError):
        raise CommandError("find: mindepth and maxdepth must be whole numbers") from None
    return (lambda p, n, st: all(t(p, n, st) for t in tests)), mindepth, maxdepth


def walk(top: str, maxdepth: int) -> Any:
    """(path, name, lstat, depth) of `top` and of what is under it down to `maxdepth`, not following
    symlinks (unreadable directories are skipped)."""
    try:
        st = os.lstat(top)
    except FileNotFoundError:
        return
    yield top, os.path.basename(top.rstrip("/")) or "/", st, 0
    stack = [(top, 1)] if stat.S_ISDIR(st.st_mode) else []
    while stack:
        directory, depth = stack.pop()
        if depth > maxdepth:
            continue
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            yield path, name, st, depth
            if stat.S_ISDIR(st.st_mode):
                stack.append((path, depth + 1))
