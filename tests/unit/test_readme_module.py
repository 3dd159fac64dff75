"""The custom module of the README ("Custom execution modules"), taken from the README itself, shipped
the ways the README says: in module_dirs, and as an installed package with the README's entry point."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from rx.minion import loader
from rx.minion.calls import call_one
from rx.minion.registry import Registry
from rx.modules import ExecContext
from tests.support.pkgs import import_site, install_dist

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _example(name: str) -> str:
    m = re.search(rf"<!-- example: {re.escape(name)}[^>]*-->\s*```\w+\n(.*?)```", README, re.S)
    assert m, f"README has no example {name}"
    lines = m.group(1).splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines) + "\n"


def _registry(grains: dict, module_dirs: tuple = ()) -> Registry:
    reg = Registry(SimpleNamespace(module_dirs=module_dirs, cachedir=""))
    reg.context = ExecContext(minion_id="web1", grains=grains, registry=reg)
    return reg


def _greet(reg: Registry, *args):
    return call_one(reg, "hello.greet", list(args), {}, reg.context)


def test_the_readme_module_from_module_dirs(tmp_path):
    (tmp_path / "hello.py").write_text(_example("hello.py"))
    reg = _registry({"kernel": "Linux"}, (str(tmp_path),))
    assert _greet(reg, "Ada") == ("Hello Ada, from web1", 0)  # what the README says it answers
    assert "`Hello Ada, from web1`" in README
    assert _greet(reg, "bad\x1b") == ("ERROR: name must be printable", 1)
    other = _registry({"kernel": "Darwin"}, (str(tmp_path),))
    value, rc = _greet(other, "Ada")
    assert rc == 1 and value.endswith("greets from Linux only")
    assert "greets from Linux only" in other.unavailable()["hello"]


@pytest.fixture
def site(tmp_path, monkeypatch):
    yield import_site(tmp_path, monkeypatch)
    monkeypatch.undo()
    loader.entry_point_candidates(refresh=True)


def test_the_readme_module_as_a_package(site):
    project = tomllib.loads(_example("pyproject.toml"))["project"]
    entry_points = {"rx.modules": project["entry-points"]["rx.modules"]}
    assert entry_points == {"rx.modules": {"hello": "rx_hello.hello"}}
    install_dist(site, project["name"], project["version"],
                 {"rx_hello/__init__.py": "", "rx_hello/hello.py": _example("hello.py")}, entry_points)
    loader.entry_point_candidates(refresh=True)
    reg = _registry({"kernel": "Linux"})
    assert reg.sources()["hello"][0].label == "hello = rx_hello.hello from rx-hello 1.0"
    assert _greet(reg, "Ada") == ("Hello Ada, from web1", 0)
