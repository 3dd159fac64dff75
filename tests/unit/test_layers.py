"""The layering rules of ARCHITECTURE.md, checked on the source: which package may import which,
zmq only inside transport/, and product modules kept small."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [p for p in ROOT.rglob("*.py")
           if not any(part in {"tests", "bench", ".venv", "build", ".demo"} or part.startswith(".")
                      for part in p.relative_to(ROOT).parts)]
MAX_LINES = 450

# package -> rx packages it must not import
FORBIDDEN = {
    "transport": ("rx.master", "rx.minion", "rx.client", "rx.modules", "rx.config", "rx.configspec", "rx.targeting"),
    "modules": ("rx.master", "rx.minion", "rx.client"),
    "minion": ("rx.master", "rx.client"),
    "master": ("rx.minion", "rx.client"),
    "runners": ("rx.minion", "rx.master.store"),
    "api": ("rx.minion",),
    "targeting.py": ("rx.master", "rx.minion", "rx.client", "rx.modules", "rx.config"),
    "config.py": ("rx.master", "rx.minion", "rx.client", "rx.modules"),
    "authconfig.py": ("rx.master", "rx.minion", "rx.client", "rx.modules"),
    "apiconfig.py": ("rx.master", "rx.minion", "rx.client", "rx.modules", "rx.api"),
    "acl.py": ("rx.master", "rx.minion", "rx.client", "rx.modules", "rx.config"),
    "pathsafe.py": ("rx.transport", "rx.master", "rx.minion", "rx.client", "rx.modules", "rx.config", "rx.targeting"),
    "grainsfile.py": ("rx.transport", "rx.master", "rx.minion", "rx.client", "rx.modules", "rx.config", "rx.targeting"),
}


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append(node.module)
    return out


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_product_files_found():
    assert len(PRODUCT) > 40


@pytest.mark.parametrize("path", PRODUCT, ids=_rel)
def test_layers(path):
    rel = path.relative_to(ROOT)
    top = rel.parts[0]
    mods = _imports(path)
    for banned in FORBIDDEN.get(top, ()):
        bad = [m for m in mods if m == banned or m.startswith(banned + ".")]
        assert not bad, f"{rel} imports {bad}: {top} may not import {banned}"
    if top != "transport":
        assert not [m for m in mods if m == "zmq" or m.startswith("zmq.")], f"{rel} imports zmq outside transport/"
    if top == "client":
        assert not [m for m in mods if m.startswith("rx.master.store")], f"{rel}: clients use rx.master.services"


@pytest.mark.parametrize("path", PRODUCT, ids=_rel)
def test_nothing_imports_the_api(path):
    """rx-api sits on top: no daemon, client or runner depends on it."""
    rel = path.relative_to(ROOT)
    if rel.parts[0] != "api":
        assert not [m for m in _imports(path) if m == "rx.api" or m.startswith("rx.api.")], f"{rel} imports rx.api"


@pytest.mark.parametrize("path", PRODUCT, ids=_rel)
def test_modules_stay_small(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{_rel(path)} has {n} lines (at most {MAX_LINES}): split it"


def test_every_package_is_installed():
    """A package (a directory with __init__.py) missing from setup.cfg's `packages` is left out of `pip install .`."""
    listed = set(re.findall(r"^    (rx(?:\.\w+)*)$", (ROOT / "setup.cfg").read_text(), re.M))
    found = {"rx" + ("." + ".".join(p.parent.relative_to(ROOT).parts) if p.parent != ROOT else "")
             for p in ROOT.rglob("__init__.py")
             if not {".venv", "build", "tests", ".salt", ".rxvenv", "bench"} & set(p.relative_to(ROOT).parts)}
    assert found == listed


@pytest.mark.parametrize("path", PRODUCT, ids=_rel)
def test_only_the_metrics_exposition_imports_prometheus_client(path):
    """The minion, the clients and the master's hot path count nothing through prometheus_client (its objects
    cost microseconds an update): rx.master.metrics.recorder counts, the exposition alone renders."""
    rel = _rel(path)
    if rel != "master/metrics/exposition.py":
        assert not [m for m in _imports(path) if m.split(".")[0] == "prometheus_client"], rel
    if rel.split("/")[0] in ("minion", "modules", "client", "transport"):
        assert not [m for m in _imports(path) if m.split(".")[0] == "tornado"], rel


def test_no_test_file_name_is_in_both_suites():
    """tests/unit and tests/integration are not packages: two test files of one name stop pytest at collection."""
    unit = {p.name for p in (ROOT / "tests" / "unit").glob("test_*.py")}
    integration = {p.name for p in (ROOT / "tests" / "integration").glob("test_*.py")}
    assert not unit & integration
