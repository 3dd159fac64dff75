"""Proposed hot-path patches, applied by monkeypatching, to measure their effect
before anyone edits the core.  Bench-only: nothing outside bench/ imports this.

    RX_BENCH_PATCHES=jobcache_sqlite,keys_fast python -m bench --only swarm --no-write
    python -m bench --patch jobcache_sqlite,client_sync_backoff --only real,swarm --sizes 1000

With patches selected, every daemon and CLI the benchmark starts runs through
`python -m rx.bench.patched MODULE:FUNC ARGS...`, which applies them first (the
master's children are forked, so they inherit them); the swarm processes and
the benchmark process apply them on import.  Each patch here is a sketch of a
change proposed for the core (see RESULTS.md, "Analysis"): same behaviour,
less work.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Callable

ENV = "RX_BENCH_PATCHES"
_applied: set[str] = set()


def _jobcache_sqlite() -> None:
    """master/jobcache.py: returns go into one SQLite table (WAL) with PRIMARY KEY (jid, id),
    instead of one O_EXCL file per return.  `INSERT OR IGNORE` keeps the cross-worker
    de-duplication atomic; the job directory and its .load file stay as they are."""
    import sqlite3

    from rx.config import validate_minion_id
    from rx.master import jobcache as jc
    from rx.transport.codec import DecodeError, decode, encode

    def db(self: jc.JobCache) -> sqlite3.Connection:
        conn = getattr(self, "_db", None)
        if conn is None or getattr(self, "_db_pid", None) != os.getpid():
            conn = sqlite3.connect(os.path.join(self.root, ".returns.sqlite"), timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS ret (jid TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, "
                         "PRIMARY KEY (jid, id)) WITHOUT ROWID")
            self._db, self._db_pid = conn, os.getpid()
        return conn

    def store_return(self: jc.JobCache, jid: str, minion_id: str, ret: dict) -> bool:
        if validate_minion_id(minion_id):
            raise ValueError("bad minion id")
        if not self._job_dir(jid).is_dir():
            raise jc.UnknownJob(jid)
        cur = db(self).execute("INSERT OR IGNORE INTO ret VALUES (?, ?, ?)", (jid, minion_id, encode(ret)))
        return cur.rowcount == 1

    orig_returns = jc.JobCache.returns

    def returns(self: jc.JobCache, jid: str) -> dict:
        out = orig_returns(self, jid)
        for minion_id, data in db(self).execute("SELECT id, data FROM ret WHERE jid = ?", (jid,)):
            try:
                out[minion_id] = decode(data)
            except DecodeError:
                continue
        return out

    jc.JobCache.store_return = store_return
    jc.JobCache.returns = returns


def _keys_fast() -> None:
    """master/keys.py KeyStore.is_accepted: the id is validated (no '/', '\\\\', NUL or leading '.'),
    so joining it to the directory cannot escape it; skip Path.resolve() (a realpath of
    every path component, ~18 us) on every sealed request."""
    from rx.config import validate_minion_id
    from rx.master.keys import KeyStore

    def is_accepted(self: KeyStore, minion_id: str) -> bool:
        if validate_minion_id(minion_id):
            return False
        return os.path.exists(os.path.join(self.dirs["accepted"], minion_id))

    KeyStore.is_accepted = is_accepted


def _client_sync_backoff() -> None:
    """client/local.py AsyncLocalClient._listen: poll for the sync event after 1, 2, 4 ... 50 ms
    instead of 50 ms every time.  With a reused client the first sync event is sent before
    the new SUB's subscription reaches the bus, so every cmd() waited a full 50 ms."""
    import secrets
    import time

    import zmq

    from rx.client import local
    from rx.transport import channels

    recv = getattr(channels, "recv_multipart", None)

    async def _listen(self: local.AsyncLocalClient, prefixes: tuple[str, ...]):
        ctx = self._ctx()
        sync_tag = f"rx/sync/{secrets.token_hex(8)}"
        sub = channels.event_subscriber(ctx, self.cfg.event_pub_ipc, (*prefixes, sync_tag))
        if self._bus is None:
            self._bus = channels.EventBus(ctx, self.cfg.event_pull_ipc)
        deadline = time.monotonic() + local.SYNC_TIMEOUT
        wait_ms = 1
        while time.monotonic() < deadline:
            await self._bus.fire(sync_tag, {})
            if await sub.poll(wait_ms):
                frames = await (recv(sub) if recv else sub.recv_multipart())
                if frames[0] == sync_tag.encode():
                    sub.setsockopt(zmq.UNSUBSCRIBE, sync_tag.encode())
                    return sub
            wait_ms = min(wait_ms * 2, 50)
        sub.close(linger=0)
        raise local.MasterUnreachable(f"the master's event bus at {self.cfg.event_pub_ipc} does not answer")

    local.AsyncLocalClient._listen = _listen


