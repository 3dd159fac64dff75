"""`rx-master`: checks the config and the host, then supervises its children.

Children (one module each): request server, N MWorkers, publisher, event
publisher, maintenance.  A child that dies is restarted at once, and after
RESTART_FREE deaths within RESTART_WINDOW seconds with a growing delay (logged
with the reason), so a child that cannot run does not restart in a loop.
SIGTERM or SIGINT stops them all, removes the IPC files and the pidfile; if the
supervisor itself is killed (kill -9), the kernel sends each child SIGTERM, so
nothing is left holding the ports.  Each child is named for `ps`: rx-publisher,
rx-mworker-0, rx-events, rx-requests, rx-maintenance (and rx-metrics, with `metrics_port`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from rx import __version__
from rx.config import ConfigError, MasterConfig, load_master_config
from rx.daemonize import daemon_parser, fatal, launch, overrides, print_config_if_asked, remove_pidfile, write_pidfile
from rx.logsetup import setup_logging
from rx.master import eventpub, maintenance, mworker, publisher, reqserver, usergate
from rx.master.heard import PRESENCE_FILE
from rx.master.metrics import shared as metrics_files
from rx.master.metrics.process import SupervisorMetrics
from rx.master.store import StoreError, open_stores, store_config
from rx.pathsafe import check_dir
from rx.transport.crypto import ensure_private_dir, load_or_create_identity, write_secret
from rx.transport.jidclock import JID_CLOCK_FILE, JidClock

log = logging.getLogger("rx.master")

RESTART_FREE = 3
RESTART_WINDOW = 60.0
RESTART_BACKOFF = 1.0
RESTART_BACKOFF_MAX = 60.0
STOP_GRACE = 5.0
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
SHORT_NAMES = {"event-publisher": "events", "request-server": "requests"}
SIGNAL_HINTS = {signal.SIGBUS: " (a fault in a memory-mapped file: is the job cache on a full disk, or immutable?)",
                signal.SIGKILL: " (by someone, or the out-of-memory killer)"}


@dataclass
class Child:
    name: str
    target: Callable[..., None]
    args: tuple
    process: multiprocessing.Process | None = None
    starts: list[float] = field(default_factory=list)
    restart_at: float = 0.0


def restart_delay(starts: list[float], now: float) -> float:
    """Seconds to wait before starting a child again, given when it was started: none for its first
    RESTART_FREE starts within RESTART_WINDOW, then RESTART_BACKOFF doubling up to RESTART_BACKOFF_MAX."""
    recent = sum(1 for t in starts if now - t < RESTART_WINDOW)
    if recent < RESTART_FREE:
        return 0.0
    return min(RESTART_BACKOFF * 2 ** (recent - RESTART_FREE), RESTART_BACKOFF_MAX)


def exit_reason(exitcode: int | None) -> str:
    """How a child ended, in words (a signal by name, with a hint where one helps)."""
    if exitcode is not None and exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return f"was killed by signal {-exitcode}"
        return f"was killed by {sig.name}{SIGNAL_HINTS.get(sig, '')}"
    return f"exited with status {exitcode} (see its errors above)"


def prepare(cfg: MasterConfig) -> None:
    """Everything that can fail on a misconfigured host, checked before any child starts."""
    check_dir(cfg.sock_dir, _master_uids(cfg), "sock_dir")
    stores = open_stores(store_config(cfg))
    try:
        with _usable("pki_dir", cfg.pki_dir):
            ensure_private_dir(Path(cfg.pki_dir))
            load_or_create_identity(Path(cfg.pki_dir), "master")
            asyncio.run(stores.keys.prepare())
            asyncio.run(stores.session.prepare())
        with _usable("cachedir", cfg.cachedir):
            Path(cfg.cachedir).mkdir(parents=True, exist_ok=True)
            asyncio.run(stores.jobs.prepare())
            JidClock.create(Path(cfg.cachedir) / JID_CLOCK_FILE)
            _new_root_key(cfg)
    finally:
        stores.close()
    with _usable("sock_dir", cfg.sock_dir):
        ensure_private_dir(Path(cfg.sock_dir))
    if cfg.users_enabled:
        check_dir(cfg.user_sock_dir, _master_uids(cfg), "user_sock_dir")
    usergate.prepare_users(cfg)
    for key, port in (("publish_port", cfg.publish_port), ("ret_port", cfg.ret_port)):
        _check_port_free(cfg.interface, key, port)
    if cfg.metrics_port:
        _check_port_free(cfg.metrics_interface, "metrics_port", cfg.metrics_port)
    _remove_ipc(cfg)
    with _usable("sock_dir", cfg.sock_dir):
        metrics_files.reset(metrics_files.metrics_dir(cfg.sock_dir))


def _master_uids(cfg: MasterConfig) -> set[int]:
    """Who the master runs as: this process's user, and `user` if it switches to it after the checks."""
    uids = {os.geteuid()}
    if cfg.user:
        import pwd
        uids.add(pwd.getpwnam(cfg.user).pw_uid)
    return uids


