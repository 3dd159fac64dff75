"""The operating system's identity from os-release (and lsb-release where a distribution ships
one): os, os_family, osfullname, osrelease, osrelease_info, osmajorrelease, oscodename, osfinger
and lsb_distrib_*, with Salt's values, so `-G os_family:RedHat` or `-G os:Rocky` select the
same machines as they do under Salt.

`os` is the short name Salt has always used (RedHat, CentOS, Rocky, AlmaLinux, Amazon, SUSE,
Debian, Ubuntu, Arch, Alpine, Gentoo ...); `os_family` groups them (RedHat, Debian, Suse, Arch,
Gentoo; a distribution nobody derives from is its own family, e.g. Alpine)."""

from __future__ import annotations

import re
import shlex
from typing import Any

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
LSB_RELEASE_PATH = "/etc/lsb-release"
CENTOS_RELEASE_PATH = "/etc/centos-release"

# os-release ID -> the os grain, where the name cannot be derived from NAME
OS_BY_ID = {
    "rhel": "RedHat", "ol": "OEL", "amzn": "Amazon", "linuxmint": "Mint", "pop": "Pop",
    "sles": "SUSE", "sles_sap": "SUSE", "sled": "SUSE", "opensuse": "SUSE", "opensuse-leap": "SUSE",
    "opensuse-tumbleweed": "SUSE", "opensuse-microos": "SUSE", "opensuse-slowroll": "SUSE",
    "scientific": "ScientificLinux", "alinux": "Alinux", "manjaro-arm": "Manjaro ARM", "archarm": "Arch ARM",
}

# os grain -> os_family (an os that is not here and whose ID_LIKE says nothing known is its own family)
FAMILY_BY_OS = {
    **dict.fromkeys(("Debian", "Ubuntu", "Mint", "Raspbian", "Pop", "Kali", "Devuan", "KDE neon", "elementary OS",
                     "Trisquel", "Deepin", "Parrot OS", "antiX", "TurnKey", "Univention", "Cumulus", "Mendel",
                     "AstraLinuxCE", "AstraLinuxSE"), "Debian"),
    **dict.fromkeys(("RedHat", "CentOS", "CentOS Stream", "Fedora", "Rocky", "AlmaLinux", "Amazon", "OEL",
                     "CloudLinux", "ScientificLinux", "XCP-ng", "XenServer", "VMware Photon OS", "Alinux",
                     "EuroLinux", "Navy", "ALT"), "RedHat"),
    **dict.fromkeys(("SUSE", "SLES", "SLED", "openSUSE", "openSUSE Leap", "openSUSE Tumbleweed"), "Suse"),
    **dict.fromkeys(("Arch", "Arch ARM", "Manjaro", "Manjaro ARM", "EndeavourOS", "Antergos"), "Arch"),
    **dict.fromkeys(("Gentoo", "Funtoo"), "Gentoo"),
}

# an ID or ID_LIKE entry -> os_family, for distributions FAMILY_BY_OS does not name
FAMILY_BY_ID = {"debian": "Debian", "ubuntu": "Debian", "rhel": "RedHat", "fedora": "RedHat", "centos": "RedHat",
                "suse": "Suse", "opensuse": "Suse", "arch": "Arch", "gentoo": "Gentoo"}

_LINUX_WORD = re.compile(r"\W(?:gnu/)?linux", re.IGNORECASE)
_PARENS = re.compile(r"\(([^)]*)\)")
_VERSION_CODENAME = re.compile(r"\((\D+)\)|,\s*(\D+)")
_CENTOS_RELEASE = re.compile(r"release\s+(\d+(?:\.\d+)*)")


