"""Integration harness: real rx-master and rx-minion processes on loopback,
in a temporary root_dir with free ports.  A daemon counts as started when its
readiness is observed (pidfile + sockets for the master, the minion's start
event on the master's bus), never after a sleep."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
import zmq

from rx.client import events as rx_events
from rx.config import MasterConfig, load_master_config
from rx.master.store.file_keys import FileKeyStore
from rx.transport.codec import decode, encode
from rx.transport.crypto import load_or_create_identity

DEADLINE = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition", interval: float = 0.02) -> Any:
    """Poll `cond` until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class EventWatch(rx_events.EventWatch):
    """rx's EventWatch, failing the test when an expected event does not come."""

    def next(self, timeout: float = DEADLINE, match: Callable[[str], bool] = lambda t: True) -> tuple[str, dict]:
        event = super().next(timeout, match)
        if event is None:
            raise AssertionError("timed out waiting for an event")
        return event

    def drain(self, timeout: float = 0.3) -> list[tuple[str, dict]]:
        return super().drain(timeout)


class Daemon:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None) -> None:
        self.name = name
        self.log = log
        self.fh = open(log, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.fh, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.fh.close()
        return self.proc.returncode

    def output(self) -> str:
        self.fh.flush()
        return self.log.read_text(errors="replace")


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


class Sandbox:
    """One master plus any number of minions under a temporary root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pub_port = free_port()
        self.ret_port = free_port()
        self.master_dir = root / "master-conf"
        self.master: Daemon | None = None
        self.minions: dict[str, Daemon] = {}
        self.master_overrides: dict[str, Any] = {}

    # ---------------------------------------------------------------- master

    def master_config(self, **overrides: Any) -> dict:
        return {"root_dir": str(self.root / "m"), "interface": "127.0.0.1", "publish_port": self.pub_port,
                "ret_port": self.ret_port, "worker_processes": 2, "log_level": "info", **self.master_overrides,
                **overrides}

    def write_master_config(self, **overrides: Any) -> Path:
        self.master_dir.mkdir(parents=True, exist_ok=True)
        (self.master_dir / "master").write_text(yaml.safe_dump(self.master_config(**overrides)))
        return self.master_dir

    @property
    def cfg(self) -> MasterConfig:
        return load_master_config(str(self.master_dir))

    def start_master(self, wait: bool = True, **overrides: Any) -> Daemon:
        self.write_master_config(**overrides)
        self.master = Daemon("master", [sys.executable, "-m", "rx.master.daemon", "-c", str(self.master_dir)],
                             self.root / "master.log")
        if wait:
            self.wait_master_ready()
        return self.master

    def wait_master_ready(self) -> None:
        cfg = self.cfg
        paths = [cfg.pidfile, cfg.ret_ipc, cfg.event_pub_ipc, cfg.event_pull_ipc, cfg.publish_pull_ipc]

        def ready() -> bool:
            if self.master is not None and not self.master.alive():
                raise AssertionError(f"rx-master exited early:\n{self.master.output()}")
            return all(os.path.exists(p) for p in paths)
        wait_for(ready, what="rx-master to be ready")

    def stop_master(self) -> int | None:
        assert self.master is not None
        code = self.master.stop()
        return code

    # ---------------------------------------------------------------- minions

    def minion_dir(self, minion_id: str) -> Path:
        return self.root / f"minion-{minion_id}"

    def minion_config(self, minion_id: str, **overrides: Any) -> dict:
        return {"root_dir": str(self.minion_dir(minion_id) / "root"), "id": minion_id, "master": "127.0.0.1",
                "master_port": self.ret_port, "publish_port": self.pub_port, "log_level": "info",
                "auth_retry_max_seconds": 2, **overrides}

    def preaccept(self, minion_id: str) -> bytes:
        """Make the minion's key pair ahead of time and file it as accepted on the master."""
        cfg_dir = self.minion_dir(minion_id)
        pki = cfg_dir / "root" / "etc" / "rx" / "pki" / "minion"
        ident = load_or_create_identity(pki, "minion")
        file_accepted_key(self.cfg, minion_id, ident.public)
        return ident.public

    def start_minion(self, minion_id: str, *, accept: bool = True, wait: bool = True, **overrides: Any) -> Daemon:
        cfg_dir = self.minion_dir(minion_id)
        cfg_dir.mkdir(parents=True, exist_ok=True)
        (cfg_dir / "minion").write_text(yaml.safe_dump(self.minion_config(minion_id, **overrides)))
        if accept:
            self.preaccept(minion_id)
        watch = EventWatch(self.cfg, f"rx/minion/{minion_id}/start") if wait else None
        try:
            d = Daemon(minion_id, [sys.executable, "-m", "rx.minion.daemon", "-c", str(cfg_dir)],
                       self.root / f"minion-{minion_id}.log")
            self.minions[minion_id] = d
            if watch is not None:
                try:
                    watch.next(DEADLINE)
                except AssertionError:
                    raise AssertionError(f"minion {minion_id} did not start:\n{d.output()}") from None
        finally:
            if watch is not None:
                watch.close()
        return d

    # ---------------------------------------------------------------- CLIs

    def run_cli(self, prog: str, *args: str, timeout: float = 60.0, config_dir: Path | None = None,
                input: str | None = None) -> subprocess.CompletedProcess:
        module = {"rx": "rx.client.cli", "rx-key": "rx.client.keycli", "rx-run": "rx.client.runcli"}[prog]
        argv = [sys.executable, "-m", module, "-c", str(config_dir or self.master_dir), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)

    def close(self) -> None:
        for d in self.minions.values():
            d.stop()
        if self.master is not None:
            self.master.stop()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    root = Path(tempfile.mkdtemp(prefix="rx-it-"))
    box = Sandbox(root)
    try:
        yield box
    finally:
        box.close()
        leftovers = _processes_mentioning(str(root))
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    assert not leftovers, f"processes left running after the test: {leftovers}"


def _processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line mentions `text` (our daemons, their children and jobs)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(name))
    return found


