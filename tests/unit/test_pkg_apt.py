"""pkg on apt/dpkg, for real on this Debian machine (as root).

Two kinds of test: (1) against a local flat repository this file builds with dpkg-deb (package
`rx-test-dummy`, versions 1.0 and 2.0, with a conffile), selected through apt's own `APT_CONFIG` so apt
sees only that repository while dpkg installs into the real system: install, upgrade, remove, purge,
list_upgrades, refresh_db and the dpkg lock are exercised end to end with no network; (2) against the
machine's own sources: list_pkgs and version against dpkg-query, latest_version against apt-cache, and an
install/remove of `sl` from the Debian mirror (skipped, with the reason, if the mirror cannot be reached).
Everything installed is purged in a finally."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from rx.modules import CommandError
from rx.modules import aptpkg as pkg

pytestmark = pytest.mark.skipif(pkg.__virtual__() is not True or os.geteuid() != 0,
                                reason="needs apt/dpkg and root")
DUMMY = "rx-test-dummy"
CONFFILE = Path("/etc/rx-test-dummy.conf")
WAIT_FOR_LOCK = 'DPkg::Lock::Timeout "600";\n'


def _status(name: str) -> str:
    p = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", name], capture_output=True, text=True,
                       timeout=30)
    return p.stdout.strip() if p.returncode == 0 else ""


def _purge(name: str) -> None:
    subprocess.run(["dpkg", "--purge", name], capture_output=True, timeout=300,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _build_deb(root: Path, version: str) -> Path:
    tree = root / f"build-{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "etc" / CONFFILE.name).write_text(f"version={version}\n")
    (tree / "DEBIAN" / "conffiles").write_text(f"{CONFFILE}\n")
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {DUMMY}\nVersion: {version}\nArchitecture: all\nMaintainer: rx tests <rx@example.invalid>\n"
        f"Section: misc\nPriority: optional\nDescription: rx test package\n Installed and removed by rx's unit tests.\n")
    deb = root / "repo" / f"{DUMMY}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(tree), str(deb)], check=True,
                   capture_output=True, timeout=60)
    return deb


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A flat repository with rx-test-dummy 1.0 and 2.0, and an apt.conf that makes it apt's only source."""
    root = tmp_path_factory.mktemp("aptrepo")
    (root / "repo").mkdir()
    stanzas = []
    debs = {}
    for version in ("1.0", "2.0"):
        deb = debs[version] = _build_deb(root, version)
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True,
                                 timeout=30).stdout
        data = deb.read_bytes()
        stanzas.append(control.rstrip("\n") + f"\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                       f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    (root / "repo" / "Packages").write_text("\n".join(stanzas))
    for d in ("lists/partial", "archives/partial", "parts"):
        (root / d).mkdir(parents=True)
    (root / "sources.list").write_text(f"deb [trusted=yes] file:{root / 'repo'} ./\n")
    (root / "apt.conf").write_text(
        f'Dir::Etc::SourceList "{root}/sources.list";\nDir::Etc::SourceParts "{root}/parts";\n'
        f'Dir::State::Lists "{root}/lists";\nDir::Cache::Archives "{root}/archives";\n'
        f'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n{WAIT_FOR_LOCK}')
    (root / "nowait.conf").write_text((root / "apt.conf").read_text().replace(WAIT_FOR_LOCK, ""))
    return {"root": root, **debs}


@pytest.fixture
def local_repo(repo, monkeypatch):
    """apt pointed at the local repository only (APT_CONFIG); rx-test-dummy purged afterwards."""
    if _status(DUMMY):
        pytest.skip(f"{DUMMY} is installed already; not touching it")
    monkeypatch.setenv("APT_CONFIG", str(repo["root"] / "apt.conf"))
    try:
        yield repo
    finally:
        _purge(DUMMY)
    assert not _status(DUMMY) and not CONFFILE.exists()


@pytest.fixture
def system_apt(tmp_path, monkeypatch):
    """apt with the machine's own sources and settings; only waiting for the dpkg lock is added (other work on
    this machine may run apt-get at the same time)."""
    conf = tmp_path / "apt.conf"
    conf.write_text(WAIT_FOR_LOCK)
    monkeypatch.setenv("APT_CONFIG", str(conf))


def test_virtual_and_parsers():
    assert pkg.__virtual__() is True
    assert pkg.parse_dpkg_query("ii \tbash\t5.2-1\tamd64\nrc \told\t1.0\tamd64\nii \tlibc6\t2.36\ti386\n"
                                "ii \tdata\t1\tall\n", "amd64") == {"bash": ["5.2-1"], "libc6:i386": ["2.36"],
                                                                    "data": ["1"]}
    assert pkg.parse_update("Hit:1 http://deb.debian.org/debian bookworm InRelease\n"
                            "Get:2 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]\n"
                            "Err:3 http://example.invalid/debian x InRelease\n  Could not resolve\n"
                            "Reading package lists...\n") == {
        "http://deb.debian.org/debian bookworm InRelease": None,
        "http://deb.debian.org/debian bookworm-updates InRelease": True,
        "http://example.invalid/debian x InRelease": False}


def test_local_repo_lifecycle(local_repo):
    refreshed = pkg.refresh_db()
    assert any(v is True for k, v in refreshed.items() if "file:" in k), refreshed
    assert pkg.refresh_db(cache_valid_time=3600) == {}
    assert pkg.version(DUMMY) == "" and pkg.latest_version(DUMMY, refresh=False) == "2.0"
    assert pkg.upgrade_available(DUMMY, refresh=False) is False

    assert pkg.install(DUMMY, version="1.0") == {DUMMY: {"old": "", "new": "1.0"}}
    assert _status(DUMMY) == "ii" and pkg.version(DUMMY) == "1.0" and pkg.list_pkgs()[DUMMY] == "1.0"
    assert pkg.version(DUMMY, "bash") == {DUMMY: "1.0", "bash": pkg.version("bash")}
    info = pkg.info_installed(DUMMY)[DUMMY]
    assert info["version"] == "1.0" and info["architecture"] == "all" and info["group"] == "misc"
    assert info["description"].startswith("rx test package\n Installed") and re.match(r"\d{4}-\d\d-\d\dT",
                                                                                      info["install_date"])
    assert pkg.latest_version(DUMMY, refresh=False) == "2.0"
    assert pkg.upgrade_available(DUMMY, refresh=False) is True
    assert pkg.list_upgrades(refresh=False) == {DUMMY: "2.0"}  # apt sees only the local repository

    assert pkg.upgrade(refresh=False) == {DUMMY: {"old": "1.0", "new": "2.0"}}
    assert pkg.version(DUMMY) == "2.0" and CONFFILE.read_text() == "version=2.0\n"
    assert pkg.latest_version(DUMMY, refresh=False) == "" and pkg.list_upgrades(refresh=False) == {}
    assert pkg.install(DUMMY) == {}  # installed already: no change

    CONFFILE.write_text("edited by the admin\n")
    assert pkg.install(DUMMY, version="1.0") == {DUMMY: {"old": "2.0", "new": "1.0"}}
    assert CONFFILE.read_text() == "edited by the admin\n"  # --force-confold: no prompt, the admin's file kept
    assert pkg.upgrade(refresh=False, pkgs=[DUMMY]) == {DUMMY: {"old": "1.0", "new": "2.0"}}

    assert pkg.remove(DUMMY) == {DUMMY: {"old": "2.0", "new": ""}}
    assert _status(DUMMY) == "rc" and CONFFILE.exists()  # remove keeps the conffile
    assert pkg.remove(DUMMY) == {}
    assert pkg.purge(DUMMY) == {DUMMY: {"old": "2.0", "new": ""}}
    assert _status(DUMMY) == "" and not CONFFILE.exists()

    deb = str(local_repo["1.0"])
    assert pkg.install(sources=[{DUMMY: deb}]) == {DUMMY: {"old": "", "new": "1.0"}}
    assert pkg.purge(pkgs=[DUMMY]) == {DUMMY: {"old": "1.0", "new": ""}}


def test_missing_package_is_a_clear_error(local_repo):
    with pytest.raises(CommandError, match="^apt-get install failed \\(exit 100\\): E: Unable to locate package "
                                           "rx-no-such-package$"):
        pkg.install("rx-no-such-package")
    with pytest.raises(CommandError, match="Unable to locate package"):
        pkg.install(pkgs=["rx-no-such-package", DUMMY])
    assert not _status(DUMMY)  # nothing half-done
    assert pkg.remove("rx-no-such-package") == {}
    assert pkg.version("rx-no-such-package") == "" and pkg.info_installed("rx-no-such-package") == {}
    assert pkg.latest_version("rx-no-such-package", refresh=False) == ""


@pytest.mark.parametrize("kwargs, message", [
    ({}, "name a package"),
    ({"name": "-y"}, "package name must be"),
    ({"name": "a b"}, "package name must be"),
    ({"pkgs": "curl;rm"}, "package name must be"),
    ({"pkgs": 7}, "pkgs must be a list"),
    ({"name": "curl", "version": "1 2"}, "version must be"),
    ({"sources": [{"x": "relative.deb"}]}, "absolute path"),
    ({"sources": [{"x": "/nonexistent/x.deb"}]}, "does not exist"),
])
def test_bad_arguments_are_refused_before_apt_runs(kwargs, message):
    with pytest.raises(CommandError, match=message):
        pkg.install(**kwargs)


def test_dpkg_lock_held_by_another_process(local_repo, monkeypatch):
    monkeypatch.setenv("APT_CONFIG", str(local_repo["root"] / "nowait.conf"))  # apt's default: do not wait
    fd = os.open("/var/lib/dpkg/lock-frontend", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pytest.skip("another package manager is running on this machine right now")
        # the lock is held by this (pytest) process; apt-get, another process, must say so and not wait
        with pytest.raises(CommandError, match="locked by another package manager.*lock-frontend"):
            pkg.install(DUMMY)
    finally:
        os.close(fd)
    assert not _status(DUMMY)


def test_list_pkgs_and_version_match_dpkg_query(system_apt):
    native = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, timeout=30).stdout.strip()
    out = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${binary:Package} ${Version}\n"],
                         capture_output=True, text=True, timeout=60).stdout
    expected: dict[str, str] = {}
    for line in out.splitlines():
        status, name, ver = line.split(" ", 2)[0], line.split()[-2], line.split()[-1]
        if status[1] == "i":
            name = name.removesuffix(":" + native)
            expected[name] = ",".join(filter(None, [expected.get(name), ver.strip()]))
    assert pkg.list_pkgs() == expected
    bash = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "bash"], capture_output=True, text=True,
                          timeout=30).stdout
    assert pkg.version("bash") == bash and re.fullmatch(r"\S+-\S+", bash)
    assert pkg.list_pkgs(versions_as_list=True)["bash"] == [bash]


