"""pkg on Alpine's apk (apkpkg).

This machine is Debian and no apk-tools exists in its archive, so apk cannot run here even in a namespace:
what is tested is the `__virtual__` reason and the parsers, table-driven on output in the form apk-tools 2.14
prints it (the `apk info -v`, `apk version -l '<'` and installed-database layouts are apk's documented
ones; the rows are an Alpine 3.19 system's)."""

from __future__ import annotations

import shutil

import pytest

from rx.modules import apkpkg as pkg

INFO_V = """musl-1.2.4_git20230717-r4
busybox-1.36.1-r15
busybox-binsh-1.36.1-r15
alpine-baselayout-data-3.4.3-r2
ca-certificates-bundle-20240226-r0
libcrypto3-3.1.4-r5
py3-setuptools-pyc-70.3.0-r0
"""

VERSION_L = """Installed:                                Available:
busybox-1.36.1-r15                      < 1.36.1-r20
libcrypto3-3.1.4-r5                     < 3.1.7-r1
ssl_client-1.36.1-r15                   < 1.36.1-r20
"""

DB = """C:Q1Xk5pcL6nt9XHAlkJqvRH5uZ3x4M=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407145
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1705000000
c:4b1a93d3b5f4d2e3e2f4b0c3cbf6e8a64e1c8dbe
F:lib
R:ld-musl-x86_64.so.1

C:Q1aBcd
P:busybox
V:1.36.1-r15
A:x86_64
S:512000
I:950272
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1706000000
"""


def test_virtual_reason_on_this_machine():
    if shutil.which("apk"):
        pytest.skip("apk is installed here")
    assert pkg.__virtual__() == (False, "not an Alpine system (apk not found)")


@pytest.mark.parametrize("text, expected", [
    ("busybox-binsh-1.36.1-r15", ("busybox-binsh", "1.36.1-r15")),
    ("musl-1.2.4_git20230717-r4", ("musl", "1.2.4_git20230717-r4")),
    ("py3-setuptools-pyc-70.3.0-r0", ("py3-setuptools-pyc", "70.3.0-r0")),
    ("ca-certificates-bundle-20240226-r0", ("ca-certificates-bundle", "20240226-r0")),
    ("libc6-compat-1.2.4-r2", ("libc6-compat", "1.2.4-r2")),
    ("WARNING: opening x: No such file", None),
    ("busybox", None),
])
def test_split_name_version(text, expected):
    assert pkg.split_name_version(text) == expected


def test_parsers():
    installed = pkg.parse_info_v(INFO_V)
    assert installed["busybox"] == ["1.36.1-r15"] and installed["musl"] == ["1.2.4_git20230717-r4"]
    assert len(installed) == 7
    assert pkg.parse_version_list(VERSION_L) == {"busybox": "1.36.1-r20", "libcrypto3": "3.1.7-r1",
                                                 "ssl_client": "1.36.1-r20"}
    db = pkg.parse_installed_db(DB)
    assert set(db) == {"musl", "busybox"}
    assert db["musl"]["version"] == "1.2.4_git20230717-r4" and db["musl"]["installed_size"] == 667648
    assert db["musl"]["license"] == "MIT" and db["musl"]["build_date"] == "2024-01-11T19:06:40Z"
    assert db["busybox"]["url"] == "https://busybox.net/" and "commit" not in db["busybox"]
