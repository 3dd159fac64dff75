"""Users who are not root, as a service: log in (eauth back ends, rate limited), tokens (make, check,
revoke), and the rights decisions.  rx-api and the user socket's relay call `login`/`revoke`; the
master's workers call `check_token`/`local_user` and then `authorize_publish` for every publish, from
every path (the CLI, the LocalClient, rx-api): that one function is where a user's job is allowed or
refused.  rx-api's runner and wheel clients call `authorize_runner`/`authorize_wheel`.

For rx-api: `login(eauth, username, password, source=client_ip) -> Token` (`Token.to_salt()` is salt-api's
login return), `check_token(token) -> Principal` for every request (TokenInvalid: 401), `revoke(token)` for
/logout; publish a user's jobs with `AsyncLocalClient(cfg=cfg, token=token, source=client_ip)`, so the
master's worker makes the check (NotPermitted there arrives as rx.client.results.PermissionDenied: 403),
never by checking here and then publishing with the root key alone; `perms(principal)` for /login's perms.

Rights come from `external_auth` (per back end) and `publisher_acl` (local users), in Salt's format
(rx.acl), read when the service is made; a token carries only who its user is (and their OS groups at
login), so a right removed from the config is gone for existing tokens too once the master restarts.

Fail closed: no rights at all, an empty target, a target that matches no minion, a minion the user's
rules do not definitely cover (one the master only might match, for lack of cached grains, is not
covered) and a malformed or unknown token are all refused.  A refusal is `NotPermitted` (the CLI's exit
5, rx-api's 403); a bad token is `TokenInvalid` (401); a failed login `LoginFailed`, a locked-out user or
source `LoginLocked`.  Each login, logout, runner and wheel decision is one line in the audit log; the
workers write the publish/preview/lookup lines (they know the jid).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from rx.acl import RUNNER, WHEEL, Acl, UserTable, parse_table
from rx.authconfig import BUILTIN_EAUTH
from rx.master.auth import Backend, load_backend, os_groups
from rx.master.auth.audit import AuditLog
from rx.master.store.base import PROBE_FUNS, JobRecord, JobStore, TokenRecord, TokenStore
from rx.master.store.errors import UnknownJob
from rx.transport.ids import FUN_RE
from rx.transport.usermsgs import Token

__all__ = ["AuthPolicy", "AuthService", "open_auth", "Principal", "Token", "AuthError", "LoginFailed", "LoginLocked",
           "TokenInvalid", "NotPermitted", "ROOT", "PUBLISHER_ACL"]

PUBLISHER_ACL = "publisher_acl"
"""The `eauth` of a local user identified by the kernel (no token)."""
FAILURE_WINDOW = 60.0
PURGE_EVERY = 3600.0
Expand = Callable[[str], Awaitable[frozenset[str]]]
"""Resolves an ACL target (compound) to the minions it definitely matches (the master's matcher)."""


@dataclass(frozen=True)
class Principal:
    """Who a request is for.  `eauth` is "" for the root key's holder (no limits), PUBLISHER_ACL for a
    local user, else the back end that authenticated the token's user."""

    user: str
    eauth: str = ""
    groups: tuple[str, ...] = ()
    source: str = ""

    @property
    def root(self) -> bool:
        return not self.eauth

    @property
    def owner(self) -> str:
        """The job's `User`: the name for OS users (local, pam), `eauth:name` for others, so that a `file`
        user named like an OS user (root) never owns that user's jobs."""
        return self.user if self.eauth in ("", PUBLISHER_ACL, "pam") else f"{self.eauth}:{self.user}"


ROOT = Principal("root")


class AuthError(Exception):
    """A refusal; the message is for the caller (it names no secret)."""


class LoginFailed(AuthError):
    pass


class LoginLocked(AuthError):
    def __init__(self, message: str, until: float) -> None:
        super().__init__(message)
        self.until = until


class TokenInvalid(AuthError):
    pass


class NotPermitted(AuthError):
    pass


@dataclass(frozen=True)
class AuthPolicy:
    """The settings the service reads (a MasterConfig narrows to it: rx.config.narrow)."""

    external_auth: Mapping[str, Any] = field(default_factory=dict)
    publisher_acl: Mapping[str, Any] = field(default_factory=dict)
    nodegroups: Mapping[str, Any] = field(default_factory=dict)
    token_expire: float = 43200.0
    auth_failures_max: int = 5
    auth_lockout_seconds: float = 300.0
    audit_log_file: str = ""


def open_auth(cfg: Any, stores: Any) -> "AuthService":
    """The auth service of a master config over its stores (tokens, jobs), auditing to its audit_log_file."""
    from rx.config import narrow
    return AuthService(narrow(cfg, AuthPolicy), stores.tokens, stores.jobs, audit=AuditLog(cfg.audit_log_file))


class AuthService:
    def __init__(self, policy: AuthPolicy, tokens: TokenStore, jobs: JobStore | None = None, *,
                 audit: AuditLog | None = None, backends: Mapping[str, Backend] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.tokens = tokens
        self.jobs = jobs
        self.audit_log = audit or (AuditLog(policy.audit_log_file) if policy.audit_log_file else None)
        self.clock = clock
        self.local = parse_table(policy.publisher_acl, PUBLISHER_ACL, policy.nodegroups)
        self.eauth: dict[str, UserTable] = {
            name: parse_table(table, f"external_auth: {name}", policy.nodegroups,
                              BUILTIN_EAUTH.get(name, frozenset(k[1:] for k in table if k.startswith("^"))))
            for name, table in policy.external_auth.items()}
        self._backends: dict[str, Backend] = dict(backends or {})
        self._purged = 0.0

    # ------------------------------------------------------------ who

    def rights(self, who: Principal) -> Acl | None:
        """The principal's rights (None: root, no limits; an empty Acl: none at all)."""
        if who.root:
            return None
        table = self.local if who.eauth == PUBLISHER_ACL else self.eauth.get(who.eauth)
        return table.rights(who.user, who.groups) if table is not None else Acl()

    def perms(self, who: Principal) -> list:
        """The rights as written in the config (salt-api's `perms`)."""
        acl = self.rights(who)
        return [".*", "@runner", "@wheel"] if acl is None else list(acl.source)

    def local_user(self, name: str, *, source: str = "") -> Principal:
        """A local user the kernel identified (the user socket); NotPermitted if publisher_acl gives them nothing."""
        who = Principal(name, PUBLISHER_ACL, tuple(os_groups(name)), source)
        if not self.rights(who):
            raise NotPermitted(f"user {name} has no rights in publisher_acl on this master")
        return who

    async def check_token(self, token: str, *, source: str = "") -> Principal:
        """The principal a token stands for; TokenInvalid if it is unknown, expired, revoked or its back end is
        no longer configured."""
        record = await self.tokens.get(token) if token else None
        if record is None:
            raise TokenInvalid("unknown or revoked token: log in again (rx -a EAUTH -T)")
        if record.expire <= self.clock():
            await self.tokens.remove(token)
            raise TokenInvalid("the token has expired: log in again (rx -a EAUTH -T)")
        if record.eauth not in self.eauth:
            raise TokenInvalid(f"eauth {record.eauth!r} is no longer configured on this master")
        return Principal(record.user, record.eauth, record.groups, source)

    # ------------------------------------------------------------ login, logout

    async def login(self, eauth: str, username: str, password: str, *, source: str = "") -> Token:
        """A new token for a user the back end `eauth` authenticates and external_auth gives rights.
        LoginLocked while `auth_failures_max` failures within a minute (for this user, or from this
        source) hold; LoginFailed otherwise (the same words for an unknown user and a wrong password)."""
        now = self.clock()
        who = Principal(username, eauth, (), source)
        # the name casefolded: a back end that ignores case (LDAP, sssd) must not give each spelling its own count
        keys = [f"user:{eauth}:{username.casefold()}"] + ([f"source:{source}"] if source else [])
        until = await self.tokens.locked_until(keys, now)
        if until > now:
            self.audit(who, "login", "locked", reason=f"locked out for {until - now:.0f} more seconds")
            raise LoginLocked(f"too many failed logins: try again in {until - now:.0f} seconds", until)
        table = self.eauth.get(eauth)
        ok = table is not None and await asyncio.to_thread(self._backend(eauth, table).authenticate, username, password)
        if not ok:
            until = await self.tokens.note_failure(keys, now, FAILURE_WINDOW, self.policy.auth_failures_max,
                                                   self.policy.auth_lockout_seconds)
            self.audit(who, "login", "failed", reason="unknown back end" if table is None else "bad credentials"
                       + (" (now locked out)" if until else ""))
            raise LoginFailed(f"authentication failed (eauth {eauth})")
        await self.tokens.clear_failures(keys[:1])
        assert table is not None
        groups = tuple(await asyncio.to_thread(getattr(self._backend(eauth, table), "groups", lambda _u: ()), username))
        who = Principal(username, eauth, groups, source)
        acl = self.rights(who)
        if not acl:
            self.audit(who, "login", "refused", reason=f"no rights in external_auth: {eauth}")
            raise LoginFailed(f"user {username} has no rights in external_auth: {eauth}")
        record = TokenRecord(secrets.token_urlsafe(32), username, eauth, now, now + self.policy.token_expire, groups,
                             source)
        await self.tokens.put(record)
        self.audit(who, "login", "allowed")
        if now - self._purged > PURGE_EVERY:
            self._purged = now
            await self.tokens.purge(now)
        return Token(record.token, record.expire, record.start, username, eauth, list(acl.source))

    async def revoke(self, token: str, *, source: str = "") -> bool:
        """Logout: the token stops working at once; True if there was such a token."""
        record = await self.tokens.get(token) if token else None
        gone = await self.tokens.remove(token) if record is not None else False
        self.audit(Principal(record.user, record.eauth, (), source) if record else Principal("?", "?", (), source),
                   "logout", "allowed" if gone else "refused", reason="" if gone else "unknown token")
        return gone

    def _backend(self, eauth: str, table: UserTable) -> Backend:
        if eauth not in self._backends:
            self._backends[eauth] = load_backend(eauth, table.options or {})
        return self._backends[eauth]

    # ------------------------------------------------------------ rights

    async def authorize_publish(self, who: Principal, tgt: str | list, tgt_type: str, fun: str | list,
                                minions: Sequence[str], *, arg: Sequence[Any] = (), kwarg: Mapping[str, Any] | None = None,
                                expand: Expand) -> None:
        """Allow the job `fun(arg, kwarg)` on `minions` (the target as the master expanded it), or raise
        NotPermitted.  Every function must be allowed on every one of those minions by one of the user's
        rules; a rule's target counts through `expand` (the master's matcher: definite matches only).  The
        clients' own `jobs.find` probe is allowed for a job the user published, on that job's minions.
        The caller writes the audit line (with the jid)."""
        acl = self.rights(who)
        if acl is None:
            return
        if not acl:
            raise NotPermitted(f"user {who.user} has no rights on this master")
        if (isinstance(tgt, str) and not tgt.strip()) or not tgt:
            raise NotPermitted("refused: empty target")
        if not minions:
            raise NotPermitted(f"refused: the target {tgt!r} matches no minion {who.user} may use")
        funs, args = ([fun], [list(arg)]) if isinstance(fun, str) else (list(fun), [list(a) for a in arg])
        kwargs = dict(kwarg or {}) if isinstance(fun, str) else {}
        if funs == list(PROBE_FUNS):
            return await self._probe_ok(who, args[0], minions)
        resolved = {t: await expand(t) for t in acl.targets()}
        for name, fargs in zip(funs, args):
            denied = [m for m in minions if not acl.allows_minion(name, fargs, kwargs, m, resolved)]
            if denied:
                raise NotPermitted(f"user {who.user} may not run {name} on every minion {tgt!r} matches "
                                   f"({len(denied)} outside their rights: {', '.join(denied[:5])}"
                                   f"{', ...' if len(denied) > 5 else ''})")

    async def _probe_ok(self, who: Principal, args: list, minions: Sequence[str]) -> None:
        record = await self._job(args[0]) if len(args) == 1 and isinstance(args[0], str) else None
        if record is None or not self.may_see(who, record) or not set(minions) <= set(record.minions):
            raise NotPermitted("refused: jobs.find is allowed only for your own job, on its minions")

    async def _job(self, jid: str) -> JobRecord | None:
        if self.jobs is None:
            return None
        try:
            return await self.jobs.get_job(jid)
        except UnknownJob:
            return None

    def may_see(self, who: Principal, record: JobRecord) -> bool:
        """Whether the principal may read this job's returns (root: any job; a user: their own)."""
        return who.root or record.job.user == who.owner

    async def visible(self, who: Principal, minions: Sequence[str], expand: Expand) -> list[str]:
        """Of `minions`, those the principal may run something on (what a preview shows them)."""
        acl = self.rights(who)
        if acl is None:
            return list(minions)
        if any(rule.target is None for rule in acl.minions):
            return list(minions)
        allowed: set[str] = set()
        for target in acl.targets():
            allowed |= await expand(target)
        return [m for m in minions if m in allowed]

    def authorize_runner(self, who: Principal, fun: str, arg: Sequence[Any] = (),
                         kwarg: Mapping[str, Any] | None = None) -> None:
        """Allow the runner `fun` (`@runner`, `@<module>` rights) or raise NotPermitted; audited."""
        self._spec(who, RUNNER, fun, arg, kwarg)

    def authorize_wheel(self, who: Principal, fun: str, arg: Sequence[Any] = (),
                        kwarg: Mapping[str, Any] | None = None) -> None:
        """Allow the wheel-style function `fun` (key.*, minions.*, config.*: `@wheel`, `@<module>` rights) or
        raise NotPermitted; audited."""
        self._spec(who, WHEEL, fun, arg, kwarg)

    def _spec(self, who: Principal, form: str, fun: str, arg: Sequence[Any], kwarg: Mapping[str, Any] | None) -> None:
        acl = self.rights(who)
        if not FUN_RE.match(fun):
            self.audit(who, form, "refused", fun=fun, reason="not a function name")
            raise NotPermitted(f"{fun!r} is not a {form} function name (module.function)")
        if acl is not None and not acl.allows_spec(form, fun, arg, kwarg):
            self.audit(who, form, "refused", fun=fun, reason=f"not in {who.user}'s @{form} rights")
            raise NotPermitted(f"user {who.user} may not run the {form} function {fun}")
        self.audit(who, form, "allowed", fun=fun)

    def audit(self, who: Principal, action: str, outcome: str, **fields: Any) -> None:
        """One line in the audit log (see rx.master.auth.audit for the fields)."""
        if self.audit_log is not None:
            self.audit_log.write(user=who.user, eauth=who.eauth, action=action, outcome=outcome,
                                 source=who.source, **fields)
