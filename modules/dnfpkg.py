"""Packages on Fedora, RHEL, Rocky, Alma, CentOS Stream, Amazon Linux (the `pkg` module where rpm and dnf,
or yum, are found): rpm for what is installed, dnf for what is available and to change it.

dnf runs with `-y` (never a prompt), stdin closed and a timeout; rpm keeps changed config files itself
(.rpmnew).  Versions are `[epoch:]version-release` as Salt shows them; a package of another architecture
than the machine's (not noarch) is named `name.arch`.  Changes are `{name: {'old': ..., 'new': ...}}`.
"""

from __future__ import annotations

import os
from typing import Any

from rx.modules import CommandError
from rx.modules import _pkgutil as pu
from rx.modules._syscmd import check_name, run

__all__ = ["list_pkgs", "version", "latest_version", "upgrade_available", "list_upgrades", "refresh_db",
           "install", "remove", "purge", "upgrade", "info_installed"]

QUERY_TIMEOUT = 300.0
CHANGE_TIMEOUT = 1800.0
RPM_QA_FORMAT = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n"
INFO_FORMAT = ("%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{GROUP}\\t%{URL}\\t%{LICENSE}\\t"
               "%{VENDOR}\\t%{PACKAGER}\\t%{SIZE}\\t%{BUILDTIME}\\t%{INSTALLTIME}\\t%{SOURCERPM}\\t%{SUMMARY}\\n")
INFO_KEYS = ("name", "epoch", "version", "release", "architecture", "group", "url", "license", "vendor",
             "packager", "size", "build_date", "install_date", "source", "summary")
ENV = {"LC_ALL": "C.UTF-8"}


def _dnf_binary() -> str | None:
    import shutil
    return next((b for b in ("dnf", "dnf5", "yum") if shutil.which(b)), None)


def __virtual__() -> Any:
    import shutil
    if not shutil.which("rpm") or not _dnf_binary():
        return False, "not a dnf/yum system (rpm and dnf or yum not found)"
    return True


def evr(epoch: str, ver: str, rel: str) -> str:
    """Salt's version string: `version-release`, with `epoch:` in front when the epoch is not 0."""
    return f"{epoch}:{ver}-{rel}" if epoch not in ("", "0", "(none)") else f"{ver}-{rel}"


def _key(name: str, arch: str, native: str) -> str:
    return name if arch in (native, "noarch", "") else f"{name}.{arch}"


def parse_rpm_qa(text: str, native: str) -> dict[str, list[str]]:
    """Parse `rpm -qa --queryformat RPM_QA_FORMAT`: {name: [versions]}."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 5 and parts[0] != "gpg-pubkey":
            name, epoch, ver, rel, arch = parts
            pu.add_version(out, _key(name, arch, native), evr(epoch, ver, rel))
    return out


def parse_dnf_list(text: str, native: str) -> dict[str, str]:
    """Parse `dnf list` output (`name.arch  [epoch:]version-release  repo` rows under headers such as
    'Available Upgrades'; a row too long for the terminal wraps after the name): {name: version}."""
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in text.splitlines():
        tokens = pending + line.split()
        pending = []
        if len(tokens) == 1 and "." in tokens[0] and line == line.lstrip():
            pending = tokens
            continue
        if len(tokens) == 3 and "." in tokens[0] and "-" in tokens[1]:
            name, _, arch = tokens[0].rpartition(".")
            out[_key(name, arch, native)] = tokens[1]
    return out


def _rpm(args: list[str]) -> Any:
    return run(["rpm", *args], QUERY_TIMEOUT, ENV)


def _snapshot() -> dict[str, list[str]]:
    p = _rpm(["-qa", "--queryformat", RPM_QA_FORMAT])
    if p.returncode != 0:
        raise CommandError(f"rpm -qa failed: {p.stderr.strip()}")
    return parse_rpm_qa(p.stdout, os.uname().machine)


def _dnf(args: list[str], timeout: float = CHANGE_TIMEOUT, ok: tuple[int, ...] = (0,)) -> Any:
    binary = _dnf_binary() or "dnf"
    p = run([binary, *args], timeout, ENV)
    if p.returncode not in ok:
        lines = [ln.strip() for ln in (p.stderr + "\n" + p.stdout).splitlines() if ln.strip()]
        said = [ln for ln in lines if ln.startswith(("Error", "No match"))] or lines[-6:] or ["no output"]
        raise CommandError(f"{binary} {next(a for a in args if a[0].isalpha())} failed (exit {p.returncode}): "
                           f"{' / '.join(said)}")
    return p


def list_pkgs(versions_as_list: bool = False) -> dict:
    """Return the installed packages as {name: version} (several versions comma-separated, or lists with
    `versions_as_list`).

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


def _listing(kind: str, names: tuple[str, ...] = ()) -> dict[str, str]:
    for n in names:
        check_name(n, "package")
    p = _dnf(["-q", "list", f"--{kind}", *names], QUERY_TIMEOUT, ok=(0, 1))
    return parse_dnf_list(p.stdout, os.uname().machine)


