"""The minion's side of authentication: retry with backoff and jitter, pin the
master's key, tell the operator exactly what to run while the key is pending."""

from __future__ import annotations

import asyncio
import glob
import logging
import random
import shlex
import time
from pathlib import Path

from rx.config import MinionConfig
from rx.transport import messages as m
from rx.transport.crypto import Identity, fingerprint
from rx.transport.errors import ErrorKind, ProtocolError
from rx.transport.handshake import AuthError, Session, finish_auth, start_auth
from rx.transport.messages import ClearRequest
from rx.transport.replies import ErrorReply, is_error
from rx.transport.roles import RequestClient, RequestTimeout

log = logging.getLogger(__name__)

FIRST_RETRY = 1.0
PENDING_RETRY_MAX = 10.0
BUSY_RETRY_MIN, BUSY_RETRY_MAX, BUSY_RETRY_CAP = 0.2, 1.0, 8.0
"""Seconds before asking again when the master answers busy (busy_delay)."""


def busy_delay(busy: int) -> float:
    """Seconds to wait after the `busy`-th busy answer in a row (1, 2, ...): uniform between BUSY_RETRY_MIN and a
    ceiling that doubles from BUSY_RETRY_MAX up to BUSY_RETRY_CAP.  A busy answer means the master's queue of
    new requests is full: when thousands of minions start at once and each asks again within a second, the
    master spends its CPU refusing them (the bench's cold-auth storm); spread out, the requests it can take
    arrive instead, and a minion still asks at least every BUSY_RETRY_CAP seconds."""
    ceiling = min(BUSY_RETRY_MAX * 2 ** min(max(busy - 1, 0), 16), BUSY_RETRY_CAP)  # (a float overflows past 2**1023)
    return random.uniform(BUSY_RETRY_MIN, max(ceiling, BUSY_RETRY_MIN))


class Authenticator:
    def __init__(self, cfg: MinionConfig, identity: Identity, req: RequestClient) -> None:
        self.cfg = cfg
        self.identity = identity
        self.req = req
        self.pin_path = Path(cfg.pki_dir) / "master.pub"
        self._last_warn = 0.0

    def pinned(self) -> bytes | None:
        try:
            return self.pin_path.read_bytes()
        except FileNotFoundError:
            return None

    async def once(self) -> tuple[str, Session | None]:
        """One handshake; returns (status, session) or raises AuthError/RequestTimeout."""
        pending = start_auth(self.identity, self.cfg.id)
        wire = ClearRequest(m.AUTH, pending.request.to_wire()).to_wire()
        reply = await self.req.request(wire, timeout=self.cfg.timeout)
        if is_error(reply):
            try:
                err = ErrorReply.from_wire(reply)
            except ProtocolError:
                raise AuthError("refused", "master refused auth: no reason given") from None
            if err.kind is ErrorKind.UNAVAILABLE:
                raise AuthError("busy", f"the master is busy: {err.message}")
            raise AuthError("refused", f"master refused auth: {err.message}")
        pinned = self.pinned()
        outcome = finish_auth(pending, reply, pinned, self.cfg.master_finger)
        if pinned is None:
            self.pin_path.write_bytes(outcome.master_pub)
            log.warning("pinned the master's key %s (first contact)", fingerprint(outcome.master_pub))
        elif outcome.replaces_pin:
            self.pin_path.write_bytes(outcome.master_pub)
            log.error("the pinned master key %s (%s) does not match master_finger; the master's key %s does, "
                      "signed this answer and now replaces the pin. If master_finger was not changed on purpose, "
                      "find out who held the old key", fingerprint(pinned), self.pin_path,
                      fingerprint(outcome.master_pub))
        return outcome.status, outcome.session

    async def until_accepted(self) -> Session:
        """Authenticate, retrying forever with capped exponential backoff and jitter."""
        delay, busy = FIRST_RETRY, 0
        while True:
            cap = self.cfg.auth_retry_max_seconds
            try:
                status, session = await self.once()
            except RequestTimeout:
                busy = 0
                self.req.reset()
                log.warning("master %s:%d did not answer auth; retrying in %.0fs", self.cfg.master,
                            self.cfg.master_port, delay)
            except AuthError as exc:
                if exc.reason == "busy":  # its queue of new requests is full (a storm): again within seconds
                    busy += 1
                    log.info("%s; asking again shortly", exc)
                    await asyncio.sleep(busy_delay(busy))
                    continue
                busy = 0
                log.error("authentication failed: %s", exc)
            else:
                busy = 0
                if session is not None:
                    log.info("authenticated with the master (key serial %d)", session.serial)
                    return session
                self._report(status)
                if status == "pending":
                    cap = min(cap, PENDING_RETRY_MAX)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 1.5, cap)

    def _report(self, status: str) -> None:
        fp = self.identity.fingerprint
        if status == "pending":
            now = time.monotonic()
            if now - self._last_warn >= self.cfg.pending_warn_seconds or not self._last_warn:
                self._last_warn = now
                log.warning("this minion's key is pending on the master; accept it there with: rx-key -a %s "
                            "(fingerprint %s)", key_arg(self.cfg.id), fp)
        elif status == "rejected":
            log.error("this minion's key was rejected by the master; it will keep retrying (fingerprint %s)", fp)
        elif status == "denied":
            log.error("the master holds a different key for id %r and denied this one (fingerprint %s); "
                      "if the minion was reinstalled, delete the old key on the master: rx-key -d %s",
                      self.cfg.id, fp, key_arg(self.cfg.id))


def key_arg(minion_id: str) -> str:
    """`minion_id` as an `rx-key` GLOB argument to paste into a shell: glob characters escaped (an id like
    `web*` must not accept every web key), a leading '-' too (not an option), and shell-quoted."""
    pattern = glob.escape(minion_id)
    return shlex.quote("[-]" + pattern[1:] if pattern.startswith("-") else pattern)
