"""Copy files between the master's file server and the minion, Salt's `cp` module.

Master files are named `salt://path` or `rx://path`, optionally `?saltenv=ENV` (else the `saltenv`
argument, else the minion's `saltenv` setting, `base` by default).  They are cached under
`<cachedir>/files/<env>/` and fetched only when the master's sha256 differs.  Where Salt returns `''`
or `False` for a failure (a missing file, a refused push), rx returns an error saying why, with retcode 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import urllib.parse
import urllib.request
from typing import Any

from rx.modules import CommandError, ExecContext, replacing
from rx.transport.filemsgs import check_env, clean_path, is_master_url

__all__ = ["get_file", "get_dir", "get_template", "cache_file", "cache_dir", "list_master", "list_master_dirs",
           "hash_file", "is_cached", "get_url", "push"]

HTTP_TIMEOUT = 60.0


def _files(ctx: ExecContext) -> Any:
    if ctx.files is None:
        raise CommandError("cp needs the master's file server: run it as a job through the minion "
                           "(rx ID cp.FUNCTION ...)")
    return ctx.files


def _call(what: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a file client method (its own failures are CommandErrors); bad paths and OS errors become one."""
    try:
        return what(*args, **kwargs)
    except CommandError:
        raise
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None


def get_file(ctx: ExecContext, path: str, dest: str, saltenv: str | None = None, makedirs: bool = False,
             template: str | None = None, gzip: Any = None, **kwargs: Any) -> str:
    """Copy a file from the master to `dest` (a directory: the file keeps its name); the path written.

    With `template=jinja`, `path` and `dest` are rendered first (`salt://{{ grains.os }}/vimrc`).
    `gzip` is accepted for Salt compatibility and ignored (chunks travel uncompressed).
    CLI example: rx '*' cp.get_file salt://motd /etc/motd makedirs=True
    """
    path, dest = _render_names(ctx, path, dest, template, saltenv, kwargs)
    files = _files(ctx)
    return _call(files.get_file, path, dest, saltenv, bool(makedirs))


def get_dir(ctx: ExecContext, path: str, dest: str, saltenv: str | None = None, template: str | None = None,
            gzip: Any = None, **kwargs: Any) -> list:
    """Copy a master directory into `dest` (as `dest/<its name>/...`); the files written.

    CLI example: rx '*' cp.get_dir salt://etc/app /etc
    """
    path, dest = _render_names(ctx, path, dest, template, saltenv, kwargs)
    return _call(_files(ctx).get_dir, path, dest, saltenv)


def get_template(ctx: ExecContext, path: str, dest: str, template: str = "jinja", saltenv: str | None = None,
                 makedirs: bool = False, **kwargs: Any) -> str:
    """Render a master file as a Jinja template (sandboxed) and write the result to `dest`; the path written.

    The template sees `grains`, `id`, `opts` (the minion's settings), `saltenv`, `pillar` and the
    keyword arguments given; `{% include %}` and `{% import %}` read from the same environment.
    CLI example: rx '*' cp.get_template salt://app.conf.j2 /etc/app.conf port=8080
    """
    if template != "jinja":
        raise CommandError(f"template {template!r} is not supported (only jinja)")
    files = _files(ctx)
    rel, env = _call(files.split, path, saltenv)
    text = _render(ctx, files, rel, env, kwargs)
    if dest.endswith("/") or os.path.isdir(dest):
        dest = os.path.join(dest, os.path.basename(rel))
    with replacing(dest, bool(makedirs)) as f:
        f.write(text.encode())
    return dest


def cache_file(ctx: ExecContext, path: str, saltenv: str | None = None, source_hash: str | None = None,
               verify_ssl: bool = True, use_etag: bool = False) -> str:
    """Cache a master file (or an http(s) URL) on the minion; the cached path.

    CLI example: rx '*' cp.cache_file salt://big.tar.gz
    """
    if is_master_url(path):
        return _call(_files(ctx).cache_file, path, saltenv)
    if path.startswith(("http://", "https://")):
        return _http_get(ctx, path, None, saltenv, source_hash)
    raise CommandError(f"{path!r} is not a salt://, rx:// or http(s) URL")


