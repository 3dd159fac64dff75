"""The wheel-style client of rx-api: master-side key and config functions in Salt's names, arguments and
return shapes, from an explicit allow-list (`WHEEL`) and nothing else.  Each call is authorized by
AuthService.authorize_wheel (`@wheel`, `@key`... rights; audited) before it runs, in rx-api's process, over the
master's services (the key store, presence).

`config.values` returns the master's settings named in CONFIG_SHOWN only: never external_auth or publisher_acl
(users and their rights), postgres_dsn (it may hold a password), the TLS key's path or Salt's salt-api blocks;
no key material is in any setting (keys live in pki_dir, which is only named).  A setting added to rx is
withheld until it is classified (tests/unit/test_api_wheel.py fails until it is).
"""

from __future__ import annotations

import dataclasses
import glob
import os
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from rx.client.results import BadRequest, MasterUnreachable
from rx.master.services import KeyStoreError, MasterNotRunning

if TYPE_CHECKING:
    from rx.api.context import ApiContext

SALT_DIRS = {"accepted": "minions", "pending": "minions_pre", "rejected": "minions_rejected",
             "denied": "minions_denied"}
"""rx's key states and the names Salt's key functions give them."""
LIST_STATES = {"acc": "accepted", "accepted": "accepted", "pre": "pending", "un": "pending",
               "unaccepted": "pending", "pending": "pending", "rej": "rejected", "rejected": "rejected",
               "den": "denied", "denied": "denied"}
"""key.list's `match` (a state, in Salt's words) -> rx's state; `all` lists every state."""
CONFIG_SHOWN = frozenset({
    "root_dir", "user", "log_level", "log_file", "pki_dir", "cachedir", "pidfile", "token_expire", "token_dir",
    "token_store_backend", "user_sock_dir", "audit_log_file", "auth_failures_max", "auth_lockout_seconds",
    "api_host", "api_port", "ssl_crt", "disable_ssl", "api_enable_clients", "api_cors_origins",
    "max_request_body_size", "webhook_disable_auth", "stats_disable_auth", "api_log_file", "api_pidfile",
    "sock_dir", "interface", "publish_port", "ret_port", "zmq_backlog", "metrics_port", "metrics_interface",
    "metrics_event_drops",
    "worker_processes", "auto_accept", "timeout", "max_wait_seconds", "keep_jobs_hours", "job_cache_max_mb",
    "publish_key_rotate_hours", "auth_window_seconds", "max_pending_keys", "autosign_file", "private_publish_max",
    "job_store_backend", "jid_node", "postgres_pool_size", "key_store_backend", "grains_store_backend",
    "session_store_backend", "nodegroups", "file_roots", "fileserver_followsymlinks", "file_ignore_regex",
    "file_ignore_glob", "file_buffer_size", "file_recv", "file_recv_max_size", "pillar_roots",
    "pillar_source_merging_strategy", "pillar_merge_lists", "api_event_replay", "api_event_client_queue",
    "api_event_keepalive", "salt_event_tags"})
"""The settings config.values returns (an allow-list: see the module's docstring)."""
CONFIG_WITHHELD = frozenset({"external_auth", "publisher_acl", "postgres_dsn", "ssl_key", "rest_cherrypy",
                             "rest_tornado"})
"""Settings config.values never returns."""


