"""The minion's gate for publications: verify the master's signature, open the job, refuse
stale, expired and replayed jids, and decide whether the target names this minion.  Sans-IO:
frames and sessions in, verdicts out."""

from __future__ import annotations

import enum
import functools
import logging
import time
from pathlib import Path
from typing import Callable

from rx.logsetup import RateLimitedLog
from rx.minion.seen import SeenJids
from rx.targeting import MinionFacts, Target, TargetError, compile_target
from rx.transport.crypto import Verifier
from rx.transport.handshake import Session, private_publish_key
from rx.transport.messages import JOB_WINDOW, Job, Publication
from rx.transport.secure import (BadJob, OtherRecipient, Rejected, StaleSerial, open_publication,
                                 parse_publication)

log = logging.getLogger("rx.minion")
_drop = RateLimitedLog(log)

SEEN_JIDS_MAX = 100_000
START_SLACK = 5.0
"""Clock jitter allowed between a job's timestamp and this process's first session."""


class Hold(enum.Enum):
    """A master-signed publication this minion cannot open with its session: re-authenticate, retry."""

    REAUTH = "reauth"


@functools.lru_cache(maxsize=512)
def _target(tgt: str | tuple, tgt_type: str, delimiter: str) -> Target:
    """Compiled targets are shared by every job (and every swarm minion) with the same expression."""
    return compile_target(list(tgt) if isinstance(tgt, tuple) else tgt, tgt_type, delimiter=delimiter)


class Gate:
    def __init__(self, facts: Callable[[], MinionFacts], seen_file: Path | None = None) -> None:
        """`seen_file`: where the jids run are kept across restarts (None: in memory only)."""
        self._facts = facts
        self.session: Session | None = None
        self.session_started = 0.0
        self.verifier: Verifier | None = None
        self.private_key = b""
        self.seen = SeenJids(seen_file, JOB_WINDOW, SEEN_JIDS_MAX)

    def use(self, session: Session) -> None:
        """Take a new session; the first one marks when this process started taking jobs (older ones
        are stale, and the jids run before a restart are remembered for the window around it)."""
        self.session = session
        self.private_key = private_publish_key(session.request_key)
        master_now = time.time() + session.master_offset
        if not self.session_started:
            self.session_started = master_now
        self.seen.prune(master_now)
        self.verifier = Verifier(session.master_pub)

    def verify(self, frame: bytes) -> Publication | None:
        """The publication if the master signed it; None for garbage and forgeries (logged) and, unread,
        for another minion's private publication."""
        assert self.verifier is not None
        try:
            return parse_publication(frame, self.verifier, self._facts().id)
        except OtherRecipient:
            return None
        except Rejected as exc:
            _drop(logging.WARNING, "dropped a publication that does not verify: %s", exc)
            return None

    def open(self, pub: Publication, retry: bool) -> Job | Hold | None:
        """The job, or Hold when a newer or other session key may open it (only if `retry`)."""
        assert self.session is not None
        try:
            return open_publication(pub, self.private_key if pub.to else self.session.publish_key,
                                    self.session.serial)
        except StaleSerial as exc:
            if exc.theirs > exc.ours and retry:
                return Hold.REAUTH
            log.debug("dropped a publication under key serial %d (ours %d)", exc.theirs, exc.ours)
        except BadJob as exc:
            _drop(logging.ERROR, "dropped a master-signed publication whose job is malformed: %s", exc)
        except Rejected as exc:
            if retry:
                return Hold.REAUTH
            _drop(logging.WARNING, "dropped a publication that does not decrypt: %s", exc)
        return None

    def admit(self, job: Job) -> bool:
        """Fresh, never run here (restart or not), and targeting this minion; the jid is recorded before
        the job may start."""
        assert self.session is not None
        master_now = time.time() + self.session.master_offset
        if not (self._fresh(job, master_now) and self._ours(job)):
            return False
        self.seen.add(job.jid, job.ts, master_now)
        return True

    def _ours(self, job: Job) -> bool:
        try:
            return bool(_target(job.tgt if isinstance(job.tgt, str) else tuple(job.tgt), job.tgt_type,
                                job.delimiter).match(self._facts()))
        except TargetError as exc:
            log.debug("job %s: target not understood here: %s", job.jid, exc)
            return False

    def _fresh(self, job: Job, master_now: float) -> bool:
        if job.jid in self.seen:
            _drop(logging.WARNING, "refused a replayed job %s", job.jid)
            return False
        if abs(master_now - job.ts) > JOB_WINDOW or job.ts < self.session_started - START_SLACK:
            _drop(logging.WARNING, "refused stale job %s (published %.0fs ago by the master's clock)", job.jid,
                  master_now - job.ts)
            return False
        if job.expired(master_now):
            _drop(logging.WARNING, "refused expired job %s (it expired %.1fs ago by the master's clock: its client "
                  "stopped waiting for it)", job.jid, master_now - job.expires)
            return False
        return True
