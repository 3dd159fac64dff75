"""Packages on Alpine Linux (the `pkg` module where `apk` is found).  Versions are apk's
(`1.36.1-r15`); changes are `{name: {'old': ..., 'new': ...}}`.  info_installed reads apk's installed
database (/lib/apk/db/installed).
"""

from __future__ import annotations

import re
from typing import Any

from rx.modules import CommandError
from rx.modules import _pkgutil as pu
from rx.modules._syscmd import check_name, run

__all__ = ["list_pkgs", "version", "latest_version", "upgrade_available", "list_upgrades", "refresh_db",
           "install", "remove", "purge", "upgrade", "info_installed"]

QUERY_TIMEOUT = 300.0
CHANGE_TIMEOUT = 1800.0
INSTALLED_DB = "/lib/apk/db/installed"
NAME_VERSION_RE = re.compile(r"^(?P<name>.+)-(?P<version>\d[^-\s]*-r\d+)$")
DB_KEYS = {"P": "name", "V": "version", "A": "architecture", "S": "size", "I": "installed_size",
           "T": "description", "U": "url", "L": "license", "o": "origin", "m": "maintainer", "t": "build_date",
           "c": "commit"}


def __virtual__() -> Any:
    import shutil
    return True if shutil.which("apk") else (False, "not an Alpine system (apk not found)")


def split_name_version(text: str) -> tuple[str, str] | None:
    """'busybox-binsh-1.36.1-r15' -> ('busybox-binsh', '1.36.1-r15'); None if it is not name-version."""
    m = NAME_VERSION_RE.match(text.strip())
    return (m.group("name"), m.group("version")) if m else None


def parse_info_v(text: str) -> dict[str, list[str]]:
    """Parse `apk info -v` (one `name-version` per line): {name: [version]}."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        pair = split_name_version(line)
        if pair:
            pu.add_version(out, *pair)
    return out


def parse_version_list(text: str) -> dict[str, str]:
    """Parse `apk version -l '<'` (`name-installed  <  available` rows under an 'Installed: Available:'
    header): {name: available version}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "<" and (pair := split_name_version(parts[0])):
            out[pair[0]] = parts[2]
    return out


