"""Every tag of the master's event bus, built in one place (the payloads are in `events`; this
module has no classes, so a client that only subscribes loads nothing more)."""

from __future__ import annotations

AUTH = "rx/auth"
KEY = "rx/key"
KEY_ROTATE = "rx/key/rotate"
SYNC_PREFIX = "rx/sync/"
JOB_PREFIX = "rx/job/"
MINION_PREFIX = "rx/minion/"
JOB_CACHE_PREFIX = "rx/job_cache/"
NETAPI_HOOK = "rx/netapi/hook"
"""rx-api's `POST /hook/<path>` fires `rx/netapi/hook/<path>` (Salt's salt/netapi/hook/<path>)."""
KEY_ACTS = ("pending", "denied", "accept", "reject", "delete", "evict")
GRAINS_TAGS = ("start", "grains")
"""Minion events whose `grains` the master caches for targeting."""


def job_new(jid: str) -> str:
    return f"{JOB_PREFIX}{jid}/new"


def job_ret_prefix(jid: str) -> str:
    return f"{JOB_PREFIX}{jid}/ret/"


def job_ret(jid: str, minion_id: str) -> str:
    return job_ret_prefix(jid) + minion_id


def netapi_hook(path: str) -> str:
    return f"{NETAPI_HOOK}/{path}" if path else NETAPI_HOOK


def batch_prefix(tag: str) -> str | None:
    """The prefix under which events with this tag may travel several in one bus message: a job's returns
    (`rx/job/<jid>/ret/`); None for every other tag."""
    if tag.startswith(JOB_PREFIX):
        i = tag.find("/ret/", len(JOB_PREFIX))
        if i > len(JOB_PREFIX):
            return tag[:i + 5]
    return None


def subscription(prefix: str) -> str:
    """What a bus subscriber for the tags starting with `prefix` subscribes to: `prefix`, or when it reaches
    into a job's returns (`rx/job/<jid>/ret/web`), their batch prefix (then it keeps only what `prefix` asks)."""
    batch = batch_prefix(prefix)
    return batch if batch is not None and len(prefix) > len(batch) else prefix


def minion_prefix(minion_id: str) -> str:
    return f"{MINION_PREFIX}{minion_id}/"


def minion_tag(minion_id: str, tag: str) -> str:
    return minion_prefix(minion_id) + tag


def sync_tag(token: str) -> str:
    return SYNC_PREFIX + token


def job_cache(what: str) -> str:
    return JOB_CACHE_PREFIX + what
