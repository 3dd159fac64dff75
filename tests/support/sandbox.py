"""One rx master and any number of minions on 127.0.0.1, under one root_dir, with free
(or given) ports: the sandbox the integration tests, the benchmarks and `make demo` share.

A daemon counts as started when that is observed, never after a sleep: the master when
its pidfile and IPC sockets exist, a minion when its `rx/minion/<id>/start` event is seen
on the master's bus.  Daemons run in the foreground (children of this process, their
output in a log under the root) or detached with `-d` (pidfiles, their own log files).

The functions under "rx internals" are the only places that know how rx loads its config
and files keys; everything else here goes through them.
"""

from __future__ import annotations

import asyncio

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from rx.client.events import EventWatch
from rx.config import MasterConfig, MinionConfig, load_master_config, load_minion_config
from rx.master.store.base import SessionKeys
from rx.master.store.file_keys import FileKeyStore
from rx.master.store.file_session import FileSessionStore
from rx.transport.crypto import Identity, load_or_create_identity

from .daemon import Daemon, StartError, stop_all
from .procs import DEADLINE, WaitTimeout, children_of, comm, free_port, wait_for

ENTRY_POINTS = {"rx": "rx.client.cli", "rx-key": "rx.client.keycli", "rx-run": "rx.client.runcli",
                "rx-call": "rx.client.call", "rx-master": "rx.master.daemon", "rx-minion": "rx.minion.daemon"}
"""Each rx command and the module whose main() it runs."""

Command = Callable[[str], list[str]]


def module_command(prog: str) -> list[str]:
    """argv prefix running an rx command as `python -m MODULE` with this interpreter."""
    return [sys.executable, "-m", ENTRY_POINTS[prog]]


def script_command(prog: str, bin_dir: Path | None = None) -> list[str]:
    """argv prefix running the installed script next to this interpreter (else `python -m`)."""
    path = (bin_dir or Path(sys.executable).parent) / prog
    return [str(path)] if path.exists() else module_command(prog)


# ---------------------------------------------------------------- rx internals

def load_master(config_dir: str | Path) -> MasterConfig:
    """The master's configuration, as rx-master reads it from `config_dir`."""
    return load_master_config(str(config_dir))


def load_minion(config_dir: str | Path) -> MinionConfig:
    """A minion's configuration, as rx-minion reads it from `config_dir`."""
    return load_minion_config(str(config_dir))


def file_accepted_key(master_cfg: MasterConfig, minion_id: str, public: bytes) -> None:
    """File `public` as the accepted key of `minion_id` on the master (as `rx-key -a` would)."""
    store = FileKeyStore(master_cfg.pki_dir)

    async def put() -> None:
        await store.prepare()
        if await store.read("accepted", minion_id) != public:
            await store.write("accepted", minion_id, public)
    asyncio.run(put())


def make_master_key(master_cfg: MasterConfig) -> None:
    """Create the master's key store and key pair ahead of its start."""
    asyncio.run(FileKeyStore(master_cfg.pki_dir).prepare())
    load_or_create_identity(Path(master_cfg.pki_dir), "master")


def master_public_key(master_cfg: MasterConfig) -> bytes:
    """The master's public key, as minions pin it."""
    return (Path(master_cfg.pki_dir) / "master.pub").read_bytes()


def make_minion_key(minion_root: Path) -> bytes:
    """Make (or load) the key pair of the minion whose root_dir is `minion_root`; returns its public key."""
    return minion_identity(minion_root).public


def minion_identity(minion_root: Path) -> Identity:
    """The key pair (made if missing) of the minion whose root_dir is `minion_root`, as rx-minion loads it."""
    return load_or_create_identity(minion_root / "etc" / "rx" / "pki" / "minion", "minion")


# ---------------------------------------------------------------- layout

@dataclass(frozen=True)
class Layout:
    """Where a sandbox puts things, relative to its root; `{id}` stands for a minion id.
    A minion's root_dir is `<its config dir>/root`."""

    master_conf: str = "master-conf"
    master_root: str = "m"
    master_log: str = "master.log"
    minion_conf: str = "minion-{id}"
    minion_log: str = "minion-{id}.log"


TEST_LAYOUT = Layout()
DEMO_LAYOUT = Layout(master_conf="master", master_root="master/root", minion_conf="{id}")

MASTER_DEFAULTS: Mapping[str, Any] = {"worker_processes": 2, "log_level": "info"}
MINION_DEFAULTS: Mapping[str, Any] = {"log_level": "info", "auth_retry_max_seconds": 2}


def master_child(master_pid: int, name: str) -> int | None:
    """The pid of rx-master's child `name` ("publisher", "mworker-0", ...), found by the name it gives itself."""
    from rx.master.daemon import process_name
    return next((pid for pid in children_of(master_pid) if comm(pid) == process_name(name)), None)


