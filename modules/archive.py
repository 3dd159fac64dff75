"""Tar and zip archives, with Python's tarfile and zipfile (no external tools), Salt's names.

Extraction refuses an archive with a member that would land outside the destination: an absolute
name, a `..` that climbs out, a link (symbolic or hard) whose target is outside, a device file, or
a path through a symlink that leads out (a symlink already in the destination, or one the archive
makes).  The check runs on every member before anything is written, and again while writing (so
a link made by an earlier member cannot be used by a later one).  Extracted files belong to the
user the minion runs as (like `tar --no-same-owner`); setuid/setgid bits are dropped.
"""

from __future__ import annotations

import builtins
import glob
import os
import stat
from typing import Any

from rx.modules import CommandError
from rx.modules._fileutil import oserrors, path_arg

__all__ = ["tar", "untar", "zip", "unzip", "list"]

_TAR_MODES = {"c": "create", "x": "extract", "t": "list"}
_TAR_COMPRESSION = {"z": "gz", "j": "bz2", "J": "xz"}
_TAR_IGNORED = set("vfpa")
_AUTO = {".gz": "gz", ".tgz": "gz", ".bz2": "bz2", ".tbz2": "bz2", ".tbz": "bz2", ".xz": "xz", ".txz": "xz"}


def _sources(sources: Any, cwd: str | None) -> builtins.list[tuple[str, str]]:
    """(path on disk, name in the archive) of each source: a list or a comma-separated string, globs
    expanded; a relative source is taken from `cwd` and keeps its relative name, an absolute one is
    named without its leading '/' (as tar does)."""
    if isinstance(sources, str):
        items = [s.strip() for s in sources.split(",") if s.strip()]
    elif isinstance(sources, (builtins.list, tuple)):
        items = [str(s) for s in sources]
    else:
        items = []
    if not items:
        raise CommandError("sources: give the files and directories to pack (a list or 'a,b,c')")
    base = path_arg(cwd, "cwd") if cwd not in (None, "") else None
    out = []
    for item in items:
        if "\0" in item:
            raise CommandError(f"source {item!r} contains a NUL byte")
        if not os.path.isabs(item) and base is None:
            raise CommandError(f"source {item!r} is relative: give cwd= or an absolute path")
        full = os.path.join(base or "/", item)
        matches = sorted(glob.glob(full)) or [full]
        for m in matches:
            if not os.path.lexists(m):
                raise CommandError(f"source {m} does not exist")
            name = os.path.relpath(m, base) if base and not os.path.isabs(item) else m.lstrip("/")
            out.append((m, os.path.normpath(name)))
    return out


def _inside(dest: str, path: str) -> bool:
    return os.path.commonpath([dest, path]) == dest


def _check_member(dest: str, name: str, link: str | None, kind: str) -> None:
    """Refuse a member whose name, or whose link target, is outside `dest` (lexically: `dest` is real)."""
    if not name or "\0" in name or name.startswith("/") or os.path.isabs(name):
        raise CommandError(f"refusing the archive: member {name!r} has an absolute name")
    target = os.path.normpath(os.path.join(dest, name))
    if not _inside(dest, target):
        raise CommandError(f"refusing the archive: member {name!r} would be written outside {dest}")
    if link is None:
        return
    if kind == "symlink":
        if os.path.isabs(link):
            raise CommandError(f"refusing the archive: symlink {name!r} points to the absolute path {link!r}")
        to = os.path.normpath(os.path.join(os.path.dirname(target), link))
    else:  # a hard link names another member
        to = os.path.normpath(os.path.join(dest, link))
    if not _inside(dest, to):
        raise CommandError(f"refusing the archive: {kind} {name!r} points outside {dest} ({link!r})")


def _dest(dest: Any) -> str:
    d = path_arg(dest, "dest")
    with oserrors():
        os.makedirs(d, exist_ok=True)
    return os.path.realpath(d)


def _parse_tar_options(options: Any) -> tuple[str, str | None]:
    letters = str(options or "").strip().lstrip("-")
    if not letters:
        raise CommandError("tar options must not be empty (e.g. czf, xf, tf)")
    unknown = sorted(set(letters) - set(_TAR_MODES) - set(_TAR_COMPRESSION) - _TAR_IGNORED)
    if unknown:
        raise CommandError(f"tar options {options!r}: rx does not support {''.join(unknown)!r}; it takes one of "
                           "c (create), x (extract), t (list), with z/j/J (gzip/bzip2/xz) and a (by suffix); "
                           "v, f and p are accepted and change nothing")
    modes = [_TAR_MODES[c] for c in letters if c in _TAR_MODES]
    packs = {_TAR_COMPRESSION[c] for c in letters if c in _TAR_COMPRESSION}
    if len(modes) != 1 or len(packs) > 1:
        raise CommandError(f"tar options {options!r}: give exactly one of c, x, t and at most one of z, j, J")
    return modes[0], (packs.pop() if packs else "auto" if "a" in letters else None)