def cache_dir(ctx: ExecContext, path: str, saltenv: str | None = None, include_empty: bool = False,
              include_pat: str | None = None, exclude_pat: str | None = None) -> list:
    """Cache every file under a master directory; the cached paths.  `include_pat`/`exclude_pat` are globs
    (or `E@regex`) on the file's path.

    CLI example: rx '*' cp.cache_dir salt://etc/app include_pat='*.conf'
    """
    return _call(_files(ctx).cache_dir, path, saltenv, bool(include_empty), include_pat, exclude_pat)


def list_master(ctx: ExecContext, saltenv: str | None = None, prefix: str = "") -> list:
    """The files of an environment on the master (whose path starts with `prefix`).

    CLI example: rx '*' cp.list_master prefix=_modules/
    """
    return _call(_files(ctx).list_master, saltenv, str(prefix))


def list_master_dirs(ctx: ExecContext, saltenv: str | None = None, prefix: str = "") -> list:
    """The directories of an environment on the master (whose path starts with `prefix`).

    CLI example: rx '*' cp.list_master_dirs
    """
    return _call(_files(ctx).list_master_dirs, saltenv, str(prefix))


def hash_file(ctx: ExecContext, path: str, saltenv: str | None = None) -> dict:
    """The sha256 of a master file (`salt://...`) or of a local file (an absolute path), as
    `{hash_type, hsum}`.

    CLI example: rx '*' cp.hash_file salt://motd
    """
    if is_master_url(path):
        return _call(_files(ctx).hash_file, path, saltenv)
    if not os.path.isabs(path):
        raise CommandError(f"{path!r}: a local file needs an absolute path (or use salt://)")
    return {"hash_type": "sha256", "hsum": _call(_sha256, path)}


def is_cached(ctx: ExecContext, path: str, saltenv: str | None = None) -> str:
    """The cached copy's path if this master file is in the minion's cache, else ''.

    CLI example: rx '*' cp.is_cached salt://motd
    """
    if not is_master_url(path):
        return ""
    return _call(_files(ctx).is_cached, path, saltenv)


def get_url(ctx: ExecContext, path: str, dest: str | None = "", saltenv: str | None = None, makedirs: bool = False,
            source_hash: str | None = None) -> Any:
    """Fetch a URL: `salt://`/`rx://`, `http(s)://`, or a local path (`file://` or plain).  `dest` '' keeps it
    in the minion's cache and returns that path; `dest` None returns the content; else it is copied there.

    CLI example: rx '*' cp.get_url https://example.org/tool.sh /usr/local/bin/tool.sh
    """
    if is_master_url(path):
        files = _files(ctx)
        if dest is None:
            return _read_text(_call(files.cache_file, path, saltenv))
        if dest == "":
            return _call(files.cache_file, path, saltenv)
        return _call(files.get_file, path, dest, saltenv, bool(makedirs))
    if path.startswith(("http://", "https://")):
        if dest is None:
            return _read_text(_http_get(ctx, path, None, saltenv, source_hash))
        return _http_get(ctx, path, dest or None, saltenv, source_hash, bool(makedirs))
    local = urllib.parse.urlparse(path).path if path.startswith("file://") else path
    if not os.path.isabs(local):
        raise CommandError(f"{path!r}: not a salt://, rx:// or http(s) URL, nor an absolute path")
    if dest is None:
        return _call(_read_text, local)
    if dest == "":
        return local
    return _call(_copy_local, local, dest, bool(makedirs))


def push(ctx: ExecContext, path: str, keep_symlinks: bool = False, upload_path: str | None = None,
         remove_source: bool = False) -> bool:
    """Send a minion file to the master, stored as `<master cachedir>/minions/<this id>/files/<path>`
    (or `upload_path`); True when stored.  The master must allow it (`file_recv`, `file_recv_max_size`).

    CLI example: rx '*' cp.push /var/log/app.log
    """
    done = _call(_files(ctx).push, path, upload_path, bool(keep_symlinks))
    if done and remove_source:
        _call(os.unlink, path)
    return done


