"""Files and directories on the minion, with Salt's function names, arguments and return shapes.

Every path must be absolute (`~` is expanded first); a relative path or one with a NUL byte is
refused with a clear error, as is any failure of the system call (the path and the reason).
Where rx returns something else than Salt, the function's doc says so.
"""

from __future__ import annotations

import os
import time
from typing import Any

from rx.modules import CommandError
from rx.modules._fileutil import (EDIT_MAX_BYTES, FIND_MAX_RESULTS, READ_MAX_BYTES, edit, find_filter, gid_of,
                                  group_name, hash_file, make_dirs, mode_arg, mode_str, oserrors, path_arg,
                                  re_flags, read_limited, remove_tree, stats_of, uid_of, user_name, walk)

__all__ = ["file_exists", "directory_exists", "read", "write", "append", "prepend", "touch", "copy", "move",
           "remove", "mkdir", "makedirs", "symlink", "readlink", "stats", "get_hash", "get_mode", "set_mode",
           "chown", "get_user", "get_group", "get_uid", "get_gid", "find", "grep", "contains", "replace",
           "search", "line_count", "basename", "dirname"]


def file_exists(path: str) -> bool:
    """Return True if `path` is a regular file (or a symlink to one).

    CLI example: rx '*' file.file_exists /etc/passwd
    """
    return os.path.isfile(path_arg(path))


def directory_exists(path: str) -> bool:
    """Return True if `path` is a directory (or a symlink to one).

    CLI example: rx '*' file.directory_exists /etc
    """
    return os.path.isdir(path_arg(path))


def read(path: str, binary: bool = False) -> str | bytes:
    """Return the contents of the file (bytes with binary=True; otherwise text, bytes that are not
    UTF-8 shown as replacement characters).  Files over 8,000,000 bytes are refused.

    CLI example: rx '*' file.read /etc/hostname
    """
    with oserrors():
        data = read_limited(path_arg(path), READ_MAX_BYTES)
    return data if binary else data.decode("utf-8", "replace")


def _lines(args: tuple) -> str:
    return "".join(f"{a}\n" for a in args)


def write(path: str, *args: Any) -> str:
    """Write each argument as a line to the file, replacing its contents; return 'Wrote N lines to "path"'.

    CLI example: rx '*' file.write /etc/motd 'line one' 'line two'
    """
    p = path_arg(path)
    with oserrors(), open(p, "w", encoding="utf-8") as f:
        f.write(_lines(args))
    return f'Wrote {len(args)} lines to "{p}"'


