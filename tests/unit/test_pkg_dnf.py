"""pkg on rpm/dnf (dnfpkg).

This machine is Debian, so (1) the back end's `__virtual__` must say why it is not used here, (2) its parsers
are checked on real output of rpm 4.18 and dnf 4.14 (fixtures/dnf: Debian's own rpm and dnf packages, run
in a namespace as below on test packages built with rpmbuild), and (3) the back end runs for real: Debian's
rpm, dnf and createrepo-c are installed into overlays of /usr, /etc and /var in a private mount namespace
(the host's package database and files are not touched), two test packages are built in two versions each,
and pkg.* installs, upgrades and removes them through dnf.  Skipped, with the reason, where the packages
cannot be fetched or the namespace cannot be made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rx.modules import dnfpkg as pkg
from tests.unit.namespaces import OverlayNamespace, require_namespace_tools

FIXTURES = Path(__file__).parent / "fixtures" / "dnf"


def test_virtual_reason_on_this_machine():
    import shutil
    if shutil.which("rpm") and shutil.which("dnf"):
        pytest.skip("rpm and dnf are installed here")
    assert pkg.__virtual__() == (False, "not a dnf/yum system (rpm and dnf or yum not found)")


def test_parsers_on_real_output():
    assert pkg.parse_rpm_qa((FIXTURES / "rpm_qa.txt").read_text(), "x86_64") == {
        "rx-test-epoch": ["2:3.1-4.el9"], "rx-test-dummy": ["1.0-1.el9"]}
    assert pkg.parse_rpm_qa("glibc\t0\t2.34\t60.el9\ti686\ngpg-pubkey\t0\tfd431d51\t4ae0493b\t(none)\n",
                            "x86_64") == {"glibc.i686": ["2.34-60.el9"]}
    upgrades = {"rx-test-dummy": "2.0-1.el9", "rx-test-epoch": "2:3.2-1.el9"}
    assert pkg.parse_dnf_list((FIXTURES / "list_upgrades.txt").read_text(), "x86_64") == upgrades
    assert pkg.parse_dnf_list((FIXTURES / "check_update.txt").read_text(), "x86_64") == upgrades
    assert pkg.parse_dnf_list((FIXTURES / "list_available_named.txt").read_text(), "x86_64") == {
        "rx-test-dummy": "2.0-1.el9"}
    long = pkg.parse_dnf_list((FIXTURES / "list_available_long.txt").read_text(), "x86_64")
    assert long["rx-test-a-very-long-package-name-to-wrap-columns"] == "10.20.30-1.el9" and len(long) == 3
    wrapped = "Available Upgrades\nsome-package-with-a-name-longer-than-the-column.x86_64\n" \
              "                          1.2-3.fc40                 updates\n"
    assert pkg.parse_dnf_list(wrapped, "x86_64") == {"some-package-with-a-name-longer-than-the-column": "1.2-3.fc40"}
    info = pkg.parse_info((FIXTURES / "rpm_q_info.txt").read_text())
    assert set(info) == {"rx-test-dummy", "rx-test-epoch"}  # "package nosuch is not installed" skipped
    assert info["rx-test-epoch"]["version"] == "2:3.1-4.el9" and info["rx-test-epoch"]["architecture"] == "x86_64"
    assert info["rx-test-dummy"]["vendor"] == "" and info["rx-test-dummy"]["license"] == "MIT"
    assert info["rx-test-dummy"]["install_date"].endswith("Z") and info["rx-test-dummy"]["size"] == 12


SPEC = """Name: {name}
{epoch}Version: {version}
Release: {release}
Summary: rx test package {name}
License: MIT
{arch}
%description
Installed and removed by rx's tests.
%install
mkdir -p %{{buildroot}}/etc
echo version={version} > %{{buildroot}}/etc/{name}.conf
%files
%config(noreplace) /etc/{name}.conf
"""

SETUP = """export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends rpm dnf createrepo-c
cd {t}/build
for spec in *.spec; do rpmbuild -bb --define "_topdir {t}/build/top" --define "_build_id_links none" $spec; done
mkdir -p {t}/repo && cp top/RPMS/*/*.rpm {t}/repo/ && createrepo_c -q {t}/repo
mkdir -p /etc/yum.repos.d /etc/dnf/vars && echo 9 > /etc/dnf/vars/releasever
printf '[rxtest]\\nname=rx test repository\\nbaseurl=file://{t}/repo\\ngpgcheck=0\\n' > /etc/yum.repos.d/rxtest.repo
"""


@pytest.fixture(scope="module")
def private_dnf(tmp_path_factory):
    require_namespace_tools()
    t = tmp_path_factory.mktemp("dnf")
    (t / "build").mkdir()
    for name, epoch, version, arch in (("rx-test-dummy", "", "1.0", "noarch"), ("rx-test-dummy", "", "2.0", "noarch"),
                                       ("rx-test-epoch", "2", "3.1", ""), ("rx-test-epoch", "2", "3.2", "")):
        (t / "build" / f"{name}-{version}.spec").write_text(SPEC.format(
            name=name, epoch=f"Epoch: {epoch}\n" if epoch else "", version=version,
            release="4.el9" if version == "3.1" else "1.el9", arch=f"BuildArch: {arch}" if arch else ""))
    ns = OverlayNamespace(t, ("usr", "etc", "var"), SETUP.format(t=t))
    try:
        if not ns.ready:
            pytest.skip(f"cannot install rpm and dnf in a private namespace: {ns.why_not()}")
        yield (lambda fun, *args, **kwargs: ns.call("dnfpkg", fun, *args, **kwargs)), t / "repo"
    finally:
        ns.close()


def test_dnf_back_end_live(private_dnf):
    call, repo = private_dnf
    if os.uname().machine != "x86_64":
        pytest.skip("the expected versions below name x86_64 packages")
    dummy, epoch = "rx-test-dummy", "rx-test-epoch"
    assert call("__virtual__") == {"ok": True}
    assert call("refresh_db") == {"ok": True}
    assert call("version", dummy) == {"ok": ""}
    assert call("latest_version", dummy, epoch, refresh=False) == {"ok": {dummy: "2.0-1.el9", epoch: "2:3.2-1.el9"}}
    assert call("install", dummy, version="1.0") == {"ok": {dummy: {"old": "", "new": "1.0-1.el9"}}}
    assert call("install", pkgs=[{epoch: "2:3.1-4.el9"}]) == {"ok": {epoch: {"old": "", "new": "2:3.1-4.el9"}}}
    assert call("install", dummy) == {"ok": {}}
    assert call("version", dummy, epoch) == {"ok": {dummy: "1.0-1.el9", epoch: "2:3.1-4.el9"}}
    listed = call("list_pkgs")["ok"]
    assert listed[dummy] == "1.0-1.el9" and listed[epoch] == "2:3.1-4.el9"
    info = call("info_installed", epoch)["ok"][epoch]
    assert info["version"] == "2:3.1-4.el9" and info["summary"] == f"rx test package {epoch}"

    assert call("list_upgrades", refresh=False) == {"ok": {dummy: "2.0-1.el9", epoch: "2:3.2-1.el9"}}
    assert call("upgrade_available", dummy, refresh=False) == {"ok": True}
    assert call("latest_version", dummy, refresh=False) == {"ok": "2.0-1.el9"}
    assert call("upgrade", refresh=False, pkgs=[dummy]) == {"ok": {dummy: {"old": "1.0-1.el9", "new": "2.0-1.el9"}}}
    assert call("upgrade", refresh=False) == {"ok": {epoch: {"old": "2:3.1-4.el9", "new": "2:3.2-1.el9"}}}
    assert call("upgrade_available", dummy, refresh=False) == {"ok": False}
    assert call("latest_version", dummy, refresh=False) == {"ok": ""}

    missing = call("install", "rx-no-such-package")
    assert "Unable to find a match: rx-no-such-package" in missing["error"]
    assert call("remove", dummy) == {"ok": {dummy: {"old": "2.0-1.el9", "new": ""}}}
    assert call("purge", pkgs=[epoch]) == {"ok": {epoch: {"old": "2:3.2-1.el9", "new": ""}}}
    assert call("remove", dummy) == {"ok": {}}
    rpm = str(repo / "rx-test-dummy-1.0-1.el9.noarch.rpm")
    assert call("install", sources=[{dummy: rpm}]) == {"ok": {dummy: {"old": "", "new": "1.0-1.el9"}}}
    assert call("remove", dummy) == {"ok": {dummy: {"old": "1.0-1.el9", "new": ""}}}