def tar(options: str, tarfile: str, sources: Any = None, dest: str | None = None,
        cwd: str | None = None) -> builtins.list:
    """Create (c), extract (x) or list (t) a tar archive; z, j, J compress with gzip, bzip2, xz
    (reading detects it).  Return the member names packed, extracted or listed (Salt returns tar's
    output lines).  `sources` (create): a list or 'a,b', globs allowed, relative ones from `cwd`.
    `dest` (extract): created if missing; unsafe archives are refused (see the module's doc).

    CLI example: rx '*' archive.tar czf /tmp/etc.tgz /etc/ssh,/etc/hosts
    """
    import tarfile as tf
    mode, pack = _parse_tar_options(options)
    path = path_arg(tarfile, "tarfile")
    if mode == "extract":
        return untar(path, dest if dest not in (None, "") else cwd)
    with oserrors():
        if mode == "list":
            return list(path, archive_format="tar")
        if pack == "auto":
            pack = next((v for k, v in _AUTO.items() if path.endswith(k)), None)
        names = []
        try:
            with tf.open(path, f"w:{pack}" if pack else "w") as out:
                for disk, name in _sources(sources, cwd):
                    out.add(disk, arcname=name, recursive=True, filter=lambda m: names.append(m.name) or m)
        except tf.TarError as exc:
            raise CommandError(f"{path}: {exc}") from None
    return names


def untar(tarfile: str, dest: str) -> builtins.list:
    """Extract the tar archive (any compression) into `dest` (created if missing); return the
    member names.  An archive with a member that would land outside `dest` is refused before
    anything is written.  (rx's shorthand for `archive.tar xf tarfile dest=...`.)

    CLI example: rx '*' archive.untar /tmp/app.tgz /opt/app
    """
    import tarfile as tf
    path = path_arg(tarfile, "tarfile")
    target = _dest(dest)
    with oserrors():
        try:
            with tf.open(path, "r:*") as arc:
                members = arc.getmembers()
                for m in members:
                    if m.isdev():
                        raise CommandError(f"refusing the archive: member {m.name!r} is a device file")
                    kind = "symlink" if m.issym() else "hard link" if m.islnk() else ""
                    _check_member(target, m.name, m.linkname if kind else None, kind)
                arc.extractall(target, members=members, filter="data")
        except tf.FilterError as exc:
            raise CommandError(f"refusing the rest of the archive: {exc}") from None
        except tf.TarError as exc:
            raise CommandError(f"{path}: not a readable tar archive: {exc}") from None
    return [m.name for m in members]


def zip(zip_file: str, sources: Any, cwd: str | None = None, zip64: bool = False) -> builtins.list:
    """Create the zip archive `zip_file` from `sources` (a list or 'a,b', globs allowed;
    directories recursively; symlinks stored as links); return the names added.  A relative source
    is taken from `cwd` and keeps its relative name; an absolute one loses its leading '/'.  ZIP64
    (archives over 4 GB) is always on: `zip64` is accepted for Salt's sake.

    CLI example: rx '*' archive.zip /tmp/logs.zip /var/log/syslog,/var/log/auth.log
    """
    import zipfile
    path = path_arg(zip_file, "zip_file")
    names: builtins.list[str] = []
    with oserrors(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as out:
        for disk, name in _sources(sources, cwd):
            for d, n in _walk(disk, name):
                if os.path.islink(d):
                    info = zipfile.ZipInfo(n)
                    info.external_attr = (stat.S_IFLNK | 0o777) << 16
                    out.writestr(info, os.readlink(d))
                elif os.path.isdir(d):
                    out.write(d, n + "/")
                    n += "/"
                else:
                    out.write(d, n)
                names.append(n)
    return names


def _walk(disk: str, name: str) -> Any:
    yield disk, name
    if os.path.isdir(disk) and not os.path.islink(disk):
        for entry in sorted(os.listdir(disk)):
            yield from _walk(os.path.join(disk, entry), f"{name}/{entry}")


def unzip(zip_file: str, dest: str, excludes: Any = None, trim_output: Any = False, password: str | None = None,
          extract_perms: bool = True) -> builtins.list:
    """Extract the zip archive into `dest` (created if missing), except the names in `excludes`
    (a list or 'a,b'); return the names extracted (trim_output=N: the first N).  Permissions are
    kept (extract_perms=False: not); an unsafe archive is refused (see the module's doc).

    CLI example: rx '*' archive.unzip /tmp/app.zip /opt/app
    """
    import zipfile
    path = path_arg(zip_file, "zip_file")
    target = _dest(dest)
    skip = set(excludes.split(",") if isinstance(excludes, str) else excludes or [])
    done: builtins.list[str] = []
    with oserrors():
        try:
            with zipfile.ZipFile(path) as arc:
                members = [m for m in arc.infolist() if m.filename not in skip]
                links = {m.filename: arc.read(m, pwd=_pwd(password)).decode("utf-8", "replace")
                         for m in members if stat.S_ISLNK(m.external_attr >> 16)}
                for m in members:
                    _check_member(target, m.filename, links.get(m.filename), "symlink")
                for m in members:
                    _extract_one(arc, m, target, links, password, extract_perms)
                    done.append(m.filename)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError) as exc:
            raise CommandError(f"{path}: cannot extract: {exc}") from None
    n = 100 if trim_output is True else int(trim_output or 0)
    return done[:n] if n > 0 else done