@contextlib.contextmanager
def _usable(key: str, path: str) -> Iterator[None]:
    """An OS or store error inside becomes a ConfigError naming the setting."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(f"{key}: {path!r} is not usable: {exc.strerror or exc}", key=key) from None
    except StoreError as exc:
        raise ConfigError(f"{key}: {path!r} is not usable: {exc}", key=key) from None


def _new_root_key(cfg: MasterConfig) -> None:
    """A fresh root key at every start (0400): local clients prove they may publish with it."""
    root_key = Path(cfg.root_key_path)
    if root_key.exists():
        root_key.chmod(0o600)
    write_secret(root_key, secrets.token_urlsafe(48).encode(), mode=0o400)


def _check_port_free(interface: str, key: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((interface, port))
        except OSError as exc:
            why = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ConfigError(f"{key}: cannot bind {interface}:{port}: {why}", key=key) from None


def _remove_ipc(cfg: MasterConfig) -> None:
    for p in [*cfg.socket_paths(), os.path.join(cfg.sock_dir, PRESENCE_FILE), cfg.user_socket]:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def release_large_buffers() -> None:
    """Make glibc serve buffers of MMAP_THRESHOLD or more with mmap, so a large return (its frame, plaintext,
    record and event: ~6 copies) goes back to the system once handled.  By default the threshold rises
    to the size of the first large buffer freed (up to 32 MiB), and later ones stay in the heap: an MWorker
    kept 65 MB after one 5 MB return.  A no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass


def process_name(child: str) -> str:
    """What `ps -o comm`, top and /proc/<pid>/comm show for a child: `rx-publisher`, `rx-mworker-0`..."""
    return f"rx-{SHORT_NAMES.get(child, child)}"[:15]


def _bind_to_parent(name: str, parent: int) -> None:
    """Name this child as the kernel shows it, and have the kernel SIGTERM it when the supervisor dies
    (kill -9 included): children left behind would hold the ports and the next rx-master could not start.
    Linux only; a no-op elsewhere."""
    try:
        prctl = ctypes.CDLL(None).prctl
        prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()), 0, 0, 0)
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the supervisor died before the line above took effect
        os._exit(1)


def _serve_metrics(cfg: MasterConfig) -> None:
    """The metrics child (imported there only: no other process loads prometheus_client or tornado)."""
    from rx.master.metrics import server
    server.main(cfg)


