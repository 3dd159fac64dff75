"""rx.minion.entrypoints: the installed packages' rx.modules entry points, cached beside a fingerprint of
the import path; installing or removing a package is seen at once, a bad cache file is ignored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rx.minion import entrypoints
from rx.transport.codec import decode, encode
from tests.support.pkgs import import_site, install_dist


@pytest.fixture
def site(tmp_path, monkeypatch):
    return import_site(tmp_path, monkeypatch)


def _names(cachedir) -> list[str]:
    return [name for name, _value, _dist in entrypoints.installed(str(cachedir))]


def test_install_and_remove_are_seen_through_the_cache(site, tmp_path):
    cache = tmp_path / "cache"
    assert "greeter" not in _names(cache)
    assert Path(entrypoints.cache_path(str(cache))).is_file()
    install_dist(site, "rx-demo", "1.0", {"rxdemo/__init__.py": ""}, {"rx.modules": {"greeter": "rxdemo.greeter"}})
    assert ["greeter", "rxdemo.greeter", "rx-demo 1.0"] in entrypoints.installed(str(cache))
    shutil.rmtree(site / "rx_demo-1.0.dist-info")
    assert "greeter" not in _names(cache)


def test_a_matching_cache_is_used_and_refresh_reads_again(site, tmp_path):
    cache = tmp_path / "cache"
    _names(cache)
    path = Path(entrypoints.cache_path(str(cache)))
    data = decode(path.read_bytes())
    data["entry_points"] = [["marker", "nowhere.marker", ""]]
    path.write_bytes(encode(data))
    assert _names(cache) == ["marker"], "the fingerprint matches: no child process, the cached answer"
    assert "marker" not in entrypoints.installed(str(cache), refresh=True)
    assert "marker" not in _names(cache), "refresh rewrote the cache"


@pytest.mark.parametrize("content", [b"", b"\xc1garbage", encode({"v": 99}), encode([1, 2]),
                                     encode({"v": 1, "fingerprint": [], "entry_points": [[1, 2, 3]]})])
def test_a_bad_cache_file_is_ignored(site, tmp_path, content):
    install_dist(site, "rx-demo", "1.0", {"rxdemo/__init__.py": ""}, {"rx.modules": {"greeter": "rxdemo.greeter"}})
    cache = tmp_path / "cache"
    cache.mkdir()
    Path(entrypoints.cache_path(str(cache))).write_bytes(content)
    assert "greeter" in _names(cache)


def test_an_unwritable_cachedir_is_not_an_error(site, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    cache = tmp_path / "file" / "cache"  # cannot be created, not even by root
    install_dist(site, "rx-demo", "1.0", {"rxdemo/__init__.py": ""}, {"rx.modules": {"greeter": "rxdemo.greeter"}})
    assert "greeter" in _names(cache)


def test_two_import_paths_keep_two_caches(site, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    _names(cache)
    first = Path(entrypoints.cache_path(str(cache)))
    monkeypatch.syspath_prepend(str(tmp_path / "elsewhere"))
    _names(cache)
    second = Path(entrypoints.cache_path(str(cache)))
    assert first != second and first.is_file() and second.is_file()
    assert decode(first.read_bytes())["fingerprint"] != decode(second.read_bytes())["fingerprint"]
