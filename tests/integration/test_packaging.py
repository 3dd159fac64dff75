"""Issue #13, packaging: `python -m build` makes an sdist and, from that sdist, a wheel (so the sdist is
complete); the wheel installs into a clean virtualenv (no system site-packages, nothing of this checkout or
of the dev venv) with its dependencies resolved by pip from the wheel's own metadata, and the installed
commands run from another directory: `rx --version`, `rx-call --local test.ping`.

Fast and offline after the first run: the build uses this venv's setuptools (--no-isolation) and the
dependencies come from a wheelhouse under ~/.cache/rx-tests (filled from the package index by `pip download`
when it cannot satisfy the wheel's requirements: the first run, or a changed requirement)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rx import __version__

ROOT = Path(__file__).resolve().parents[2]
DIST_NAME = "rx-exec"
WHEELHOUSE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rx-tests" / "wheelhouse"
SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "__pycache__", "*.egg-info", ".salt", ".rxvenv",
                              ".demo", ".pytest_cache", ".keycache")
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RX_CONFIG_DIR")}


def _dashboard_files() -> set[str]:
    """The dashboard's files (rx-api serves them at / and /static/): package_data must ship every one."""
    static = ROOT / "api" / "static"
    return {p.relative_to(static).as_posix() for p in static.rglob("*") if p.is_file()}


def run(*argv: str | Path, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=ENV,
                       stdin=subprocess.DEVNULL, **kw)
    assert r.returncode == 0, f"{argv}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def pip(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "pip", "--disable-pip-version-check", *args, timeout=timeout)


def _forget_our_wheels() -> None:
    """The wheelhouse keeps dependencies only (rx_exec is built afresh each run, with the same version)."""
    for old in WHEELHOUSE.glob("rx_exec-*"):
        old.unlink()


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    for module in ("build", "wheel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the {module} package is not installed (pip install -e '.[test]')")
    work = tmp_path_factory.mktemp("pkg")
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)  # what a clone holds (the checkout stays untouched by the build)
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", work / "dist", src)
    return work / "dist"


def test_the_sdist_holds_the_sources_docs_and_generated_files(dist):
    (sdist,) = [*dist.glob("rx_exec-*.tar.gz"), *dist.glob("rx-exec-*.tar.gz")]  # the name by setuptools' age
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"README.md", "setup.cfg", "pyproject.toml", "client/cli.py", "share/man/man1/rx.1",
            "share/bash-completion/completions/rx-key", "share/zsh/site-functions/_rx"} <= names
    assert not {n for n in names if n.startswith(("tests/", "bench/", ".venv"))}
    assert {f"api/static/{f}" for f in _dashboard_files()} <= names


def test_the_wheel_installs_into_a_clean_venv_and_runs(dist, tmp_path):
    (wheel,) = dist.glob("rx_exec-*.whl")
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(f"rx_exec-{__version__}.dist-info/METADATA").decode()
        assert f"Name: {DIST_NAME}\n" in meta and f"Version: {__version__}\n" in meta
        assert not [n for n in z.namelist() if n.startswith(("rx/tests/", "rx/bench/", "tests/", "bench/"))]
        shipped = {n for n in z.namelist() if n.startswith("rx/api/static/")}
        assert shipped == {f"rx/api/static/{f}" for f in _dashboard_files()}, "the wheel lacks dashboard files"
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)  # no system site-packages, nothing installed
    py = venv / "bin" / "python"
    install = ["--python", py, "install", "--no-index", "--find-links", WHEELHOUSE, wheel]
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    try:
        pip(*install)
    except AssertionError:  # first run, or a requirement the wheelhouse lacks: fetch what the wheel requires
        _forget_our_wheels()  # an older rx_exec there would be taken for this one, with its older requirements
        pip("download", "--dest", WHEELHOUSE, wheel)
        _forget_our_wheels()
        pip(*install)
    home = tmp_path / "elsewhere"
    (home / "config").mkdir(parents=True)
    env_dir = {"cwd": home}
    r = run(py, "-c", "import json, rx, sys; print(json.dumps([rx.__file__, sys.path]))", **env_dir)
    where, path = json.loads(r.stdout)
    assert where.startswith(str(venv)), where
    assert not [p for p in path if p.startswith((str(ROOT), str(Path(sys.executable).parent.parent)))], path
    r = run(venv / "bin" / "rx", "--version", **env_dir)
    assert r.stdout.strip() == f"rx {__version__}"
    ENV["RX_CONFIG_DIR"] = str(home / "config")  # an empty config dir: rx-call --local needs no config
    try:
        r = run(venv / "bin" / "rx-call", "--local", "--id", "fresh", "test.ping", **env_dir)
        assert r.stdout.split() == ["fresh:", "True"]
        r = run(venv / "bin" / "rx-call", "--local", "--id", "fresh", "--out", "json", "test.ping", **env_dir)
        assert json.loads(r.stdout) == {"fresh": True}
    finally:
        del ENV["RX_CONFIG_DIR"]
    for name in ("rx-master", "rx-minion", "rx-key", "rx-run", "rx-api"):
        assert run(venv / "bin" / name, "--help", **env_dir).stdout.startswith("usage:")
    for rel in ("share/man/man1/rx.1", "share/bash-completion/completions/rx", "share/zsh/site-functions/_rx-key",
                "share/fish/vendor_completions.d/rx-call.fish"):
        assert (venv / rel).read_text() == (ROOT / rel).read_text()
