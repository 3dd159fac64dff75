"""The OS identity grains from real os-release files (tests/unit/os_release/, each as the
distribution ships it), table-driven.  The expected values are what Salt 3007.8 reports for the
same files (checked by running Salt's os grains on each one), so a state or a target written for
Salt (`-G os_family:RedHat`, `-G os:Rocky`, `osfinger: Ubuntu-22.04`) selects the same machines."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from rx.minion.grains.osinfo import os_grains, parse_release_file, read_release_files

FIXTURES = Path(__file__).parent / "os_release"
KEYS = ("os", "os_family", "osfullname", "osrelease", "oscodename", "osfinger", "osmajorrelease", "osrelease_info")

# file: (os, os_family, osfullname, osrelease, oscodename, osfinger, osmajorrelease, osrelease_info)
EXPECTED = {
    "debian-12": ("Debian", "Debian", "Debian GNU/Linux", "12", "bookworm", "Debian-12", 12, [12]),
    "debian-11": ("Debian", "Debian", "Debian GNU/Linux", "11", "bullseye", "Debian-11", 11, [11]),
    "ubuntu-22.04": ("Ubuntu", "Debian", "Ubuntu", "22.04", "jammy", "Ubuntu-22.04", 22, [22, 4]),
    "ubuntu-24.04": ("Ubuntu", "Debian", "Ubuntu", "24.04", "noble", "Ubuntu-24.04", 24, [24, 4]),
    "linuxmint-21.3": ("Mint", "Debian", "Linux Mint", "21.3", "virginia", "Linux Mint-21", 21, [21, 3]),
    "rhel-9.4": ("RedHat", "RedHat", "Red Hat Enterprise Linux", "9.4", "Plow", "Red Hat Enterprise Linux-9", 9,
                 [9, 4]),
    "rhel-8.9": ("RedHat", "RedHat", "Red Hat Enterprise Linux", "8.9", "Ootpa", "Red Hat Enterprise Linux-8", 8,
                 [8, 9]),
    "rocky-9.3": ("Rocky", "RedHat", "Rocky Linux", "9.3", "Blue Onyx", "Rocky Linux-9", 9, [9, 3]),
    "almalinux-9.4": ("AlmaLinux", "RedHat", "AlmaLinux", "9.4", "Seafoam Ocelot", "AlmaLinux-9", 9, [9, 4]),
    "centos-7": ("CentOS", "RedHat", "CentOS Linux", "7", "CentOS Linux 7 (Core)", "CentOS Linux-7", 7, [7]),
    "centos-stream-9": ("CentOS Stream", "RedHat", "CentOS Stream", "9", "CentOS Stream 9", "CentOS Stream-9", 9,
                        [9]),
    "fedora-40": ("Fedora", "RedHat", "Fedora Linux", "40", "", "Fedora Linux-40", 40, [40]),
    "oracle-9.4": ("OEL", "RedHat", "Oracle Linux Server", "9.4", "Oracle Linux Server 9.4", "Oracle Linux Server-9",
                   9, [9, 4]),
    "amzn-2": ("Amazon", "RedHat", "Amazon Linux", "2", "Amazon Linux 2", "Amazon Linux-2", 2, [2]),
    "amzn-2023": ("Amazon", "RedHat", "Amazon Linux", "2023", "Amazon Linux 2023.4.20240611", "Amazon Linux-2023",
                  2023, [2023]),
    "opensuse-leap-15.5": ("SUSE", "Suse", "Leap", "15.5", "openSUSE Leap 15.5", "Leap-15", 15, [15, 5]),
    "opensuse-tumbleweed": ("SUSE", "Suse", "openSUSE Tumbleweed", "20240607", "openSUSE Tumbleweed",
                            "openSUSE Tumbleweed-20240607", 20240607, [20240607]),
    "sles-15-sp5": ("SUSE", "Suse", "SLES", "15.5", "SUSE Linux Enterprise Server 15 SP5", "SLES-15", 15, [15, 5]),
    "arch": ("Arch", "Arch", "Arch Linux", "", "Arch Linux", "Arch Linux-", None, [""]),  # rolling: no VERSION_ID
    "alpine-3.20": ("Alpine", "Alpine", "Alpine Linux", "3.20.0", "Alpine Linux v3.20", "Alpine Linux-3", 3,
                    [3, 20, 0]),
    "gentoo": ("Gentoo", "Gentoo", "Gentoo", "2.15", "Gentoo Linux", "Gentoo-2", 2, [2, 15]),
}

# file: (lsb_distrib_id, lsb_distrib_release, lsb_distrib_codename), None where Salt sets none
EXPECTED_LSB = {
    "debian-12": ("Debian GNU/Linux", "12", "bookworm"),
    "rocky-9.3": ("Rocky Linux", "9.3", "Blue Onyx"),
    "rhel-9.4": ("Red Hat Enterprise Linux", "9.4", "Red Hat Enterprise Linux 9.4 (Plow)"),
    "opensuse-tumbleweed": ("openSUSE Tumbleweed", "20240607", "openSUSE Tumbleweed"),
    "centos-7": ("CentOS Linux", None, "CentOS Linux 7 (Core)"),
    "arch": ("Arch Linux", None, "Arch Linux"),
}


def _grains(name: str, **kw) -> dict:
    return os_grains(parse_release_file((FIXTURES / name).read_text()), **kw)


def test_every_fixture_has_a_row():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_os_grains_from_real_os_release_files(name):
    got = _grains(name)
    assert tuple(got.get(k) for k in KEYS) == EXPECTED[name]
    if EXPECTED[name][6] is None:
        assert "osmajorrelease" not in got


@pytest.mark.parametrize("name", sorted(EXPECTED_LSB))
def test_lsb_grains_when_there_is_no_lsb_release(name):
    got = _grains(name)
    assert tuple(got.get(k) for k in ("lsb_distrib_id", "lsb_distrib_release", "lsb_distrib_codename")) \
        == EXPECTED_LSB[name]


def test_centos_7_takes_its_full_release_from_centos_release():
    got = _grains("centos-7", centos_release="CentOS Linux release 7.9.2009 (Core)\n")
    assert (got["osrelease"], got["osrelease_info"], got["osfinger"]) == ("7.9.2009", [7, 9, 2009], "CentOS Linux-7")


def test_lsb_release_wins_where_a_distribution_ships_one():
    """Ubuntu ships /etc/lsb-release: its DISTRIB_* become the lsb_distrib_* grains."""
    lsb = parse_release_file('DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n'
                             'DISTRIB_DESCRIPTION="Ubuntu 22.04.4 LTS"\n')
    got = _grains("ubuntu-22.04", lsb=lsb)
    assert {k: v for k, v in got.items() if k.startswith("lsb_")} == {
        "lsb_distrib_id": "Ubuntu", "lsb_distrib_release": "22.04", "lsb_distrib_codename": "jammy",
        "lsb_distrib_description": "Ubuntu 22.04.4 LTS"}
    assert (got["osrelease"], got["oscodename"], got["osfinger"]) == ("22.04", "jammy", "Ubuntu-22.04")


@pytest.mark.parametrize("text, expected", [
    ('NAME="Quoted Name"\n', {"NAME": "Quoted Name"}),
    ("NAME='single'\n", {"NAME": "single"}),
    ('PRETTY_NAME="with \\"escaped\\" quotes"\n', {"PRETTY_NAME": 'with "escaped" quotes'}),
    ("# a comment\n\nID=plain\n", {"ID": "plain"}),
    ('VERSION_CODENAME=""\n', {"VERSION_CODENAME": ""}),
    ("not a setting\nID=x\n", {"ID": "x"}),
    ('NAME="unterminated\n', {"NAME": "unterminated"}),
])
def test_os_release_parsing(text, expected):
    assert parse_release_file(text) == expected


def test_no_os_release_at_all():
    got = os_grains({}, kernel="Linux")
    assert (got["os"], got["os_family"], got["osrelease"]) == ("Linux", "Unknown", "")


def test_this_host_agrees_with_its_os_release():
    """The grains of this machine against what Python's own reader makes of /etc/os-release."""
    rel, lsb, centos = read_release_files()
    theirs = platform.freedesktop_os_release()
    assert rel["ID"] == theirs["ID"] and rel.get("VERSION_ID") == theirs.get("VERSION_ID")
    got = os_grains(rel, lsb, centos)
    if not lsb:
        assert got["osrelease"] == theirs.get("VERSION_ID", "")
    if theirs["ID"] == "debian":
        assert (got["os"], got["os_family"]) == ("Debian", "Debian")
        assert got["oscodename"] == theirs["VERSION_CODENAME"]
