"""An installed Python distribution made by hand in a directory (what pip leaves in site-packages: the
package and a `*.dist-info` with METADATA and entry_points.txt), for tests of rx's `rx.modules`
entry points: put the directory on sys.path (or PYTHONPATH) and importlib.metadata finds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def install_dist(site: Path, dist: str, version: str, files: dict[str, str],
                 entry_points: dict[str, dict[str, str]]) -> Path:
    """Write `files` (path relative to `site` -> text) and `<dist>-<version>.dist-info` declaring
    `entry_points` (group -> {name: value}) into `site`; returns `site`."""
    for rel, text in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    groups = [f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items())
              for group, eps in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(groups))
    (info / "RECORD").write_text("")
    return site


def import_site(tmp_path: Path, monkeypatch: Any) -> Path:
    """A new empty directory `tmp_path/site`, first on sys.path (undone with the monkeypatch), for
    install_dist."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site