def _client_gather_fast() -> None:
    """client/local.py AsyncLocalClient._gather: (1) track the minions still missing in one set
    that shrinks, instead of computing `expected - returned` (O(N)) for every event, which is
    O(N^2) for a job to N minions; (2) after one wake-up, drain every event already queued
    with non-blocking reads instead of a poll() + recv() pair of futures per event."""
    import collections
    import time

    import zmq

    from rx.client import local
    from rx.transport.codec import DecodeError, decode

    async def _gather(self, sub, pub, timeout, gather_job_timeout, expect_minions):
        timeout = self.cfg.timeout if timeout is None else timeout
        state = local._Gather(expected=set(pub.minions))
        for minion_id, data in self._cached_returns(pub.jid).items():
            state.returned.add(minion_id)
            yield {minion_id: local._as_return(pub.jid, data)}
        pending = state.expected - state.returned
        raw = zmq.Socket.shadow(sub.underlying)
        buf: collections.deque = collections.deque()
        deadline = time.monotonic() + timeout
        while pending:
            if not buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if gather_job_timeout <= 0:
                        break
                    answers = await self._probe(sorted(pending), "jobs.find", [pub.jid], gather_job_timeout)
                    state.answered_probe |= answers.keys()
                    if not any(isinstance(r, dict) and r for r in answers.values()):
                        break
                    deadline = time.monotonic() + timeout
                    continue
                if not await sub.poll(max(1, int(remaining * 1000))):
                    continue
                while True:
                    try:
                        frames = raw.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) != 2:
                        continue
                    try:
                        tag, data = frames[0].decode(), decode(frames[1])
                    except (UnicodeDecodeError, DecodeError):
                        continue
                    if isinstance(data, dict):
                        buf.append((tag, data))
                continue
            tag, data = buf.popleft()
            minion_id = tag.rsplit("/", 1)[-1]
            if minion_id in state.returned:
                continue
            state.returned.add(minion_id)
            state.expected.add(minion_id)
            pending.discard(minion_id)
            yield {minion_id: local._as_return(pub.jid, data)}
        if expect_minions:
            for m in sorted(state.expected - state.returned):
                if m in pub.no_grains:
                    reason = "no grains cached"
                else:
                    reason = "no response" if m in state.answered_probe else "not connected"
                yield {m: local.Missing(m, reason).as_return(pub.jid)}

    local.AsyncLocalClient._gather = _gather


def _client_no_crypto() -> None:
    """rx.transport.messages imports three size constants from rx.transport.crypto, which
    imports `cryptography` (~20 ms, ~6 MB) into every `rx` CLI run although the client
    never encrypts anything (it publishes in the clear over the local IPC socket with
    the root key).  Proposed: move NONCE_BYTES, PUBLIC_KEY_BYTES and SIGNATURE_BYTES to a
    dependency-free module (e.g. rx/transport/sizes.py) that both import.  Simulated here
    with a stub module holding just those constants, so the CLI never loads cryptography;
    anything else asked of the stub fails loudly."""
    import types

    if "rx.transport.crypto" in sys.modules:
        return
    stub = types.ModuleType("rx.transport.crypto")
    stub.KEY_BYTES, stub.NONCE_BYTES, stub.PUBLIC_KEY_BYTES, stub.SIGNATURE_BYTES = 32, 12, 32, 64

    def __getattr__(name: str):
        raise AttributeError(f"rx.transport.crypto.{name} is not available in the client_no_crypto patch")

    stub.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules["rx.transport.crypto"] = stub


