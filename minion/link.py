"""The minion's link to its master: authentication (single-flight re-auth), sealed requests
with retry, and the catch-up on jobs published while the publish link was down.

One link per master; the minion holds them in a list, ready for a failover setting that names
several masters.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import random
import time
from dataclasses import dataclass
from typing import Callable

from rx.config import MinionConfig
from rx.logsetup import RateLimitedLog
from rx.minion.auth import Authenticator
from rx.transport import messages as m, presence, topics
from rx.transport.crypto import Identity
from rx.transport.errors import ErrorKind, ProtocolError
from rx.transport.handshake import Session
from rx.transport.messages import Job, MissedRequest
from rx.transport.replies import ErrorReply, MissedReply, is_error
from rx.transport.roles import LinkEvent, RequestTimeout, Subscriber, Transport, tcp_url
from rx.transport.secure import Rejected, open_reply, seal_request

log = logging.getLogger("rx.minion")

SEND_ATTEMPTS = 6
MAX_REAUTHS = 3
"""Re-authentications one request may ask for (they do not count as attempts)."""
_UNAUTHENTIC = "a reply that does not authenticate"
DEFAULT_PUBLISH_PORT = 4505
LOST_SLACK = 1.0
"""Seconds before a disconnect from which missed jobs are asked for (the loss is noticed late)."""
CATCH_UP_SPREAD = 3.0
"""A reconnected minion asks for its missed jobs after a random 0-3 s: after a master restart all of them
reconnect within a second, and 10,000 catch-up requests at once queue longer than a request's timeout, so
the last ones time out and come again, and the master does their work twice."""
CATCH_UP_AGAIN = 5.0
"""...and asks once more this long (plus a random 0-3 s) after its first answer: a connection counts as up when
its handshake is done, but the publisher applies its subscription later, so a job published meanwhile is in
neither the first answer nor the subscription (a 10,000-minion master restart lost a quarter of the first ping
that way), and a first ask that got no answer at all is made good."""
MISMATCH_LOG_SECONDS = 10.0
"""At most one warning per this many seconds about replies that do not answer our request."""


class Status(enum.Enum):
    DELIVERED = "delivered"
    """The master took it (or had it already: DUPLICATE)."""
    REFUSED = "refused"
    """The master answered with a final error: sending it again cannot help."""
    UNDELIVERED = "undelivered"
    """No answer, or the master could not take it now: worth sending again later."""


@dataclass(frozen=True)
class Outcome:
    """What became of one request: its status, the master's reply when delivered, and why not otherwise."""

    status: Status
    reply: dict | None
    reason: str = ""