def parse_release_file(text: str) -> dict[str, str]:
    """KEY=value lines of an os-release (or lsb-release) file, shell-quoted values unquoted."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.replace("_", "").isalnum():
            continue
        try:
            words = shlex.split(raw)
        except ValueError:
            words = [raw.strip("\"'")]
        out[key] = words[0] if words else ""
    return out


def read_release_files() -> tuple[dict[str, str], dict[str, str], str]:
    """(os-release, lsb-release, /etc/centos-release text) of this host, each empty when absent."""
    os_release: dict[str, str] = {}
    for path in OS_RELEASE_PATHS:
        text = _read(path)
        if text is not None:
            os_release = parse_release_file(text)
            break
    centos = (_read(CENTOS_RELEASE_PATH) or "") if os_release.get("ID") == "centos" else ""
    return os_release, parse_release_file(_read(LSB_RELEASE_PATH) or ""), centos


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _os_name(rel: dict[str, str]) -> str:
    os_id, name = rel.get("ID", ""), rel.get("NAME", "").strip()
    if os_id in OS_BY_ID:
        return OS_BY_ID[os_id]
    if os_id.startswith("opensuse"):
        return "SUSE"
    if os_id == "astra":
        return "AstraLinuxSE" if "Smolensk" in name else "AstraLinuxCE"
    base = _LINUX_WORD.sub("", name).strip()
    return base or os_id.capitalize() or "Linux"


def _family(os_name: str, rel: dict[str, str]) -> str:
    if os_name in FAMILY_BY_OS:
        return FAMILY_BY_OS[os_name]
    ids = [rel.get("ID", "")] + rel.get("ID_LIKE", "").split()
    for known in ("debian", "ubuntu"):  # a Debian derivative may name only Ubuntu, or only itself
        if known in ids:
            return "Debian"
    for entry in reversed(ids):  # ID_LIKE goes from the closest relative to the farthest
        if entry in FAMILY_BY_ID:
            return FAMILY_BY_ID[entry]
    return os_name


def _cpe_version(rel: dict[str, str]) -> str:
    """The version field of a CPE 2.2 name (cpe:/o:vendor:product:version...)."""
    parts = rel.get("CPE_NAME", "").split(":")
    return parts[4] if len(parts) > 4 and parts[0] == "cpe" and parts[1] == "/o" else ""


def _in_parens(text: str) -> str:
    m = _PARENS.search(text)
    return m.group(1) if m else text


def _version_codename(rel: dict[str, str]) -> str:
    """The codename as os-release gives it: VERSION_CODENAME, UBUNTU_CODENAME, or `(Name)` in VERSION."""
    if "VERSION_CODENAME" in rel:
        return rel["VERSION_CODENAME"]
    if rel.get("UBUNTU_CODENAME"):
        return rel["UBUNTU_CODENAME"]
    m = _VERSION_CODENAME.search(rel.get("VERSION", ""))
    return (m.group(1) or m.group(2) or "").strip() if m else ""


def lsb_grains(rel: dict[str, str], lsb: dict[str, str], os_name: str) -> dict[str, str]:
    """lsb_distrib_id/release/codename(/description): from /etc/lsb-release when the host has one,
    else from os-release (NAME, VERSION_ID, VERSION_CODENAME or PRETTY_NAME), as Salt does."""
    if lsb.get("DISTRIB_ID"):
        return {f"lsb_{k.lower()}": v for k, v in lsb.items()
                if k in ("DISTRIB_ID", "DISTRIB_RELEASE", "DISTRIB_CODENAME", "DISTRIB_DESCRIPTION")}
    out = {}
    if "NAME" in rel:
        out["lsb_distrib_id"] = rel["NAME"].strip()
    release = _cpe_version(rel) if rel.get("CPE_NAME", "").startswith("cpe:/o:opensuse:") else ""
    if release or "VERSION_ID" in rel:
        out["lsb_distrib_release"] = release or rel["VERSION_ID"]
    codename = rel["VERSION_CODENAME"] if "VERSION_CODENAME" in rel else rel.get("PRETTY_NAME")
    if codename is not None:
        out["lsb_distrib_codename"] = _in_parens(codename) if os_name in ("Rocky", "AlmaLinux") else codename
    return out


def release_info(os_name: str, osfullname: str, osrelease: str) -> dict[str, Any]:
    """osrelease_info (the dotted parts, numbers as int), osmajorrelease (when the first part is a
    number) and osfinger (`<osfullname>-<major>`; Debian and Raspbian use os, Ubuntu and Pop the
    full release), as Salt derives them."""
    parts: list[Any] = [int(p) if p.isdigit() else p for p in osrelease.split(".")]
    out: dict[str, Any] = {"osrelease_info": parts}
    if isinstance(parts[0], int):
        out["osmajorrelease"] = parts[0]
    name = os_name if os_name in ("Debian", "Raspbian") else osfullname
    out["osfinger"] = f"{name}-{osrelease if os_name in ('Ubuntu', 'Pop') else parts[0]}"
    return out


def os_grains(rel: dict[str, str], lsb: dict[str, str] | None = None, centos_release: str = "",
              kernel: str = "Linux") -> dict[str, Any]:
    """Every OS-identity grain from a parsed os-release (and lsb-release) file.  CentOS Linux 7 and 8
    give only the major version in os-release: their full release (7.9.2009) is read from the text
    of /etc/centos-release, `centos_release`."""
    lsb = lsb or {}
    if not rel.get("NAME") and not rel.get("ID"):
        return {"os": kernel, "os_family": "Unknown", "osfullname": kernel, "osrelease": "", "oscodename": "",
                **release_info(kernel, kernel, "")}
    os_name = _os_name(rel)
    out: dict[str, Any] = lsb_grains(rel, lsb, os_name)
    fullname = rel.get("NAME", "").strip() or os_name
    if os_name == "SUSE" and fullname == "openSUSE Leap":
        fullname = "Leap"
    elif os_name == "SUSE" and rel.get("VERSION") == "Tumbleweed":
        fullname = "Tumbleweed"
    osrelease = out.get("lsb_distrib_release") or rel.get("VERSION_ID", "")
    if any(old in out.get("lsb_distrib_codename", "") for old in ("CentOS Linux 7", "CentOS Linux 8")):
        out.pop("lsb_distrib_release", None)
        m = _CENTOS_RELEASE.search(centos_release)
        osrelease = m.group(1) if m else osrelease
    codename = out.get("lsb_distrib_codename", "").strip()
    if not codename or "Red Hat" in codename:
        codename = _version_codename(rel)
    out.update({"os": os_name, "os_family": _family(os_name, rel), "osfullname": fullname,
                "osrelease": osrelease, "oscodename": codename})
    out.update(release_info(os_name, fullname, osrelease))
    return out