def _pwd(password: Any) -> bytes | None:
    return None if password in (None, "") else str(password).encode()


def _extract_one(arc: Any, m: Any, target: str, links: dict, password: Any, extract_perms: bool) -> None:
    """Write one member, after checking that the real path of its directory is still inside `target`."""
    out = os.path.join(target, m.filename)
    parent = os.path.dirname(out.rstrip("/"))
    os.makedirs(parent, exist_ok=True)
    if not _inside(target, os.path.realpath(parent)):
        raise CommandError(f"refusing the rest of the archive: {m.filename!r} would be written through a "
                           f"symlink that leads outside {target}")
    if m.filename in links:
        if os.path.lexists(out):
            os.remove(out)
        os.symlink(links[m.filename], out)
        return
    if m.is_dir():
        os.makedirs(out, exist_ok=True)
    else:
        if os.path.islink(out):
            os.remove(out)
        with arc.open(m, pwd=_pwd(password)) as src, open(out, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    mode = (m.external_attr >> 16) & 0o777
    if extract_perms and mode:
        os.chmod(out, mode)


def list(name: str, archive_format: str | None = None, verbose: bool = False) -> Any:
    """Return the member names of a tar (any compression) or zip archive, directories ending in
    '/'; verbose=True: {dirs, files, links, top_level_dirs, top_level_files, top_level_links}.
    `archive_format` (tar or zip) overrides the detection.

    CLI example: rx '*' archive.list /tmp/app.tgz
    """
    import tarfile as tf
    import zipfile
    path = path_arg(name, "name")
    if "://" in str(name):
        raise CommandError("archive.list takes a path on the minion (remote sources need the file server, #12)")
    fmt = archive_format or ("zip" if zipfile.is_zipfile(path) else "tar" if _is_tar(path) else None)
    if fmt not in ("tar", "zip"):
        raise CommandError(f"{path}: not a tar or zip archive" if fmt is None else
                           f"archive_format {archive_format!r}: rx reads tar and zip")
    entries: builtins.list[tuple[str, str]] = []
    with oserrors():
        try:
            if fmt == "zip":
                with zipfile.ZipFile(path) as arc:
                    for m in arc.infolist():
                        kind = "links" if stat.S_ISLNK(m.external_attr >> 16) else "dirs" if m.is_dir() else "files"
                        entries.append((m.filename, kind))
            else:
                with tf.open(path, "r:*") as arc:
                    for t in arc.getmembers():
                        kind = "dirs" if t.isdir() else "links" if t.issym() or t.islnk() else "files"
                        entries.append((t.name + "/" if kind == "dirs" else t.name, kind))
        except (tf.TarError, zipfile.BadZipFile) as exc:
            raise CommandError(f"{path}: cannot read the archive: {exc}") from None
    if not verbose:
        return [n for n, _ in entries]
    out: dict[str, builtins.list[str]] = {k: [] for k in ("dirs", "files", "links", "top_level_dirs",
                                                          "top_level_files", "top_level_links")}
    for n, kind in entries:
        out[kind].append(n)
        if "/" not in n.rstrip("/"):
            out[f"top_level_{kind}"].append(n)
    return out


def _is_tar(path: str) -> bool:
    import tarfile as tf
    try:
        return tf.is_tarfile(path)
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}") from None