def _child_entry(name: str, parent: int, target: Callable[..., None], args: tuple, level: str, log_file: str,
                 stderr: bool) -> None:
    _bind_to_parent(process_name(name), parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    release_large_buffers()
    setup_logging(level, log_file, to_stderr=stderr)
    try:
        target(*args)
    except KeyboardInterrupt:
        pass


class Supervisor:
    def __init__(self, cfg: MasterConfig, *, stderr: bool, log_file: str) -> None:
        self.cfg = cfg
        self.stderr = stderr
        self.log_file = log_file
        self.mp = multiprocessing.get_context("fork")
        self.children = [
            # binders first, so the workers' connects find their endpoints at once
            Child("event-publisher", eventpub.main, (cfg,)),
            Child("publisher", publisher.main, (cfg,)),
            Child("request-server", reqserver.main, (cfg,)),
            *[Child(f"mworker-{i}", mworker.main, (cfg, i)) for i in range(cfg.worker_processes)],
            Child("maintenance", maintenance.main, (cfg,)),
            *([Child("metrics", _serve_metrics, (cfg,))] if cfg.metrics_port else []),
            *([Child("usergate", usergate.main, (cfg,))] if cfg.users_enabled else []),
        ]
        self.metrics = SupervisorMetrics(metrics_files.metrics_dir(cfg.sock_dir), [c.name for c in self.children])
        self.stopping = False
        self._wake_r, self._wake_w = os.pipe()

    def start(self, child: Child) -> None:
        now = time.monotonic()
        child.starts = [t for t in child.starts if now - t < RESTART_WINDOW] + [now]
        p = self.mp.Process(target=_child_entry, name=f"rx-master {child.name}",
                            args=(child.name, os.getpid(), child.target, child.args, self.cfg.log_level,
                                  self.log_file, self.stderr), daemon=False)
        p.start()
        child.process = p

    def _wait_for_sockets(self, timeout: float = 10.0) -> None:
        """Readiness: every child has bound its IPC socket (the pidfile is written only after)."""
        deadline = time.monotonic() + timeout
        missing = self.cfg.socket_paths() + ([self.cfg.user_socket] if self.cfg.users_enabled else [])
        while missing and time.monotonic() < deadline and not self.stopping:
            missing = [p for p in missing if not os.path.exists(p)]
            if missing:
                multiprocessing.connection.wait([self._wake_r], timeout=0.02)
        if missing:
            log.error("still waiting for %s; check the errors above", ", ".join(missing))

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True
        os.write(self._wake_w, b"x")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for child in self.children:
            self.start(child)
        self._wait_for_sockets()
        write_pidfile(self.cfg.pidfile)
        log.warning("rx-master %s ready: publish %s:%d, requests %s:%d, %d workers", __version__, self.cfg.interface,
                    self.cfg.publish_port, self.cfg.interface, self.cfg.ret_port, self.cfg.worker_processes)
        while not self.stopping:
            sentinels = {c.process.sentinel: c for c in self.children if c.process is not None}
            waiting = [c.restart_at for c in self.children if c.process is None]
            timeout = max(0.0, min(waiting) - time.monotonic()) if waiting else None
            for s in multiprocessing.connection.wait([*sentinels, self._wake_r], timeout):
                if s == self._wake_r:
                    os.read(self._wake_r, 64)
                elif not self.stopping:
                    self._died(sentinels[s])
            for child in self.children:
                if child.process is None and child.restart_at <= time.monotonic() and not self.stopping:
                    self.start(child)
        self.stop()
        return 0

    def _died(self, child: Child) -> None:
        """Log why a child ended and when it starts again."""
        assert child.process is not None
        child.process.join()
        now = time.monotonic()
        delay = restart_delay(child.starts, now)
        when = (f"restarting it in {delay:g}s ({len(child.starts)} starts in the last {RESTART_WINDOW:g}s)"
                if delay else "restarting it")
        log.error("child %s (pid %d) %s; %s", child.name, child.process.pid, exit_reason(child.process.exitcode),
                  when)
        self.metrics.died(child.name, child.process.pid)
        child.process, child.restart_at = None, now + delay

    def stop(self) -> None:
        procs = [c.process for c in self.children if c.process is not None and c.process.is_alive()]
        for p in procs:
            p.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        _remove_ipc(self.cfg)
        metrics_files.remove(metrics_files.metrics_dir(self.cfg.sock_dir))
        remove_pidfile(self.cfg.pidfile)
        log.warning("rx-master stopped")


def main(argv: list[str] | None = None) -> None:
    args = daemon_parser("rx-master", "Run the rx master.").parse_args(argv)
    try:
        cfg = load_master_config(args.config_dir, overrides(args))
    except ConfigError as exc:
        fatal(str(exc))
    print_config_if_asked(args, cfg)
    launch("rx-master", args, cfg, lambda: prepare(cfg), [cfg.pki_dir, cfg.cachedir, cfg.sock_dir])
    sys.exit(Supervisor(cfg, stderr=not args.daemon, log_file=cfg.log_file if args.daemon else "").run())


if __name__ == "__main__":
    main()