def latest_version(*names: str, refresh: bool = True) -> Any:
    """Return the version installing or upgrading a package would give now ('' when the newest is installed
    or no repository has it); for several names a dict.  `refresh` first expires the metadata cache.

    CLI example: rx '*' pkg.latest_version bash refresh=False
    """
    if not names:
        raise CommandError("name at least one package")
    if refresh:
        refresh_db()
    installed = _snapshot()
    upgrades = _listing("upgrades", names)
    available = _listing("available", tuple(n for n in names if n not in installed)) \
        if any(n not in installed for n in names) else {}
    return pu.one_or_many(names, {n: upgrades.get(n) or ("" if n in installed else available.get(n, ""))
                                  for n in names})


def upgrade_available(name: str, refresh: bool = True) -> bool:
    """Return True if package `name` is installed and a newer version is available.

    CLI example: rx '*' pkg.upgrade_available bash refresh=False
    """
    if refresh:
        refresh_db()
    return check_name(name, "package") in _snapshot() and name in _listing("upgrades", (name,))


def list_upgrades(refresh: bool = True) -> dict:
    """Return the installed packages with a newer version available, as {name: new version}.

    CLI example: rx '*' pkg.list_upgrades refresh=False
    """
    if refresh:
        refresh_db()
    return _listing("upgrades")


def refresh_db() -> bool:
    """Expire the metadata cache and fetch it again (dnf makecache); return True.

    CLI example: rx '*' pkg.refresh_db
    """
    _dnf(["-q", "clean", "expire-cache"], QUERY_TIMEOUT)
    _dnf(["-q", "makecache"], QUERY_TIMEOUT)
    return True


def _change(args: list[str]) -> dict:
    return pu.apply(_snapshot, lambda: _dnf(["-y", *args]))


def install(name: str | None = None, refresh: bool = False, pkgs: list | None = None, sources: list | None = None,
            version: str | None = None, reinstall: bool = False, fromrepo: str | None = None) -> dict:
    """Install a package (`name`, optionally at `version`), several (`pkgs`: names or {name: version}), or local
    .rpm files (`sources`: [{name: /absolute/path.rpm}]); return the changes {name: {'old', 'new'}}.  A package
    no repository has fails, retcode 1.

    CLI example: rx '*' pkg.install pkgs='["curl", {"jq": "1.6-15.el9"}]'
    """
    if sources:
        args = pu.local_files(sources, ".rpm")
    else:
        args = [f"{n}-{v}" if v else n for n, v in pu.targets(name, pkgs, version)]
    if refresh:
        refresh_db()
    repo = ["--disablerepo=*", f"--enablerepo={check_name(fromrepo, 'repository')}"] if fromrepo else []
    return _change([*repo, "reinstall" if reinstall else "install", *args])


def remove(name: str | None = None, pkgs: list | None = None) -> dict:
    """Remove a package (or several with `pkgs`); return the changes ({} if none was installed).

    CLI example: rx '*' pkg.remove nano
    """
    wanted = [n for n, _ in pu.targets(name, pkgs)]
    todo = [n for n in wanted if n in _snapshot()]
    return _change(["remove", *todo]) if todo else {}


def purge(name: str | None = None, pkgs: list | None = None) -> dict:
    """The same as `pkg.remove` (rpm keeps no configuration of removed packages, except edited files it saves
    as .rpmsave).

    CLI example: rx '*' pkg.purge nano
    """
    return remove(name, pkgs)


def upgrade(refresh: bool = True, pkgs: list | None = None) -> dict:
    """Upgrade every installed package, or only those named in `pkgs`; return the changes.

    CLI example: rx '*' pkg.upgrade
    """
    if refresh:
        refresh_db()
    names = [n for n, _ in pu.targets(None, pkgs)] if pkgs else []
    return _change(["upgrade", *names])


def parse_info(text: str) -> dict[str, dict]:
    """Parse `rpm -q --queryformat INFO_FORMAT`: {name: {name, version ([epoch:]version-release), ...}}."""
    import datetime
    out: dict[str, dict] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != len(INFO_KEYS):
            continue
        entry = {k: ("" if v == "(none)" else v) for k, v in zip(INFO_KEYS, parts)}
        entry["version"] = evr(entry.pop("epoch"), entry["version"], entry["release"])
        for key in ("build_date", "install_date"):
            if entry[key].isdigit():
                entry[key] = datetime.datetime.fromtimestamp(int(entry[key]), datetime.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ")
        entry["size"] = int(entry["size"]) if entry["size"].isdigit() else None
        out.setdefault(entry["name"], entry)
    return out


def info_installed(*names: str) -> dict:
    """Return what rpm knows of installed packages (all, or those named): {name: {name, version, release,
    architecture, group, url, license, vendor, packager, size, build_date, install_date, source, summary}};
    names not installed are left out.

    CLI example: rx '*' pkg.info_installed bash
    """
    for n in names:
        check_name(n, "package")
    p = _rpm(["-q", "--queryformat", INFO_FORMAT, *names] if names else ["-qa", "--queryformat", INFO_FORMAT])
    return parse_info(p.stdout)