class MasterLink:
    def __init__(self, cfg: MinionConfig, identity: Identity, transport: Transport) -> None:
        self.cfg = cfg
        self.req = transport.request_client(tcp_url(cfg.master, cfg.master_port), untrusted=True)
        self.auth = Authenticator(cfg, identity, self.req)
        self.transport = transport
        self.session: Session | None = None
        self._lock = asyncio.Lock()
        self.on_session: Callable[[Session], None] = lambda s: None
        self._mismatch = functools.partial(RateLimitedLog(log, MISMATCH_LOG_SECONDS), logging.WARNING)
        self.answered = asyncio.Event()
        """Set whenever the master takes a request or grants a session: a sign it is back."""
        self._sub: Subscriber | None = None
        self._claim: bytes | None = None

    async def reauth(self, seen: Session | None) -> bool:
        """Single-flight re-authentication: only if the session is still the one the caller found
        wanting, so a burst of triggers costs one handshake.  True if this call authenticated."""
        async with self._lock:
            if self.session is not seen:
                return False
            self.session = await self.auth.until_accepted()
            self.answered.set()
            self.on_session(self.session)
            self._reclaim()
            return True

    def publish_url(self) -> str:
        """The master's publish endpoint: the configured override, else the port the master announced."""
        port = self.cfg.publish_port or (self.session.publish_port if self.session else 0) or DEFAULT_PUBLISH_PORT
        return tcp_url(self.cfg.master, port)

    def subscribe(self, watch_link: bool) -> Subscriber:
        """The publish channel: broadcast jobs and the private jobs of this minion's bucket, and this minion's
        presence claim (how the master knows it is connected, rx.transport.presence)."""
        assert self.session is not None
        self._claim = presence.claim(self.session.request_key, self.cfg.id, self.session.serial)
        self._sub = self.transport.subscriber(self.publish_url(), [*topics.subscriptions(self.cfg.id), self._claim],
                                              watch_link=watch_link)
        return self._sub

    def _reclaim(self) -> None:
        """A new session: claim presence under it (a claim made under a lost session secret is refused)."""
        if self._sub is None or self.session is None:
            return
        claim = presence.claim(self.session.request_key, self.cfg.id, self.session.serial)
        if claim != self._claim:
            self._sub.retopic(self._claim, claim)
            self._claim = claim

    async def send(self, cmd: str, load: dict) -> dict | None:
        """Send a sealed request, re-authenticating and retrying; the master's reply, or None if it could
        not be delivered or was refused (logged)."""
        outcome = await self.exchange(cmd, load)
        if outcome.status is Status.UNDELIVERED:
            log.error("%s: gave up after %d attempts: %s", cmd, SEND_ATTEMPTS, outcome.reason)
        return outcome.reply

    async def exchange(self, cmd: str, load: dict, attempts: int = SEND_ATTEMPTS) -> Outcome:
        """Send a sealed request up to `attempts` times (backing off between them), re-authenticating
        when the master asks; what became of it.

        No answer, UNAVAILABLE and INTERNAL (the master could not take it now: a store or disk fault)
        are tried again, then reported UNDELIVERED: the caller may keep the request and send it later.
        A reply that does not authenticate for the request it answers (a stale or forged one from
        something on the path) is not trusted: the request is sealed again and resent.  Resending is
        safe: the master stores a return once per (jid, id) and answers a second copy with DUPLICATE,
        which means delivered."""
        delay, reason, reauths, tries = min(1.0, self.cfg.return_retry_timer_max), "not sent", 0, 0
        while tries < attempts:
            if tries:
                if not reason.startswith(_UNAUTHENTIC):  # those are logged rate-limited
                    log.warning("%s: %s; retrying in %gs", cmd, reason, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.return_retry_timer_max)
            session = self.session
            assert session is not None
            sealed = seal_request(session.request_key, self.cfg.id, session.serial, cmd, load)
            try:
                reply = await self.req.request(sealed.to_wire(), timeout=self.cfg.timeout, retries=1)
            except RequestTimeout as exc:
                tries, reason = tries + 1, str(exc)
                continue
            if is_error(reply):
                err = _error(reply)
                if err is not None and err.kind in (ErrorKind.REAUTH, ErrorKind.AUTH):
                    if reauths < MAX_REAUTHS:
                        reauths += 1
                        await self.reauth(session)
                    else:
                        tries, reason = tries + 1, "the master keeps asking to authenticate again"
                    continue
                if err is not None and err.kind in (ErrorKind.UNAVAILABLE, ErrorKind.INTERNAL):
                    tries, reason = tries + 1, f"the master could not take it ({err.message})"
                    continue
                log.error("%s refused by the master: %s", cmd, err.message if err else reply)
                return Outcome(Status.REFUSED, None, err.message if err else "refused")
            try:
                inner = open_reply(session.request_key, sealed, reply)
            except Rejected as exc:
                self._mismatch("%s: the reply does not authenticate for this request (%s); a stale or forged "
                               "reply from the path to the master? Sending it again", cmd, exc)
                tries, reason = tries + 1, f"{_UNAUTHENTIC} ({exc})"
                continue
            if not is_error(inner):
                self.answered.set()
                return Outcome(Status.DELIVERED, inner if isinstance(inner, dict) else None)
            err = _error(inner)
            if err is not None and err.kind is ErrorKind.DUPLICATE:
                log.debug("%s was already delivered (a retry after a lost reply)", cmd)
                self.answered.set()
                return Outcome(Status.DELIVERED, {"ok": True})
            if err is not None and err.kind in (ErrorKind.UNAVAILABLE, ErrorKind.INTERNAL):
                tries, reason = tries + 1, f"the master could not take it ({err.message})"
                continue
            log.error("%s refused by the master: %s", cmd, err.message if err else inner)
            return Outcome(Status.REFUSED, None, err.message if err else "refused")
        return Outcome(Status.UNDELIVERED, None, reason)

    async def missed_jobs(self, since_local: float) -> list[Job]:
        assert self.session is not None
        reply = await self.send(m.MISSED, MissedRequest(since_local + self.session.master_offset).to_wire())
        if reply is None:
            return []
        try:
            return MissedReply.from_wire(reply).jobs
        except ProtocolError as exc:
            log.warning("dropped the missed jobs the master sent: %s", exc)
            return []

    async def catch_up(self, sub: Subscriber, run: Callable[[Job], None]) -> None:
        """A publication sent while the subscriber (re)connects never arrives: on every (re)connect,
        ask for the jobs addressed to us since the link went down (or since we authenticated)."""
        lost_at: float | None = time.time() - LOST_SLACK
        async for event in sub.link_events():
            if event is LinkEvent.DISCONNECTED and lost_at is None:
                lost_at = time.time() - LOST_SLACK
            elif event is LinkEvent.CONNECTED and lost_at is not None:
                since, lost_at = lost_at, None
                for wait in (0.0, CATCH_UP_AGAIN):
                    await asyncio.sleep(wait + random.uniform(0.0, CATCH_UP_SPREAD))
                    for job in await self.missed_jobs(since):
                        run(job)

    async def aclose(self) -> None:
        await self.req.aclose()


def _error(reply: object) -> ErrorReply | None:
    try:
        return ErrorReply.from_wire(reply)
    except ProtocolError:
        return None