def append(path: str, *args: Any) -> str:
    """Append each argument as a line to the file (created if missing; a missing final newline is
    added first); return 'Wrote N lines to "path"'.

    CLI example: rx '*' file.append /etc/motd 'one more line'
    """
    p = path_arg(path)
    with oserrors(), open(p, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(_lines(args).encode())
    return f'Wrote {len(args)} lines to "{p}"'


def prepend(path: str, *args: Any) -> str:
    """Insert each argument as a line at the start of the file (created if missing); return
    'Prepended N lines to "path"'.

    CLI example: rx '*' file.prepend /etc/motd 'first line'
    """
    p = path_arg(path)
    with oserrors():
        old = read_limited(p, EDIT_MAX_BYTES) if os.path.exists(p) else b""
        with open(p, "wb") as f:
            f.write(_lines(args).encode() + old)
    return f'Prepended {len(args)} lines to "{p}"'


def touch(name: str, atime: int | None = None, mtime: int | None = None) -> bool:
    """Create the file if missing and set its access and modification times (epoch seconds; now
    if not given); return True.

    CLI example: rx '*' file.touch /var/run/marker
    """
    p = path_arg(name, "name")
    with oserrors():
        with open(p, "ab"):
            pass
        if atime is not None or mtime is not None:
            now = time.time()
            try:
                os.utime(p, (float(now if atime is None else atime), float(now if mtime is None else mtime)))
            except (TypeError, ValueError):
                raise CommandError(f"atime and mtime must be epoch seconds, got {atime!r}, {mtime!r}") from None
        else:
            os.utime(p)
    return True


def copy(src: str, dst: str, recurse: bool = False, remove_existing: bool = False) -> bool:
    """Copy the file `src` to `dst` (with its mode and times); a directory needs recurse=True
    (remove_existing=True empties `dst` first); return True.

    CLI example: rx '*' file.copy /etc/hosts /tmp/hosts.bak
    """
    import shutil
    s, d = path_arg(src, "src"), path_arg(dst, "dst")
    with oserrors():
        if not os.path.lexists(s):
            raise CommandError(f"src {s} does not exist")
        if os.path.isdir(s) and not os.path.islink(s):
            if not recurse:
                raise CommandError(f"src {s} is a directory: pass recurse=True to copy it")
            if remove_existing and os.path.lexists(d):
                remove_tree(d)
            shutil.copytree(s, d, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(s, d, follow_symlinks=False)
    return True


def move(src: str, dst: str) -> dict:
    """Move (rename) `src` to `dst`, across file systems too; return {result, comment}.

    CLI example: rx '*' file.move /tmp/a /tmp/b
    """
    import shutil
    s, d = path_arg(src, "src"), path_arg(dst, "dst")
    with oserrors():
        if not os.path.lexists(s):
            raise CommandError(f"src {s} does not exist")
        shutil.move(s, d)
    return {"result": True, "comment": f"'{s}' moved to '{d}'"}


def remove(path: str) -> bool:
    """Remove the file, symlink or directory tree; return True, or False if nothing was there.
    '/' is refused.

    CLI example: rx '*' file.remove /tmp/old
    """
    p = path_arg(path)
    if os.path.realpath(p) == "/" and not os.path.islink(p):
        raise CommandError("refusing to remove '/'")
    with oserrors():
        if not os.path.lexists(p):
            return False
        remove_tree(p)
    return True


def mkdir(dir_path: str, user: str | None = None, group: str | None = None, mode: str | None = None) -> bool:
    """Create the directory and its missing parents (each with the owner and mode given); return True.

    CLI example: rx '*' file.mkdir /opt/app/data user=www-data mode=0750
    """
    make_dirs(path_arg(dir_path, "dir_path"), user, group, mode)
    return True


def makedirs(path: str, user: str | None = None, group: str | None = None, mode: str | None = None) -> Any:
    """Create the directories leading to `path` (as Salt: the parent of `path`, or `path` itself if
    it ends with '/').  Return True when created (Salt: None), or "Directory '...' already exists".

    CLI example: rx '*' file.makedirs /opt/code/
    """
    p = path_arg(path)
    parent = os.path.normpath(p if p.endswith("/") else os.path.dirname(p))
    if os.path.isdir(parent):
        return f"Directory '{parent}' already exists"
    make_dirs(parent, user, group, mode)
    return True


def symlink(src: str, path: str, force: bool = False) -> bool:
    """Create the symlink `path` pointing to `src`; force=True replaces an existing file or link
    (atomically; never a directory); return True.

    CLI example: rx '*' file.symlink /etc/nginx/sites-available/app /etc/nginx/sites-enabled/app
    """
    if not isinstance(src, str) or not src or "\0" in src:
        raise CommandError(f"src must be a link target, got {src!r}")
    p = path_arg(path)
    with oserrors():
        if os.path.lexists(p):
            if not force:
                raise CommandError(f"{p} already exists: pass force=True to replace it")
            if os.path.isdir(p) and not os.path.islink(p):
                raise CommandError(f"{p} is a directory: not replaced")
            tmp = f"{p}.rx-tmp-{os.getpid()}"
            os.symlink(src, tmp)
            os.replace(tmp, p)
        else:
            os.symlink(src, p)
    return True


def readlink(path: str, canonicalize: bool = False) -> str:
    """Return the target of the symlink (canonicalize=True: the fully resolved path).

    CLI example: rx '*' file.readlink /etc/localtime
    """
    p = path_arg(path)
    if not os.path.islink(p):
        raise CommandError(f"{p} is not a symlink")
    with oserrors():
        return os.path.realpath(p) if canonicalize else os.readlink(p)


def stats(path: str, hash_type: str | None = None, follow_symlinks: bool = True) -> dict:
    """Return {inode, uid, gid, user, group, atime, mtime, ctime, size, mode, type, target} (and
    `sum` with hash_type=), in Salt's shape: mode as '0644', type file/dir/link/char/block/pipe/socket.

    CLI example: rx '*' file.stats /etc/passwd
    """
    p = path_arg(path)
    if not os.path.lexists(p) or (follow_symlinks and not os.path.exists(p)):
        raise CommandError(f"Path not found: {p}")
    with oserrors():
        out = stats_of(p, bool(follow_symlinks))
        if hash_type and out["type"] == "file":
            out["sum"] = hash_file(p, str(hash_type))
    return out


def get_hash(path: str, form: str = "sha256", chunk_size: int = 65536) -> str:
    """Return the hex digest of the file (form: sha256, sha512, sha1, md5, ...).

    CLI example: rx '*' file.get_hash /etc/passwd
    """
    with oserrors():
        return hash_file(path_arg(path), str(form), chunk_size)


def get_mode(path: str, follow_symlinks: bool = True) -> str:
    """Return the permission bits as Salt shows them, e.g. '0644'.

    CLI example: rx '*' file.get_mode /etc/passwd
    """
    p = path_arg(path)
    with oserrors():
        return mode_str((os.stat if follow_symlinks else os.lstat)(p).st_mode)


def set_mode(path: str, mode: str) -> str:
    """Set the permission bits ('0644', '644', 644); return the new mode as '0644'.

    CLI example: rx '*' file.set_mode /etc/app.conf 0640
    """
    p = path_arg(path)
    bits = mode_arg(mode)
    with oserrors():
        os.chmod(p, bits)
        return mode_str(os.stat(p).st_mode)


def chown(path: str, user: str | None, group: str | None = None) -> bool:
    """Set the owner and group (names or ids; None or '' leaves one unchanged); return True (Salt: None).

    CLI example: rx '*' file.chown /srv/app www-data www-data
    """
    p = path_arg(path)
    uid, gid = uid_of(user), gid_of(group)
    with oserrors():
        os.chown(p, uid, gid)
    return True


def _stat(path: str, follow_symlinks: bool) -> os.stat_result:
    p = path_arg(path)
    with oserrors():
        return os.stat(p) if follow_symlinks else os.lstat(p)


def get_user(path: str, follow_symlinks: bool = True) -> str:
    """Return the name of the file's owner (its uid as text if it has no name).

    CLI example: rx '*' file.get_user /etc/passwd
    """
    return user_name(_stat(path, follow_symlinks).st_uid)


def get_group(path: str, follow_symlinks: bool = True) -> str:
    """Return the name of the file's group (its gid as text if it has no name).

    CLI example: rx '*' file.get_group /etc/shadow
    """
    return group_name(_stat(path, follow_symlinks).st_gid)


def get_uid(path: str, follow_symlinks: bool = True) -> int:
    """Return the uid of the file's owner.

    CLI example: rx '*' file.get_uid /etc/passwd
    """
    return _stat(path, follow_symlinks).st_uid


def get_gid(path: str, follow_symlinks: bool = True) -> int:
    """Return the gid of the file's group.

    CLI example: rx '*' file.get_gid /etc/passwd
    """
    return _stat(path, follow_symlinks).st_gid


def find(path: str, **kwargs: Any) -> list:
    """Return the sorted paths under `path` (itself included) that pass every filter given:
    name/iname (glob), regex/iregex (on the whole path), type (letters of fdlcbps), user, group,
    size ([+-]N with b/c/k/m/g), mtime ([+-]N with s/m/h/d/w, default days), mindepth, maxdepth.
    Symlinks are not followed.

    CLI example: rx '*' file.find /var/log type=f name='*.gz' mtime=+30
    """
    top = path_arg(path)
    test, mindepth, maxdepth = find_filter(kwargs)
    found = []
    for p, name, st, depth in walk(top, maxdepth):
        if depth >= mindepth and test(p, name, st):
            found.append(p)
            if len(found) > FIND_MAX_RESULTS:
                raise CommandError(f"find: over {FIND_MAX_RESULTS} results; narrow it (maxdepth=, name=, type=)")
    return sorted(found)


def grep(path: str, pattern: str, *opts: str) -> dict:
    """Run grep for `pattern` in `path` (a glob is expanded) with grep's options (e.g. '-i',
    '-A2'); return {pid, retcode, stdout, stderr} (retcode 1: no match).

    CLI example: rx '*' file.grep /etc/passwd nobody -- -i
    """
    import glob
    import shlex
    from rx.modules._proc import run as run_argv
    p = path_arg(path)
    if not isinstance(pattern, str):
        pattern = str(pattern)
    words = [w for o in opts for w in shlex.split(str(o))]
    bad = [w for w in words if not w.startswith("-")]
    if bad:
        raise CommandError(f"grep options must start with '-', got {bad}")
    files = sorted(glob.glob(p)) or [p]
    r = run_argv(["grep", *words, "-e", pattern, "--", *files], timeout=300)
    return {"pid": r.pid, "retcode": r.retcode, "stdout": r.stdout.rstrip(), "stderr": r.stderr.rstrip()}


def contains(path: str, text: str) -> bool:
    """Return True if the file contains `text` (read in chunks: any size).

    CLI example: rx '*' file.contains /etc/hosts localhost
    """
    p = path_arg(path)
    needle = str(text).encode()
    keep = max(len(needle) - 1, 0)
    tail = b""
    with oserrors(), open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            window = tail + chunk
            if needle in window:
                return True
            tail = window[-keep:] if keep else b""
    return needle == b""


def replace(path: str, pattern: str, repl: str, count: int = 0, flags: Any = 8, bufsize: int = 1,
            append_if_not_found: bool = False, prepend_if_not_found: bool = False,
            not_found_content: str | None = None, backup: Any = ".bak", dry_run: bool = False,
            search_only: bool = False, show_changes: bool = True, ignore_if_missing: bool = False) -> Any:
    """Replace the matches of the regular expression `pattern` with `repl` (count=0: all) in the
    file, in place; flags: Salt's (8 = MULTILINE, or names).  The old file is kept as path+backup
    (backup=False: none).  Return the unified diff (show_changes=False: whether it changed).

    CLI example: rx '*' file.replace /etc/ssh/sshd_config '^#?PermitRootLogin .*' 'PermitRootLogin no'
    """
    return edit(path, pattern, repl, count, flags, append_if_not_found, prepend_if_not_found,
                 not_found_content, backup, dry_run, search_only, show_changes, ignore_if_missing)


def search(path: str, pattern: str, flags: Any = 8, bufsize: int = 1, ignore_if_missing: bool = False,
           multiline: bool = False) -> bool:
    """Return True if the regular expression `pattern` matches in the file (multiline=True adds
    MULTILINE and DOTALL).

    CLI example: rx '*' file.search /etc/ssh/sshd_config '^PermitRootLogin no'
    """
    import re
    fl = re_flags(flags) | (re.MULTILINE | re.DOTALL if multiline else 0)
    return edit(path, pattern, "", 0, fl, False, False, None, False, True, True, False, ignore_if_missing)


def line_count(path: str) -> int:
    """Return the number of lines in the file (a last line without a newline counts).

    CLI example: rx '*' file.line_count /etc/passwd
    """
    n, last = 0, b"\n"
    with oserrors(), open(path_arg(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def basename(path: str) -> str:
    """Return the last component of `path` (text only: the path need not exist or be absolute).

    CLI example: rx '*' file.basename /etc/ssh/sshd_config
    """
    return os.path.basename(str(path))


def dirname(path: str) -> str:
    """Return `path` without its last component (text only).

    CLI example: rx '*' file.dirname /etc/ssh/sshd_config
    """
    return os.path.dirname(str(path))