def parse_installed_db(text: str) -> dict[str, dict]:
    """Parse apk's installed database (records of `X:value` lines separated by blank lines): {name: {name,
    version, architecture, size, installed_size, description, url, license, origin, maintainer, build_date,
    commit}}."""
    import datetime
    out: dict[str, dict] = {}
    for record in text.split("\n\n"):
        entry = {}
        for line in record.splitlines():
            key, sep, value = line.partition(":")
            if sep and key in DB_KEYS and DB_KEYS[key] not in entry:
                entry[DB_KEYS[key]] = value
        if "name" in entry:
            for key in ("size", "installed_size"):
                if entry.get(key, "").isdigit():
                    entry[key] = int(entry[key])
            if entry.get("build_date", "").isdigit():
                entry["build_date"] = datetime.datetime.fromtimestamp(
                    int(entry["build_date"]), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            out[entry["name"]] = entry
    return out


def _apk(args: list[str], timeout: float = CHANGE_TIMEOUT) -> str:
    p = run(["apk", *args], timeout, {"LC_ALL": "C"})
    if p.returncode != 0:
        lines = [ln.strip() for ln in (p.stderr + "\n" + p.stdout).splitlines() if ln.strip()]
        said = [ln for ln in lines if "ERROR" in ln or "no such package" in ln] or lines[-6:] or ["no output"]
        raise CommandError(f"apk {args[0]} failed (exit {p.returncode}): {' / '.join(said)}")
    return p.stdout


def _snapshot() -> dict[str, list[str]]:
    return parse_info_v(_apk(["info", "-v"], QUERY_TIMEOUT))


def list_pkgs(versions_as_list: bool = False) -> dict:
    """Return the installed packages as {name: version}.

    CLI example: rx '*' pkg.list_pkgs
    """
    return pu.as_versions(_snapshot(), versions_as_list)


def version(*names: str) -> Any:
    """Return the installed version of a package ('' if it is not installed); for several names a dict.

    CLI example: rx '*' pkg.version bash
    """
    if not names:
        raise CommandError("name at least one package")
    for n in names:
        check_name(n, "package")
    return pu.one_or_many(names, pu.as_versions(_snapshot(), False))


def latest_version(*names: str, refresh: bool = True) -> Any:
    """Return the version installing or upgrading a package would give now ('' when the newest is installed
    or no repository has it); for several names a dict.

    CLI example: rx '*' pkg.latest_version bash refresh=False
    """
    if not names:
        raise CommandError("name at least one package")
    for n in names:
        check_name(n, "package")
    if refresh:
        refresh_db()
    installed = _snapshot()
    latest = {}
    upgrades = parse_version_list(_apk(["version", "-l", "<", *[n for n in names if n in installed]],
                                       QUERY_TIMEOUT)) if any(n in installed for n in names) else {}
    for n in names:
        if n in installed:
            latest[n] = upgrades.get(n, "")
        else:
            found = parse_info_v(_apk(["search", "-x", n], QUERY_TIMEOUT)).get(n, [])
            latest[n] = found[0] if found else ""
    return pu.one_or_many(names, latest)


def upgrade_available(name: str, refresh: bool = True) -> bool:
    """Return True if package `name` is installed and a newer version is available.

    CLI example: rx '*' pkg.upgrade_available bash refresh=False
    """
    return check_name(name, "package") in _snapshot() and latest_version(name, refresh=refresh) != ""


def list_upgrades(refresh: bool = True) -> dict:
    """Return the installed packages with a newer version available, as {name: new version}.

    CLI example: rx '*' pkg.list_upgrades refresh=False
    """
    if refresh:
        refresh_db()
    return parse_version_list(_apk(["version", "-l", "<"], QUERY_TIMEOUT))


def refresh_db() -> bool:
    """Fetch the repository indexes again (apk update); return True.

    CLI example: rx '*' pkg.refresh_db
    """
    _apk(["update"], QUERY_TIMEOUT)
    return True


def _change(args: list[str]) -> dict:
    return pu.apply(_snapshot, lambda: _apk(args))


def install(name: str | None = None, refresh: bool = False, pkgs: list | None = None,
            version: str | None = None) -> dict:
    """Install a package (`name`, optionally at `version`) or several (`pkgs`: names or {name: version});
    return the changes {name: {'old', 'new'}}.  A package no repository has fails, retcode 1.

    CLI example: rx '*' pkg.install pkgs='["curl", "jq"]'
    """
    args = [f"{n}={v}" if v else n for n, v in pu.targets(name, pkgs, version)]
    if refresh:
        refresh_db()
    return _change(["add", *args])


def remove(name: str | None = None, pkgs: list | None = None) -> dict:
    """Remove a package (or several with `pkgs`); return the changes ({} if none was installed).

    CLI example: rx '*' pkg.remove nano
    """
    todo = [n for n, _ in pu.targets(name, pkgs) if n in _snapshot()]
    return _change(["del", *todo]) if todo else {}


def purge(name: str | None = None, pkgs: list | None = None) -> dict:
    """Remove a package (or several) and its changed configuration files (apk del --purge); return the changes.

    CLI example: rx '*' pkg.purge nano
    """
    todo = [n for n, _ in pu.targets(name, pkgs) if n in _snapshot()]
    return _change(["del", "--purge", *todo]) if todo else {}


def upgrade(refresh: bool = True, pkgs: list | None = None) -> dict:
    """Upgrade every installed package, or only those named in `pkgs`; return the changes.

    CLI example: rx '*' pkg.upgrade
    """
    if refresh:
        refresh_db()
    return _change(["upgrade", *([n for n, _ in pu.targets(None, pkgs)] if pkgs else [])])


def info_installed(*names: str) -> dict:
    """Return what apk's database holds of installed packages (all, or those named): {name: {name, version,
    architecture, size, installed_size, description, url, license, origin, maintainer, build_date, commit}}.

    CLI example: rx '*' pkg.info_installed busybox
    """
    for n in names:
        check_name(n, "package")
    try:
        with open(INSTALLED_DB, errors="replace") as f:
            db = parse_installed_db(f.read())
    except OSError as exc:
        raise CommandError(f"cannot read {INSTALLED_DB}: {exc.strerror}") from None
    return {n: e for n, e in db.items() if not names or n in names}