def _cli_no_ssl() -> None:
    """client/cli.py: the CLI never uses TLS; keep asyncio from importing `ssl` (~4 ms)."""
    if "asyncio" not in sys.modules:
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]


def _master_proxies_one_process() -> None:
    """master/daemon.py Supervisor: run the three zmq proxies (request server, publisher, event
    publisher) as threads of one child process instead of three processes.  zmq.proxy runs
    in C without the GIL, so nothing is serialised, and the supervisor still restarts the
    child if it dies.  Two fewer forked processes: ~50 MB less RSS summed over the master."""
    import threading

    from rx.master import daemon, eventpub, publisher, reqserver

    def proxies(cfg) -> None:
        for target in (eventpub.main, publisher.main):
            threading.Thread(target=target, args=(cfg,), daemon=True).start()
        reqserver.main(cfg)

    orig_init = daemon.Supervisor.__init__

    def __init__(self, cfg, *args, **kwargs) -> None:
        orig_init(self, cfg, *args, **kwargs)
        drop = {"event-publisher", "publisher", "request-server"}
        self.children = [daemon.Child("proxies", proxies, (cfg,))] + [c for c in self.children if c.name not in drop]

    daemon.Supervisor.__init__ = __init__


def _minion_no_ssl() -> None:
    """minion/daemon.py main(): keep the `ssl` module (asyncio imports it, the minion never uses
    it) out of the minion: `sys.modules.setdefault("ssl", None)` before asyncio is imported
    saves the second copy of OpenSSL (cryptography bundles its own)."""
    if "asyncio" not in sys.modules:
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]


PATCHES: dict[str, Callable[[], None]] = {
    "jobcache_sqlite": _jobcache_sqlite,
    "keys_fast": _keys_fast,
    "client_sync_backoff": _client_sync_backoff,
    "client_gather_fast": _client_gather_fast,
    "minion_no_ssl": _minion_no_ssl,
    "client_no_crypto": _client_no_crypto,
    "cli_no_ssl": _cli_no_ssl,
    "master_proxies_one_process": _master_proxies_one_process,
}
SCOPES: dict[str, tuple[str, ...]] = {
    "jobcache_sqlite": ("rx.master.", "rx.client.runcli"),
    "keys_fast": ("rx.master.",),
    "client_sync_backoff": ("rx.client.", "bench"),
    "client_gather_fast": ("rx.client.", "bench"),
    "minion_no_ssl": ("rx.minion.",),
    "client_no_crypto": ("rx.client.cli",),
    "cli_no_ssl": ("rx.client.cli",),
    "master_proxies_one_process": ("rx.master.daemon",),
}
"""Which processes each patch is applied in (by entry-point module prefix; "bench" is the benchmark
process itself, "swarm" the swarm processes), so a process imports nothing it would not import anyway."""


def selected() -> list[str]:
    names = [n for n in os.environ.get(ENV, "").split(",") if n]
    bad = [n for n in names if n not in PATCHES]
    if bad:
        raise SystemExit(f"unknown patch(es) {', '.join(bad)}; known: {', '.join(PATCHES)}")
    return names


def apply(names: list[str] | None = None, *, target: str = "bench") -> list[str]:
    """Apply the selected patches whose scope covers `target` (an entry-point module, "bench" or "swarm")."""
    for name in selected() if names is None else names:
        if name not in _applied and any(target.startswith(scope) for scope in SCOPES[name]):
            PATCHES[name]()
            _applied.add(name)
    return sorted(_applied)


def main() -> None:
    """`python -m rx.bench.patched MODULE:FUNC [ARGS...]`: apply $RX_BENCH_PATCHES, then run FUNC."""
    if len(sys.argv) < 2 or ":" not in sys.argv[1]:
        raise SystemExit("usage: python -m rx.bench.patched MODULE:FUNC [ARGS...]")
    target = sys.argv[1]
    module, func = target.split(":", 1)
    apply(target=module)
    sys.argv = [module, *sys.argv[2:]]
    getattr(importlib.import_module(module), func)()


if __name__ == "__main__":
    main()