# ---------------------------------------------------------------- templates

def _context(ctx: ExecContext, saltenv: str, extra: dict) -> dict:
    cfg = ctx.config
    opts = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)} if dataclasses.is_dataclass(cfg) else {}
    return {"grains": dict(ctx.grains), "id": ctx.minion_id, "opts": opts, "saltenv": saltenv, "pillar": {}, **extra}


def _environment(files: Any, env: str) -> Any:
    try:
        from jinja2 import FunctionLoader
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:
        raise CommandError("templates need jinja2 (pip install jinja2, or Debian's python3-jinja2)") from None

    def load(name: str) -> tuple[str, str, Any]:
        cached = files.fetch(clean_path(name, "template"), env)
        return _read_text(cached), cached, lambda: False

    return SandboxedEnvironment(loader=FunctionLoader(load), keep_trailing_newline=True, autoescape=False)


def _render(ctx: ExecContext, files: Any, rel: str, env: str, extra: dict) -> str:
    from jinja2 import TemplateError
    try:
        return _environment(files, env).get_template(rel).render(_context(ctx, env, extra))
    except TemplateError as exc:
        where = f" line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        raise CommandError(f"{getattr(exc, 'name', None) or rel}{where}: {type(exc).__name__}: {exc}") from None
    except (ValueError, OSError) as exc:
        raise CommandError(f"{rel}: {exc}") from None


def _render_names(ctx: ExecContext, path: str, dest: str, template: str | None, saltenv: str | None,
                  extra: dict) -> tuple[str, str]:
    if not template:
        return path, dest
    if template != "jinja":
        raise CommandError(f"template {template!r} is not supported (only jinja)")
    from jinja2 import TemplateError
    from jinja2.sandbox import SandboxedEnvironment
    context = _context(ctx, saltenv or getattr(ctx.config, "saltenv", "base"), extra)
    try:
        env = SandboxedEnvironment()
        return env.from_string(path).render(context), env.from_string(dest).render(context)
    except TemplateError as exc:
        raise CommandError(f"rendering the file names: {type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------- local files and http(s)

def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _copy_local(src: str, dest: str, makedirs: bool) -> str:
    if dest.endswith("/") or os.path.isdir(dest):
        dest = os.path.join(dest, os.path.basename(src))
    parent = os.path.dirname(dest) or "."
    if makedirs:
        os.makedirs(parent, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def _http_get(ctx: ExecContext, url: str, dest: str | None, saltenv: str | None, source_hash: str | None,
              makedirs: bool = False) -> str:
    """Download `url` to `dest` (or the minion's cache, `<cachedir>/extrn_files/<env>/<host>/<path>`),
    skipped when the copy there matches `source_hash` (`sha256=HEX` or `HEX`)."""
    parsed = urllib.parse.urlparse(url)
    if dest is None:
        cachedir = getattr(ctx.config, "cachedir", "")
        if not cachedir:
            raise CommandError("no cachedir to keep the download in: give dest")
        try:
            env = check_env(saltenv or getattr(ctx.config, "saltenv", "base"))
            rel = clean_path(f"{parsed.hostname or 'host'}/{parsed.path or 'index.html'}", "url")
        except ValueError as exc:
            raise CommandError(f"{url!r}: {exc}") from None
        dest = os.path.join(cachedir, "extrn_files", env, rel)
        makedirs = True
    elif dest.endswith("/") or os.path.isdir(dest):
        dest = os.path.join(dest, os.path.basename(parsed.path) or "index.html")
    want = (source_hash or "").split("=", 1)[-1].lower()
    if want and os.path.isfile(dest) and _sha256(dest) == want:
        return dest
    try:
        with replacing(dest, makedirs) as out, urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as resp:
            h = hashlib.sha256()
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                h.update(chunk)
            if want and h.hexdigest() != want:
                raise CommandError(f"{url}: sha256 {h.hexdigest()} does not match source_hash {want}")
    except OSError as exc:
        raise CommandError(f"{url}: {exc}") from None
    return dest