def test_latest_version_of_bash_agrees_with_apt_cache_policy(system_apt):
    out = subprocess.run(["apt-cache", "policy", "bash"], capture_output=True, text=True, timeout=60).stdout
    installed = re.search(r"Installed: (\S+)", out).group(1)
    candidate = re.search(r"Candidate: (\S+)", out).group(1)
    newer = subprocess.run(["dpkg", "--compare-versions", candidate, "gt", installed], timeout=30).returncode == 0
    assert pkg.latest_version("bash", refresh=False) == (candidate if newer else "")
    assert pkg.upgrade_available("bash", refresh=False) is newer
    assert ("bash" in pkg.list_upgrades(refresh=False)) is newer


def test_install_and_remove_from_the_debian_mirror(system_apt):
    name = "sl"
    if _status(name):
        pytest.skip(f"{name} is installed already; not removing a package this test did not install")
    try:
        refreshed = pkg.refresh_db()
    except CommandError as exc:
        pytest.skip(f"the package mirror cannot be reached: {exc}")
    if not refreshed or all(v is False for v in refreshed.values()):
        pytest.skip(f"the package mirror cannot be reached: apt-get update said {refreshed}")
    try:
        candidate = pkg.latest_version(name, refresh=False)
        assert candidate, "sl is in Debian's main archive"
        changes = pkg.install(name)
        assert changes[name] == {"old": "", "new": candidate}
        assert pkg.version(name) == candidate and os.path.exists("/usr/games/sl")
        assert pkg.remove(name)[name] == {"old": candidate, "new": ""}
        assert pkg.version(name) == "" and not os.path.exists("/usr/games/sl")
    finally:
        _purge(name)
    assert not _status(name)
