"""The minion's file client and module sync against a real file server, in process
(tests.support.filechannel): each request goes through the master's own command table (typed load,
handler) with the wire's encoding, without the sockets and sealing the integration tests cover.  And the
job channel over a real socketpair."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading

import pytest

from rx.master.filerecv import FileRecv, RecvSettings
from rx.master.fileserver import FileServer, FileServerSettings
from rx.minion.fileclient import FileClient, FileClientError
from rx.minion.jobchannel import SYNCED, ChannelError, JobChannels, PipeChannel
from rx.minion.link import Outcome, Status
from rx.minion.sync import sync, sync_all
from rx.modules import CommandError
from rx.transport.filemsgs import FILE_STAT, SERVE_FILE
from tests.support.filechannel import DirectChannel


@pytest.fixture
def roots(tmp_path):
    root = tmp_path / "srv"
    (root / "_modules").mkdir(parents=True)
    (root / "_grains").mkdir()
    return root


@pytest.fixture
def channel(roots, tmp_path):
    fs = FileServer(FileServerSettings(roots={"base": (str(roots),)}, buffer_size=4096,
                                       hash_dir=str(tmp_path / "hashes")))
    return DirectChannel(fs, FileRecv(RecvSettings(True, 4 * 2**20, str(tmp_path / "minions"))))


@pytest.fixture
def client(channel, tmp_path):
    return FileClient(channel, str(tmp_path / "cache"), sleep=lambda s: None)


def test_a_file_in_many_chunks_is_cached_once(client, channel, roots, tmp_path):
    data = os.urandom(50_000)
    (roots / "big.bin").write_bytes(data)
    path = client.cache_file("salt://big.bin")
    assert path == str(tmp_path / "cache" / "files" / "base" / "big.bin")
    assert open(path, "rb").read() == data
    assert channel.count(SERVE_FILE) == 13  # 4096-byte chunks
    inode = os.stat(path).st_ino
    assert client.cache_file("rx://big.bin?saltenv=base") == path
    assert channel.count(SERVE_FILE) == 13 and os.stat(path).st_ino == inode  # unchanged: not fetched again
    (roots / "big.bin").write_bytes(data[:-1] + b"!")
    client.cache_file("salt://big.bin")
    assert open(path, "rb").read()[-1:] == b"!"
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".rxpart")]


def test_a_change_that_keeps_size_and_mtime_is_caught_by_the_hash(client, channel, roots):
    target = roots / "f"
    target.write_bytes(b"A" * 10_000)

    def rewrite_keeping_size_and_mtime() -> None:
        st = os.stat(target)
        target.write_bytes(os.urandom(10_000))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))

    channel.after[SERVE_FILE] = rewrite_keeping_size_and_mtime  # after every chunk: never one version
    with pytest.raises(FileClientError, match="does not match the sha256.*not served corrupt"):
        client.cache_file("salt://f")
    assert not client.is_cached("salt://f")
    calls = []

    def once() -> None:
        if not calls:
            calls.append(1)
            rewrite_keeping_size_and_mtime()
    channel.after[SERVE_FILE] = once  # changed once: the second try gets the new version whole
    path = client.cache_file("salt://f")
    assert hashlib.sha256(open(path, "rb").read()).digest() == hashlib.sha256(target.read_bytes()).digest()


def test_a_file_growing_while_served_is_reported(client, channel, roots):
    target = roots / "log"
    target.write_bytes(b"x" * 20_000)
    channel.after[SERVE_FILE] = lambda: open(target, "ab").write(b"more")
    with pytest.raises(FileClientError, match="changed on the master while it was served"):
        client.cache_file("salt://log")


def test_a_file_written_while_the_master_hashes_it_is_reported_not_waited_for(roots, tmp_path):
    from rx.master.filehash import HashCache
    target = roots / "growing"
    target.write_bytes(b"x" * 100_000)
    fs = FileServer(FileServerSettings(roots={"base": (str(roots),)}), HashCache(None, budget=10))
    channel = DirectChannel(fs)

    def grow(_: float) -> None:  # the client's pause between two asks: the file grows meanwhile
        with open(target, "ab") as f:
            f.write(b"more")
    client = FileClient(channel, str(tmp_path / "cache"), sleep=grow)
    with pytest.raises(FileClientError, match="keeps changing on the master while it is hashed"):
        client.cache_file("salt://growing")
    assert channel.count(FILE_STAT) <= 5
    fs.close()


def test_missing_files_envs_and_traversal(client):
    with pytest.raises(FileClientError, match="no file 'nope' in environment 'base'"):
        client.cache_file("salt://nope")
    with pytest.raises(FileClientError, match="no environment 'dev'"):
        client.cache_file("salt://a?saltenv=dev")
    for url in ("salt://../../etc/passwd", "salt:///etc/passwd", "salt://a\0b", "salt://x?saltenv=../../tmp"):
        with pytest.raises(FileClientError):
            client.cache_file(url)
    with pytest.raises(FileClientError, match="is a directory"):
        client.cache_file("salt://_modules")


def test_get_file_get_dir_and_listings(client, roots, tmp_path):
    (roots / "etc" / "app").mkdir(parents=True)
    (roots / "etc" / "app" / "a.conf").write_text("a")
    (roots / "etc" / "app" / "b.conf").write_text("b")
    out = tmp_path / "out"
    with pytest.raises(CommandError, match="makedirs"):
        client.get_file("salt://etc/app/a.conf", str(out / "x" / "a.conf"))
    dest = str(out / "x" / "a.conf")
    assert client.get_file("salt://etc/app/a.conf", dest, makedirs=True) == dest
    assert client.get_file("salt://etc/app/b.conf", str(out / "x") + "/") == str(out / "x" / "b.conf")
    copied = client.get_dir("salt://etc/app", str(out))
    assert sorted(copied) == [str(out / "app" / "a.conf"), str(out / "app" / "b.conf")]
    assert client.list_master(prefix="etc/") == ["etc/app/a.conf", "etc/app/b.conf"]
    assert client.list_master_dirs(prefix="e") == ["etc", "etc/app"]
    assert client.hash_file("salt://etc/app/a.conf") == {"hash_type": "sha256",
                                                          "hsum": hashlib.sha256(b"a").hexdigest()}
    cached = client.cache_dir("salt://etc", include_pat="*a.conf")
    assert [os.path.basename(p) for p in cached] == ["a.conf"]


def test_push(client, tmp_path):
    src = tmp_path / "report.txt"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 5))  # several push chunks
    assert client.push(str(src)) is True
    stored = tmp_path / "minions" / "m1" / "files" / str(src).lstrip("/")
    assert stored.read_bytes() == src.read_bytes()
    with pytest.raises(FileClientError, match="absolute"):
        client.push("relative/path")
    with pytest.raises(FileClientError, match="'..'"):
        client.push(str(src), upload_path="../../etc/cron.d/x")
    big = tmp_path / "huge"
    with open(big, "wb") as f:
        f.truncate(4 * 2**20 + 1)
    with pytest.raises(FileClientError, match="file_recv_max_size"):
        client.push(str(big))


# ---------------------------------------------------------------- sync

def test_sync_modules(client, channel, roots, tmp_path):
    (roots / "_modules" / "mymod.py").write_text("def hi():\n    return 1\n")
    (roots / "_modules" / "other.py").write_text("x = 1\n")
    (roots / "_modules" / "not-a-name.py").write_text("")
    (roots / "_modules" / "sub").mkdir()
    (roots / "_modules" / "sub" / "deep.py").write_text("")
    (roots / "_grains" / "site.py").write_text("def site():\n    return {'site': 'x'}\n")
    extmods = tmp_path / "cache" / "extmods"
    assert sync(client, "modules") == ["modules.mymod", "modules.other"]
    assert sorted(os.listdir(extmods / "modules")) == ["mymod.py", "other.py"]
    assert (extmods / "modules" / "mymod.py").read_bytes() == (roots / "_modules" / "mymod.py").read_bytes()
    assert channel.synced == [["modules"]]
    assert sync(client, "modules") == [] and channel.synced == [["modules"]]  # nothing changed: no reload
    (roots / "_modules" / "mymod.py").write_text("def hi():\n    return 2\n")
    (roots / "_modules" / "other.py").unlink()
    assert sync(client, "modules") == ["modules.mymod"]
    assert os.listdir(extmods / "modules") == ["mymod.py"]
    assert "return 2" in (extmods / "modules" / "mymod.py").read_text()
    (roots / "_modules" / "mymod.py").unlink()
    assert sync(client, "modules") == []  # Salt lists only additions and changes ...
    assert os.listdir(extmods / "modules") == [] and channel.synced[-1] == ["modules"]  # ... a removal still reloads
    assert sync_all(client) == {"modules": [], "grains": ["grains.site"]}
    (roots / "_modules" / "again.py").write_text("")
    assert client.sync("modules") == ["modules.again"] and client.sync_all() == {"modules": [], "grains": []}
    with pytest.raises(ValueError):
        sync(client, "../modules")


def test_a_tampered_synced_file_is_replaced(client, roots, tmp_path):
    (roots / "_modules" / "mymod.py").write_text("def hi():\n    return 1\n")
    sync(client, "modules")
    synced = tmp_path / "cache" / "extmods" / "modules" / "mymod.py"
    synced.write_text("import os; os.system('evil')\n")
    assert sync(client, "modules") == ["modules.mymod"]
    assert synced.read_text() == "def hi():\n    return 1\n"


# ---------------------------------------------------------------- the job channel

def test_job_channel_relays_file_commands_only(tmp_path):
    seen, synced = [], []

    async def exchange(cmd, load):
        seen.append(cmd)
        if load.get("path") == "gone":
            return Outcome(Status.REFUSED, None, "no such thing")
        return Outcome(Status.DELIVERED, {"ok": True, "echo": load})

    async def main() -> list:
        channels = JobChannels(exchange, synced.append, lambda ch: ch)
        ours, theirs = channels.pair()
        serving = asyncio.get_running_loop().create_task(channels.serve("j1", ours))
        pipe = PipeChannel(theirs)
        results = []

        def job() -> None:
            results.append(pipe.request(FILE_STAT, {"path": "a"}))
            for cmd, load in (("_return", {"jid": "x"}), ("_auth", {}), (FILE_STAT, {"path": "gone"})):
                try:
                    pipe.request(cmd, load)
                except ChannelError as exc:
                    results.append(str(exc))
            results.append(pipe.request(SYNCED, {"kinds": ["modules"]}))
            theirs.close()
        thread = threading.Thread(target=job)
        thread.start()
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        await asyncio.wait_for(serving, 5)  # ends when the job closes its end
        return results

    results = asyncio.run(main())
    assert results[0] == {"ok": True, "echo": {"path": "a"}}
    assert "may not send '_return'" in results[1] and "may not send '_auth'" in results[2]
    assert "refused it: no such thing" in results[3]
    assert results[4] == {"ok": True} and synced == [["modules"]]
    assert seen == [FILE_STAT, FILE_STAT]  # nothing else reached the link


def test_job_channel_drops_an_oversized_frame():
    async def main() -> None:
        channels = JobChannels(None, lambda k: None, lambda ch: ch)  # type: ignore[arg-type]
        ours, theirs = channels.pair()
        serving = asyncio.get_running_loop().create_task(channels.serve("j1", ours))
        theirs.sendall((2**31).to_bytes(4, "big"))
        await asyncio.wait_for(serving, 5)
        theirs.setblocking(True)
        assert theirs.recv(10) == b""  # the minion closed the channel
        theirs.close()
    asyncio.run(main())
