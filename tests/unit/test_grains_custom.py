"""Custom grain functions (files in <cachedir>/extmods/grains, entry points `rx.grains`) and the
layers' precedence: core < custom < grains file < minion config `grains:`."""

from __future__ import annotations

import os
import textwrap

import pytest

from rx.config import MinionConfig
from rx.minion.grains import Grains
from rx.minion.grains.custom import custom_grains, extmods_dir

MODULE = '''
def plain():
    return {"from_custom": 1, "os": "CustomOS", "kernel": "k-custom"}

def sees_core(grains):
    return {"core_id_seen": grains["id"]}

def raises():
    raise RuntimeError("broken grain")

def not_a_dict():
    return ["x"]

def odd_values():
    return {"a_set": {1, 2}, "fine": [1, {"b": None}]}

def _private():
    return {"private": True}
'''


def write(dirpath, name: str, text: str, mode: int = 0o644) -> None:
    dirpath.mkdir(parents=True, exist_ok=True)
    path = dirpath / name
    path.write_text(textwrap.dedent(text))
    os.chmod(path, mode)


@pytest.fixture
def cfg(tmp_path) -> MinionConfig:
    (tmp_path / "conf").mkdir()
    return MinionConfig(id="web1", config_dir=str(tmp_path / "conf"), cachedir=str(tmp_path / "cache"),
                        grains={"role": "from-config"}, master="salt.example")


def test_a_grains_module_file(tmp_path, caplog):
    d = tmp_path / "grains"
    write(d, "mine.py", MODULE)
    got = custom_grains([d], {"id": "web1"}, entry_points=False)
    assert got == {"from_custom": 1, "os": "CustomOS", "kernel": "k-custom", "core_id_seen": "web1",
                   "fine": [1, {"b": None}]}
    assert "broken grain" in caplog.text and "not a dict of grains" in caplog.text and "a_set" in caplog.text


def test_modules_that_stay_out(tmp_path, caplog):
    d = tmp_path / "grains"
    write(d, "a_virtual.py", "def __virtual__():\n    return False\n\ndef g():\n    return {'virtual_off': 1}\n")
    write(d, "b_broken.py", "import no_such_module_anywhere\n")
    write(d, "c_group_writable.py", "def g():\n    return {'gw': 1}\n", mode=0o664)
    write(d, "d_all.py", "__all__ = ['listed']\ndef listed():\n    return {'listed': 1}\n"
                         "def unlisted():\n    return {'unlisted': 1}\n")
    got = custom_grains([d, tmp_path / "absent"], {}, entry_points=False)
    assert got == {"listed": 1}
    assert "no_such_module_anywhere" in caplog.text and "writable by group or others" in caplog.text


def test_a_file_owned_by_another_user_is_not_loaded(tmp_path, caplog):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file away")
    d = tmp_path / "grains"
    write(d, "theirs.py", "def g():\n    return {'theirs': 1}\n")
    os.chown(d / "theirs.py", 65534, 65534)
    assert custom_grains([d], {}, entry_points=False) == {}
    assert "owned by uid 65534" in caplog.text


def test_entry_points(tmp_path, monkeypatch):
    """A package installed with an `rx.grains` entry point (a real dist-info on sys.path)."""
    site = tmp_path / "site"
    write(site, "rxdemo_grains.py", "def rack():\n    return {'rack': 'r12'}\n\ndef room():\n"
                                    "    return {'room': 'b2', 'rack': 'from-module'}\n")
    write(site / "rxdemo_grains-1.0.dist-info", "METADATA", "Metadata-Version: 2.1\nName: rxdemo-grains\n"
                                                            "Version: 1.0\n")
    write(site / "rxdemo_grains-1.0.dist-info", "entry_points.txt",
          "[rx.grains]\na_module = rxdemo_grains\nb_one = rxdemo_grains:rack\nc_broken = rxdemo_grains:nope\n")
    monkeypatch.syspath_prepend(str(site))
    got = custom_grains([], {})
    assert got == {"rack": "r12", "room": "b2"}  # b_one (the function) runs after a_module, so it wins


def test_layers_and_their_precedence(cfg, tmp_path):
    write(extmods_dir(cfg.cachedir), "mine.py", MODULE)
    (tmp_path / "conf" / "grains").write_text("kernel: k-file\nrole: from-file\nfile_only: yes\n")
    layers = Grains.load("web1", cfg)
    merged = layers.merged()
    assert merged["os"] == "CustomOS"              # custom over core
    assert merged["kernel"] == "k-file"            # grains file over custom
    assert merged["role"] == "from-config"         # minion config over the grains file
    assert merged["file_only"] is True and merged["from_custom"] == 1
    assert merged["master"] == "salt.example" and merged["id"] == "web1"
    assert merged["core_id_seen"] == "web1"


def test_the_grains_file_is_read_again_only_when_it_changed(cfg, tmp_path):
    layers = Grains.load("web1", cfg)
    assert not layers.file_changed() and "role2" not in layers.merged()
    (tmp_path / "conf" / "grains").write_text("role2: db\n")
    assert layers.file_changed()
    layers.reload_file()
    assert not layers.file_changed() and layers.merged()["role2"] == "db"
    (tmp_path / "conf" / "grains").write_text(": not yaml [\n")
    assert layers.file_changed()
    layers.reload_file()  # a broken file is logged and left out, never fatal
    assert "role2" not in layers.merged()


def test_without_a_config_there_are_the_core_grains_only():
    layers = Grains.load("local")
    assert layers.file_path is None and not layers.file_changed()
    assert layers.merged()["id"] == "local" and "os" in layers.merged()