@pytest.fixture
def fleet(sandbox: Sandbox) -> Sandbox:
    """A running master and two accepted, running minions m1 and m2."""
    sandbox.start_master()
    sandbox.start_minion("m1")
    sandbox.start_minion("m2")
    return sandbox


def file_accepted_key(cfg: MasterConfig, minion_id: str, public: bytes) -> None:
    """File a minion's key as accepted in the master's key store (the one place tests write it)."""
    store = FileKeyStore(cfg.pki_dir)

    async def put() -> None:
        await store.prepare()
        await store.write("accepted", minion_id, public)
    asyncio.run(put())


def session_keys(cfg: MasterConfig) -> Any:
    """The master's current session (secret, serial, publish key), read through its session store."""
    from rx.master.store.file_session import FileSessionStore
    return asyncio.run(FileSessionStore(cfg.pki_dir).current())


def key_fingerprint(cfg: MasterConfig, minion_id: str) -> str:
    return asyncio.run(FileKeyStore(cfg.pki_dir).find(minion_id))[0].fingerprint


class RawClient:
    """A bare DEALER to the master's request port, for sending hand-made frames."""

    def __init__(self, url: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(url)
        self._n = 0

    def send_frames(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def request(self, obj: Any, timeout: float = 10.0, raw: bytes | None = None) -> Any:
        """Send one request body (an object to encode, or raw bytes) and return the decoded reply."""
        self._n += 1
        rid = self._n.to_bytes(4, "big")
        self.sock.send_multipart([rid, b"", raw if raw is not None else encode(obj)])
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.sock.poll(int(left * 1000)):
                frames = self.sock.recv_multipart()
                if frames[0] == rid:
                    return decode(frames[-1])
        raise AssertionError("no reply from the master")

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


class FakeMinion:
    """Speaks the minion protocol by hand (sans-IO layer + RawClient), so a test
    can send exactly the sealed messages it wants, including bad ones."""

    def __init__(self, box: Sandbox, minion_id: str, accept: bool = True) -> None:
        from rx.transport.crypto import Identity
        self.id = minion_id
        self.identity = Identity.generate()
        self.box = box
        if accept:
            file_accepted_key(box.cfg, minion_id, self.identity.public)
        self.raw = RawClient(f"tcp://127.0.0.1:{box.ret_port}")
        self.session = None
        self._sent: dict = {}

    def auth(self) -> str:
        from rx.transport.handshake import finish_auth, start_auth
        from rx.transport.messages import ClearRequest
        pending = start_auth(self.identity, self.id)
        reply = self.raw.request(ClearRequest("_auth", pending.request.to_wire()).to_wire())
        if reply.get("ok") is False:
            raise RuntimeError(f"auth refused: {reply['error']['message']}")
        outcome = finish_auth(pending, reply, None)
        self.session = outcome.session
        return outcome.status

    def sealed(self, cmd: str, load: dict, claim_id: str | None = None) -> bytes:
        from rx.transport.secure import seal_request
        assert self.session is not None
        req = seal_request(self.session.request_key, claim_id or self.id, self.session.serial, cmd, load)
        self._sent[req.nonce] = req
        return encode(req.to_wire())

    def send_sealed(self, frame: bytes) -> dict:
        """Send a sealed frame; returns the master's inner reply (opened) or its clear error."""
        from rx.transport.messages import parse_request
        from rx.transport.secure import open_reply
        reply = self.raw.request(None, raw=frame)
        if reply.get("enc") == "aes":
            req = parse_request(decode(frame))
            return open_reply(self.session.request_key, self._sent.get(req.nonce, req), reply)
        return reply

    def close(self) -> None:
        self.raw.close()