def _salt_listing(found: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {SALT_DIRS[state]: sorted(ids) for state, ids in found.items()}


def _patterns(match: Any) -> list[str]:
    """Salt's `match`: a glob, a list of globs, or globs separated by commas."""
    items = match if isinstance(match, list) else str(match).split(",") if isinstance(match, str) else None
    out = [str(m).strip() for m in items or () if str(m).strip()]
    if not out:
        raise BadRequest("match: give a minion id or glob (a list, or ids separated by commas)")
    return out


async def _matching(ctx: "ApiContext", patterns: list[str]) -> dict[str, list[str]]:
    """Salt's name_match: the keys whose ids match, by Salt's state name (states with none left out)."""
    found: dict[str, set[str]] = {}
    for pattern in patterns:
        for key in await ctx.services.keys.keys(pattern):
            found.setdefault(key.state, set()).add(key.id)
    return _salt_listing({state: sorted(ids) for state, ids in found.items()})


async def key_list_all(ctx: "ApiContext") -> dict[str, list[str]]:
    """Every key by state: `{"local": [...], "minions": [...], "minions_pre": [...], "minions_rejected": [...],
    "minions_denied": [...]}` (`local`: the master's own key files, by name)."""
    listing = _salt_listing(await ctx.services.keys.listing())
    try:
        local = sorted(n for n in os.listdir(ctx.cfg.pki_dir) if n.startswith("master."))
    except OSError:
        local = []
    return {"local": local, **listing}


async def key_list(ctx: "ApiContext", match: str) -> dict[str, list[str]]:
    """The keys in one state: `match` is `acc`/`accepted`, `pre`/`un`/`unaccepted`/`pending`, `rej`/`rejected`,
    `den`/`denied`, or `all`."""
    listing = await ctx.services.keys.listing()
    if match == "all":
        return _salt_listing(listing)
    state = LIST_STATES.get(str(match).lower())
    if state is None:
        raise BadRequest(f"key.list: {str(match)[:40]!r} is not a key state (accepted, pending, rejected, denied, "
                         "all; or Salt's acc, pre, un, rej, den)")
    return _salt_listing({state: listing[state]})


async def key_finger(ctx: "ApiContext", match: Any, hash_type: str | None = None) -> dict[str, dict[str, str]]:
    """`{state: {id: fingerprint}}` of the keys matching (SHA-256 of the public key: rx's only fingerprint)."""
    if hash_type not in (None, "", "sha256"):
        raise BadRequest(f"key.finger: rx fingerprints are sha256 only (hash_type {str(hash_type)[:20]!r})")
    out: dict[str, dict[str, str]] = {}
    for pattern in _patterns(match):
        for fp in await ctx.services.keys.fingerprints(pattern):
            out.setdefault(SALT_DIRS[fp.state], {})[fp.id] = fp.fingerprint
    return out


async def _act(ctx: "ApiContext", act: str, match: Any, **include: bool) -> dict[str, list[str]]:
    patterns = _patterns(match)
    keys = ctx.services.keys
    found = {}
    try:
        for pattern in patterns:
            found.update((k.id, k) for k in await keys.candidates(act, pattern, **include))
        await keys.apply(act, list(found.values()))
    except KeyStoreError as exc:
        raise BadRequest(str(exc)) from None
    return await _matching(ctx, patterns)


async def key_accept(ctx: "ApiContext", match: Any, include_rejected: bool = False,
                     include_denied: bool = False) -> dict[str, list[str]]:
    """Accept the pending keys matching (rejected and denied ones too when asked); returns the matching keys by
    state afterwards."""
    return await _act(ctx, "accept", match, include_rejected=bool(include_rejected),
                      include_denied=bool(include_denied))


async def key_reject(ctx: "ApiContext", match: Any, include_accepted: bool = False,
                     include_denied: bool = False) -> dict[str, list[str]]:
    """Reject the pending keys matching (accepted and denied ones too when asked: an accepted minion is cut off
    at once, the session key rotates); returns the matching keys by state afterwards."""
    return await _act(ctx, "reject", match, include_accepted=bool(include_accepted),
                      include_denied=bool(include_denied))


async def key_delete(ctx: "ApiContext", match: Any) -> dict[str, list[str]]:
    """Delete the keys matching, in any state (and their cached grains); returns what still matches: `{}`."""
    return await _act(ctx, "delete", match)


async def minions_connected(ctx: "ApiContext") -> list[str]:
    """The accepted minions connected to the master now (live presence; nothing is sent to them), sorted."""
    try:
        connected = await ctx.presence.connected()
    except MasterNotRunning as exc:
        raise MasterUnreachable(str(exc)) from None
    accepted = set(await ctx.services.stores.keys.ids("accepted"))
    return sorted(set(connected) & accepted)


async def config_values(ctx: "ApiContext") -> dict[str, Any]:
    """The master's effective settings that CONFIG_SHOWN names: no users, rights, passwords or key material."""
    return {name: _plain(getattr(ctx.cfg, name)) for name in config_shown()}


def config_shown() -> list[str]:
    """The settings config.values returns, in declaration order."""
    from rx.config import MasterConfig
    from rx.configspec import keys
    return [name for name in keys(MasterConfig) if name in CONFIG_SHOWN]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return str(value)
    return value


WheelFunction = Callable[..., Awaitable[Any]]
WHEEL: dict[str, WheelFunction] = {
    "key.list_all": key_list_all,
    "key.list": key_list,
    "key.finger": key_finger,
    "key.accept": key_accept,
    "key.reject": key_reject,
    "key.delete": key_delete,
    "minions.connected": minions_connected,
    "config.values": config_values,
}
"""Every wheel function rx-api has: a name not here is a 400, whatever the user's rights."""


def exact(minion_id: str) -> str:
    """A minion id as a glob matching that id only (for /keys/<id>)."""
    return glob.escape(minion_id)
