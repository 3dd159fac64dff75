"""Packages on Debian and Ubuntu (the `pkg` module where apt and dpkg are found): dpkg-query for what is
installed, apt-cache for what is available, apt-get to change it.

apt-get runs with DEBIAN_FRONTEND=noninteractive, `--force-confdef --force-confold` (changed config files
are kept, never a prompt), stdin closed and a timeout.  apt's own configuration applies (`/etc/apt`, and
`APT_CONFIG` when set in the minion's environment).  When another package manager holds the dpkg lock the
call fails at once with a message saying so; set `DPkg::Lock::Timeout` in apt's configuration to wait instead.
Changes are returned in Salt's shape: `{package: {'old': version or '', 'new': version or ''}}`.
"""

from __future__ import annotations

import os
import re
from typing import Any

from rx.modules import CommandError
from rx.modules import _pkgutil as pu
from rx.modules._syscmd import check_name, run

__all__ = ["list_pkgs", "version", "latest_version", "upgrade_available", "list_upgrades", "refresh_db",
           "install", "remove", "purge", "upgrade", "info_installed"]

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none", "NEEDRESTART_MODE": "a",
           "UCF_FORCE_CONFFOLD": "1", "LC_ALL": "C.UTF-8"}
APT_OPTS = ["-q", "-y", "-o", "DPkg::Options::=--force-confdef", "-o", "DPkg::Options::=--force-confold"]
QUERY_TIMEOUT = 120.0
CHANGE_TIMEOUT = 1800.0
UPDATE_TIMEOUT = 600.0
INST_RE = re.compile(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) ")
LOCK_RE = re.compile(r"Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock")


def __virtual__() -> Any:
    import shutil
    missing = [t for t in ("dpkg-query", "apt-get", "apt-cache") if not shutil.which(t)]
    return (False, f"not an apt system ({', '.join(missing)} not found)") if missing else True


def _fail(what: str, p: Any) -> CommandError:
    lines = [ln.strip() for ln in (p.stderr + "\n" + p.stdout).splitlines() if ln.strip()]
    lock = [ln for ln in lines if LOCK_RE.search(ln)]
    if lock:
        return CommandError(f"the package database is locked by another package manager ({lock[0]}); try again "
                            f"when it has finished")
    errors = [ln for ln in lines if ln.startswith("E:")] or lines[-6:] or ["no output"]
    return CommandError(f"{what} failed (exit {p.returncode}): {' / '.join(errors)}")


def _apt(args: list[str], timeout: float = CHANGE_TIMEOUT) -> str:
    p = run(["apt-get", *APT_OPTS, *args], timeout, APT_ENV)
    if p.returncode != 0:
        raise _fail("apt-get " + next(a for a in args if not a.startswith("-")), p)
    return p.stdout


def _native_arch() -> str:
    p = run(["dpkg", "--print-architecture"], QUERY_TIMEOUT)
    return p.stdout.strip()


def _snapshot(states: str = "i") -> dict[str, list[str]]:
    """{package: [versions]} of the packages whose dpkg status letter is in `states` ('i' installed, 'c' only
    config files left); a package of a foreign architecture is named `name:arch`, as apt names it."""
    native = _native_arch()
    p = run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"],
            QUERY_TIMEOUT)
    if p.returncode != 0:
        raise _fail("dpkg-query -W", p)
    return parse_dpkg_query(p.stdout, native, states)