def stored_returns(cfg: MasterConfig, jid: str) -> dict:
    """The returns the master's job store holds for `jid` ({} while it has none), read as rx-run reads them."""
    from rx.master.services import UnknownJob, open_services
    services = open_services(cfg)
    try:
        return asyncio.run(services.jobs.returns(jid))
    except UnknownJob:
        return {}
    finally:
        services.close()


def write_yaml(path: Path, data: Mapping[str, Any], comment: str = "") -> None:
    """Write a config file (with a leading `# comment` line when given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f"# {comment}\n" if comment else ""
    path.write_text(head + yaml.safe_dump(dict(data), sort_keys=False))


# ---------------------------------------------------------------- the sandbox

class Sandbox:
    """One master plus any number of minions under `root` (a new temp dir when not given; it is
    removed by `close`).  `command` maps an rx command name to the argv that runs it; `detach`
    starts the daemons with `-d`; `reap` makes stopping a daemon also end its leftover descendants."""

    def __init__(self, root: Path | None = None, *, layout: Layout = TEST_LAYOUT, pub_port: int | None = None,
                 ret_port: int | None = None, master_defaults: Mapping[str, Any] = MASTER_DEFAULTS,
                 minion_defaults: Mapping[str, Any] = MINION_DEFAULTS, command: Command = module_command,
                 detach: bool = False, reap: bool = False, deadline: float = DEADLINE, comment: str = "") -> None:
        self.owns_root = root is None
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="rx-sandbox-", dir="/tmp"))
        self.layout = layout
        self.pub_port = pub_port or free_port()
        self.ret_port = ret_port or free_port()
        self.master_defaults = dict(master_defaults)
        self.minion_defaults = dict(minion_defaults)
        self.master_overrides: dict[str, Any] = {}
        self.command = command
        self.detach = detach
        self.reap = reap
        self.deadline = deadline
        self.comment = comment
        self.master_dir = self.root / layout.master_conf
        self.master: Daemon | None = None
        self.minions: dict[str, Daemon] = {}

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ master

    def master_config(self, **overrides: Any) -> dict:
        """The master's settings: the sandbox's root, address and ports, then defaults and overrides."""
        return {"root_dir": str(self.root / self.layout.master_root), "interface": "127.0.0.1",
                "publish_port": self.pub_port, "ret_port": self.ret_port, **self.master_defaults,
                **self.master_overrides, **overrides}

    def write_master_config(self, **overrides: Any) -> Path:
        """Write `<master_dir>/master`; returns master_dir."""
        comment = f"rx sandbox master ({self.comment})" if self.comment else ""
        write_yaml(self.master_dir / "master", self.master_config(**overrides), comment)
        return self.master_dir

    @property
    def cfg(self) -> MasterConfig:
        """The master's configuration as rx reads it (read again on every use)."""
        return load_master(self.master_dir)

    def prepare_pki(self) -> None:
        """Create the master's key store and key pair, so keys can be accepted before it starts."""
        if not (self.master_dir / "master").exists():
            self.write_master_config()
        make_master_key(self.cfg)

    def start_master(self, wait: bool = True, **overrides: Any) -> Daemon:
        """Write the master's config and start rx-master; with `wait`, until it is ready."""
        self.write_master_config(**overrides)
        argv = [*self.command("rx-master"), "-c", str(self.master_dir)]
        if self.detach:
            cfg = self.cfg
            self.master = Daemon.detach("rx-master", argv, cfg.pidfile, Path(cfg.log_file), timeout=self.deadline)
        else:
            self.master = Daemon("rx-master", argv, self.root / self.layout.master_log, reap=self.reap)
        if wait:
            self.wait_master_ready()
        return self.master

    def wait_master_ready(self) -> None:
        """Until the master's pidfile and IPC sockets exist; fails at once if it exits."""
        cfg = self.cfg
        paths = [cfg.pidfile, cfg.ret_ipc, cfg.workers_ipc, cfg.event_pub_ipc, cfg.event_pull_ipc,
                 cfg.publish_pull_ipc]

        def ready() -> bool:
            if self.master is not None and not self.master.alive():
                raise StartError(f"rx-master exited early:\n{self.master.output()[-3000:]}")
            return all(Path(p).exists() for p in paths)
        wait_for(ready, self.deadline, what="rx-master to be ready")

    def stop_master(self) -> int | None:
        """Stop rx-master; returns its exit status (None when detached)."""
        assert self.master is not None
        return self.master.stop()

    def master_pids(self) -> list[int]:
        """The master's process tree."""
        return self.master.tree() if self.master is not None else []

    # ------------------------------------------------------------ minions

    def minion_dir(self, minion_id: str) -> Path:
        """The minion's config dir (its root_dir is `root` inside it)."""
        return self.root / self.layout.minion_conf.format(id=minion_id)

    def minion_config(self, minion_id: str, **overrides: Any) -> dict:
        """A minion's settings: its root and id, the master's address and request port (the publish port
        comes from the master's auth reply, as on a real fleet), then defaults and overrides."""
        return {"root_dir": str(self.minion_dir(minion_id) / "root"), "id": minion_id, "master": "127.0.0.1",
                "master_port": self.ret_port, **self.minion_defaults, **overrides}

    def write_minion_config(self, minion_id: str, **overrides: Any) -> Path:
        """Write `<minion_dir>/minion`; returns the minion's config dir."""
        cfg_dir = self.minion_dir(minion_id)
        comment = f"rx sandbox minion {minion_id} ({self.comment})" if self.comment else ""
        write_yaml(cfg_dir / "minion", self.minion_config(minion_id, **overrides), comment)
        return cfg_dir

    def preaccept(self, minion_id: str) -> bytes:
        """Make the minion's key pair ahead of time and file it as accepted on the master."""
        public = make_minion_key(self.minion_dir(minion_id) / "root")
        file_accepted_key(self.cfg, minion_id, public)
        return public

    def start_minion(self, minion_id: str, *, accept: bool = True, wait: bool = True, **overrides: Any) -> Daemon:
        """Start one rx-minion (see `start_minions`)."""
        self.start_minions([minion_id], accept=accept, wait=wait, **overrides)
        return self.minions[minion_id]

    def start_minions(self, ids: list[str], *, accept: bool = True, wait: bool = True, timeout: float | None = None,
                      **overrides: Any) -> float:
        """Start rx-minion processes (keys pre-accepted unless `accept` is false); with `wait`, until each
        one's start event is on the master's bus.  Returns the seconds from the first spawn."""
        watch = EventWatch(self.cfg, "rx/minion/") if wait else None
        t0 = time.perf_counter()
        try:
            for mid in ids:
                cfg_dir = self.write_minion_config(mid, **overrides)
                if accept:
                    self.preaccept(mid)
                self.minions[mid] = self._spawn_minion(mid, cfg_dir)
            if watch is not None:
                self._await_starts(watch, ids, self.deadline if timeout is None else timeout)
        finally:
            if watch is not None:
                watch.close()
        return time.perf_counter() - t0

    def _spawn_minion(self, minion_id: str, cfg_dir: Path) -> Daemon:
        argv = [*self.command("rx-minion"), "-c", str(cfg_dir)]
        name = f"rx-minion {minion_id}"
        if self.detach:
            cfg = load_minion(cfg_dir)
            return Daemon.detach(name, argv, cfg.pidfile, Path(cfg.log_file), timeout=self.deadline)
        return Daemon(name, argv, self.root / self.layout.minion_log.format(id=minion_id), reap=self.reap)

    def _await_starts(self, watch: EventWatch, ids: list[str], timeout: float) -> None:
        waiting = set(ids)
        deadline = time.monotonic() + timeout
        while waiting:
            dead = sorted(m for m in waiting if not self.minions[m].alive())
            if dead:
                raise StartError(f"rx-minion {dead[0]} exited before its start event:\n{self._outputs(dead)}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"{len(waiting)} minion(s) did not start within {timeout:g}s "
                                  f"({', '.join(sorted(waiting)[:5])}):\n{self._outputs(sorted(waiting))}")
            event = watch.next(min(left, 1.0), lambda tag: tag.endswith("/start"))
            if event is not None:
                waiting.discard(event[0].split("/")[2])

    def _outputs(self, ids: list[str], most: int = 3) -> str:
        return "\n".join(f"--- {m}:\n{self.minions[m].output()[-3000:]}" for m in ids[:most])

    def minion_pids(self) -> dict[str, int]:
        """The pid of every running minion."""
        return {m: d.pid for m, d in self.minions.items() if d.alive()}

    def stop_minions(self) -> None:
        """Stop every minion (all at once)."""
        stop_all(self.minions.values())
        self.minions.clear()

    # ------------------------------------------------------------ CLIs and closing

    def run_cli(self, prog: str, *args: str, timeout: float = 60.0, config_dir: Path | None = None,
                input: str | None = None) -> subprocess.CompletedProcess:
        """Run an rx command (`rx`, `rx-key`, `rx-run`, ...) with `-c <master_dir>`; output captured as text."""
        argv = [*self.command(prog), "-c", str(config_dir or self.master_dir), *args]
        stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **stdin)

    def close(self) -> None:
        """Stop the minions, then the master; remove the root if the sandbox made it."""
        self.stop_minions()
        if self.master is not None:
            self.master.stop()
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)


def session_keys(master_cfg: MasterConfig) -> SessionKeys:
    """The master's current session (secret, serial, publish key), read through its session store."""
    return asyncio.run(FileSessionStore(master_cfg.pki_dir).current())


def key_fingerprint(master_cfg: MasterConfig, minion_id: str) -> str:
    """The fingerprint of `minion_id`'s key, in whatever state it is filed."""
    return asyncio.run(FileKeyStore(master_cfg.pki_dir).find(minion_id))[0].fingerprint
