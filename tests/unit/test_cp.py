"""The `cp` module's functions with a minion-side context: templates (sandboxed), local paths, http(s) from a
loopback server, push with remove_source; the file client behind them talks to the master's handlers in
process (tests.support.filechannel)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from rx.config import MinionConfig
from rx.master.filerecv import FileRecv, RecvSettings
from rx.master.fileserver import FileServer, FileServerSettings
from rx.minion.fileclient import FileClient
from rx.modules import CommandError, ExecContext
from rx.modules import cp
from tests.support.filechannel import DirectChannel


@pytest.fixture
def ctx(tmp_path) -> ExecContext:
    root = tmp_path / "srv"
    (root / "inc").mkdir(parents=True)
    (root / "app.conf.j2").write_text("{% include 'inc/head.j2' %}id={{ id }} os={{ grains.os }} "
                                      "port={{ port }} env={{ saltenv }} cache={{ opts.cachedir }}\n")
    (root / "inc" / "head.j2").write_text("# managed\n")
    (root / "evil.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    (root / "broken.j2").write_text("line one\n{% if %}\n")
    fs = FileServer(FileServerSettings(roots={"base": (str(root),)}, hash_dir=str(tmp_path / "hashes")))
    channel = DirectChannel(fs, FileRecv(RecvSettings(True, 2**20, str(tmp_path / "minions"))), "web1")
    cfg = MinionConfig(id="web1", cachedir=str(tmp_path / "cache"))
    return ExecContext(minion_id="web1", grains={"os": "Debian"}, config=cfg,
                       files=FileClient(channel, cfg.cachedir, cfg.saltenv))


def test_get_template_renders_with_context_and_includes(ctx, tmp_path):
    dest = tmp_path / "out" / "app.conf"
    with pytest.raises(CommandError, match="makedirs"):
        cp.get_template(ctx, "salt://app.conf.j2", str(dest), port=80)
    assert cp.get_template(ctx, "salt://app.conf.j2", str(dest), makedirs=True, port=80) == str(dest)
    assert dest.read_text() == (f"# managed\nid=web1 os=Debian port=80 env=base "
                                f"cache={tmp_path / 'cache'}\n")


def test_templates_are_sandboxed_and_errors_name_the_line(ctx, tmp_path):
    with pytest.raises(CommandError, match="SecurityError|access to attribute"):
        cp.get_template(ctx, "salt://evil.j2", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="broken.j2 line 2: TemplateSyntaxError"):
        cp.get_template(ctx, "salt://broken.j2", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_get_file_with_templated_names(ctx, tmp_path):
    out = cp.get_file(ctx, "salt://inc/{{ 'head' }}.j2", str(tmp_path / "{{ grains.os }}.txt"), template="jinja")
    assert out == str(tmp_path / "Debian.txt") and Path(out).read_text() == "# managed\n"


def test_local_paths(ctx, tmp_path):
    local = tmp_path / "local.txt"
    local.write_text("local\n")
    assert cp.hash_file(ctx, str(local)) == {"hash_type": "sha256", "hsum": hashlib.sha256(b"local\n").hexdigest()}
    assert cp.get_url(ctx, str(local)) == str(local)
    assert cp.get_url(ctx, f"file://{local}", None) == "local\n"
    assert cp.get_url(ctx, str(local), str(tmp_path / "copy")) == str(tmp_path / "copy")
    with pytest.raises(CommandError, match="absolute"):
        cp.hash_file(ctx, "relative.txt")
    assert cp.is_cached(ctx, str(local)) == ""


def test_get_url_http_with_source_hash(ctx, tmp_path):
    body = b"downloaded\n"

    class Handler(http.server.BaseHTTPRequestHandler):
        hits = 0

        def do_GET(self) -> None:
            Handler.hits += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/files/tool.sh"
        good = "sha256=" + hashlib.sha256(body).hexdigest()
        cached = cp.cache_file(ctx, url, source_hash=good)
        assert cached.endswith("extrn_files/base/127.0.0.1/files/tool.sh") and Path(cached).read_bytes() == body
        assert cp.cache_file(ctx, url, source_hash=good) == cached and Handler.hits == 1  # matched: not fetched
        assert cp.get_url(ctx, url, None) == "downloaded\n"
        with pytest.raises(CommandError, match="does not match source_hash"):
            cp.get_url(ctx, url, str(tmp_path / "bad"), source_hash="0" * 64)
        assert not (tmp_path / "bad").exists()
    finally:
        server.shutdown()
        server.server_close()


def test_push_and_remove_source(ctx, tmp_path):
    src = tmp_path / "report"
    src.write_bytes(b"r")
    assert cp.push(ctx, str(src), upload_path="daily/report", remove_source=True) is True
    assert (tmp_path / "minions" / "web1" / "files" / "daily" / "report").read_bytes() == b"r"
    assert not src.exists()


def test_without_a_master(tmp_path):
    with pytest.raises(CommandError, match="run it as a job"):
        cp.get_file(ExecContext(), "salt://x", str(tmp_path / "x"))