def parse_dpkg_query(text: str, native: str, states: str = "i") -> dict[str, list[str]]:
    """Parse `dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n'`."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or len(parts[0]) < 2 or parts[0][1] not in states:
            continue
        status, name, ver, arch = parts
        if arch not in (native, "all", ""):
            name = f"{name}:{arch}"
        pu.add_version(out, name, ver)
    return out


def list_pkgs(versions_as_list: bool = False) -> dict:
    """Return the installed packages as {name: version} (several versions comma-separated, or lists with
    `versions_as_list`); packages of a foreign architecture as `name:arch`.

    CLI example: rx '*' pkg.list_pkgs
    """
    return pu.as_versions(_snapshot(), versions_as_list)


def version(*names: str) -> Any:
    """Return the installed version of a package ('' if it is not installed); for several names a dict
    {name: version}.

    CLI example: rx '*' pkg.version bash
    """
    if not names:
        raise CommandError("name at least one package")
    for n in names:
        check_name(n, "package")
    return pu.one_or_many(names, pu.as_versions(_snapshot(), False))


def parse_policy(text: str) -> dict[str, tuple[str, str]]:
    """Parse `apt-cache policy NAME...`: {name: (installed or '', candidate or '')}."""
    out: dict[str, tuple[str, str]] = {}
    current, installed = None, ""
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current, installed = line[:-1], ""
        elif current and line.strip().startswith("Installed:"):
            installed = line.split(":", 1)[1].strip()
        elif current and line.strip().startswith("Candidate:"):
            cand = line.split(":", 1)[1].strip()
            out[current] = ("" if installed == "(none)" else installed, "" if cand == "(none)" else cand)
    return out


def _policy(names: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    for n in names:
        check_name(n, "package")
    p = run(["apt-cache", "policy", *names], QUERY_TIMEOUT, APT_ENV)
    if p.returncode != 0:
        raise _fail("apt-cache policy", p)
    found = parse_policy(p.stdout)
    native = ":" + _native_arch()
    return {n: found.get(n) or found.get(n.removesuffix(native)) or ("", "") for n in names}


def _newer(a: str, b: str) -> bool:
    return run(["dpkg", "--compare-versions", a, "gt", b], QUERY_TIMEOUT).returncode == 0


def latest_version(*names: str, refresh: bool = True) -> Any:
    """Return the version of a package that installing or upgrading it would give now; '' when it is
    installed at that version already or no repository has it.  For several names a dict {name: version}.
    `refresh` first updates the package lists (apt-get update).

    CLI example: rx '*' pkg.latest_version bash refresh=False
    """
    if not names:
        raise CommandError("name at least one package")
    if refresh:
        refresh_db()
    latest = {}
    for n, (inst, cand) in _policy(names).items():
        latest[n] = cand if cand and (not inst or (cand != inst and _newer(cand, inst))) else ""
    return pu.one_or_many(names, latest)


def upgrade_available(name: str, refresh: bool = True) -> bool:
    """Return True if package `name` is installed and a newer version is available.

    CLI example: rx '*' pkg.upgrade_available bash refresh=False
    """
    inst, _ = _policy((name,))[name]
    return bool(inst) and latest_version(name, refresh=refresh) != ""


def list_upgrades(refresh: bool = True, dist_upgrade: bool = True) -> dict:
    """Return the installed packages that an upgrade would change, as {name: new version} (apt-get's
    simulation of dist-upgrade, or of upgrade with `dist_upgrade=False`).

    CLI example: rx '*' pkg.list_upgrades refresh=False
    """
    if refresh:
        refresh_db()
    out = _apt(["-s", "dist-upgrade" if dist_upgrade else "upgrade"], QUERY_TIMEOUT)
    return {m.group(1): m.group(3) for m in map(INST_RE.match, out.splitlines()) if m and m.group(2)}


def parse_update(text: str) -> dict[str, bool | None]:
    """Parse `apt-get update`'s progress lines: {source: True (new lists fetched), None (unchanged), False
    (ignored or failed)}, as Salt reports them."""
    verdicts = {"Get": True, "Hit": None, "Ign": False, "Err": False}
    out: dict[str, bool | None] = {}
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        kind = head.split(":", 1)[0]
        if kind in verdicts and ":" in head and rest:
            out[re.sub(r"\s+\[[^\]]*\]$", "", rest.strip())] = verdicts[kind]
    return out


def _lists_updated() -> float:
    """When apt's package lists (its Dir::State::lists, as configured) last changed; 0 if unknown."""
    out = run(["apt-config", "shell", "LISTS", "Dir::State::lists/d"], QUERY_TIMEOUT, APT_ENV).stdout
    m = re.search(r"LISTS='([^']+)'", out)
    if not m:
        return 0.0
    try:
        with os.scandir(m.group(1)) as entries:
            return max([os.stat(m.group(1)).st_mtime] + [e.stat().st_mtime for e in entries if e.is_file()])
    except OSError:
        return 0.0


def refresh_db(cache_valid_time: int = 0, failhard: bool = False) -> dict:
    """Update the package lists (apt-get update); return {source: True (new data), None (unchanged), False
    (failed)}.  With `cache_valid_time` seconds, lists updated more recently are not fetched again ({}).
    `failhard` turns a failed source into an error.

    CLI example: rx '*' pkg.refresh_db
    """
    import time
    if cache_valid_time and time.time() - _lists_updated() < float(cache_valid_time):
        return {}
    argv = ["apt-get", "-q", "update"]
    p = run(argv, UPDATE_TIMEOUT, APT_ENV)
    result = parse_update(p.stdout)
    if p.returncode != 0 and (failhard or not result or LOCK_RE.search(p.stderr)):
        raise _fail("apt-get update", p)
    if failhard and False in result.values():
        raise CommandError(f"apt-get update failed for: {', '.join(k for k, v in result.items() if v is False)}")
    return result


def _change(args: list[str], states: str = "i") -> dict:
    return pu.apply(lambda: _snapshot(states), lambda: _apt(args))


def install(name: str | None = None, refresh: bool = False, pkgs: list | None = None, sources: list | None = None,
            version: str | None = None, reinstall: bool = False, fromrepo: str | None = None) -> dict:
    """Install a package (`name`, optionally at `version`), several (`pkgs`: names or {name: version}), or local
    .deb files (`sources`: [{name: /absolute/path.deb}]); return the changes {name: {'old', 'new'}} (dependencies
    pulled in are listed too; {} if all were installed already).  A package no repository has fails, retcode 1.

    CLI example: rx '*' pkg.install pkgs='["curl", {"jq": "1.6-2.1"}]' refresh=True
    """
    if sources:
        args = pu.local_files(sources, ".deb")
    else:
        wanted = pu.targets(name, pkgs, version)
        args = [f"{n}={v}" if v else n for n, v in wanted]
        if any(v for _, v in wanted):
            args.insert(0, "--allow-downgrades")  # a version asked for by name may be older than the installed one
    if refresh:
        refresh_db()
    opts = (["--reinstall"] if reinstall else []) + (["-t", check_name(fromrepo, "release")] if fromrepo else [])
    return _change(["install", *opts, *args])


def _remove(action: str, name: str | None, pkgs: list | None) -> dict:
    wanted = [n for n, _ in pu.targets(name, pkgs)]
    states = "ic" if action == "purge" else "i"  # purge also clears what remove left (config files)
    present = _snapshot(states)
    todo = [n for n in wanted if n in present]
    if not todo:
        return {}
    return _change([action, *todo], states)


def remove(name: str | None = None, pkgs: list | None = None) -> dict:
    """Remove a package (or several with `pkgs`), keeping its configuration files; return the changes
    ({name: {'old': version, 'new': ''}}; {} if none was installed).

    CLI example: rx '*' pkg.remove sl
    """
    return _remove("remove", name, pkgs)


def purge(name: str | None = None, pkgs: list | None = None) -> dict:
    """Remove a package (or several with `pkgs`) with its configuration files; return the changes as
    `pkg.remove` does.

    CLI example: rx '*' pkg.purge sl
    """
    return _remove("purge", name, pkgs)


def upgrade(refresh: bool = True, dist_upgrade: bool = False, pkgs: list | None = None) -> dict:
    """Upgrade every installed package (apt-get upgrade, or dist-upgrade, which may add or remove packages),
    or only those named in `pkgs` (never installing them if absent); return the changes.

    CLI example: rx '*' pkg.upgrade refresh=True
    """
    if refresh:
        refresh_db()
    if pkgs:
        return _change(["install", "--only-upgrade", *(n for n, _ in pu.targets(None, pkgs))])
    return _change(["dist-upgrade" if dist_upgrade else "upgrade"])


INFO_FORMAT = ("${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${Section}\t${Maintainer}\t"
               "${source:Package}\t${Homepage}\t${Installed-Size}\t${Description}\n")
INFO_KEYS = ("name", "version", "architecture", "group", "packager", "source", "url", "size", "description")


def parse_info(text: str) -> dict[str, dict]:
    """Parse `dpkg-query -W -f INFO_FORMAT`: {name: {name, version, architecture, group, packager, source, url,
    size (bytes), description}} of the installed packages (the description's further lines kept)."""
    out: dict[str, dict] = {}
    current: dict | None = None
    for line in text.splitlines():
        if line.startswith(" ") and current is not None:
            current["description"] += "\n" + line
            continue
        parts = line.split("\t")
        current = None
        if len(parts) == 10 and len(parts[0]) > 1 and parts[0][1] == "i":
            current = dict(zip(INFO_KEYS, parts[1:]))
            current["size"] = int(current["size"]) * 1024 if current["size"].isdigit() else None
            out.setdefault(current["name"], current)
    return out


def info_installed(*names: str) -> dict:
    """Return what dpkg knows of installed packages (all, or those named): {name: {name, version, architecture,
    group, packager, source, url, size, description, install_date}}; names not installed are left out.

    CLI example: rx '*' pkg.info_installed bash
    """
    import datetime
    for n in names:
        check_name(n, "package")
    p = run(["dpkg-query", "-W", "-f", INFO_FORMAT, *names], QUERY_TIMEOUT)
    info = parse_info(p.stdout)
    for name, entry in info.items():
        for list_file in (f"/var/lib/dpkg/info/{name}.list", f"/var/lib/dpkg/info/{name}:{entry['architecture']}.list"):
            try:
                stamp = os.stat(list_file).st_mtime
            except OSError:
                continue
            entry["install_date"] = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            break
    return info
