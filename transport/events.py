"""Events on the master's bus: every tag comes from the builders in `tags` (re-exported here),
every payload is a typed value with one to_wire/from_wire pair.

Tags:
  rx/auth                      AuthEvent        a minion authenticated (any status)
  rx/key                       KeyEvent         a key was filed, accepted, rejected, deleted or denied
  rx/key/rotate                KeyRotateEvent   the session key serial advanced
  rx/job/<jid>/new             JobNewEvent      a job was published (with its expected minions)
  rx/job/<jid>/ret/<id>        JobRetEvent      a minion's return was stored
  rx/minion/<id>/<tag>         MinionFired      a minion fired an event (start, grains, ...)
  rx/sync/<token>              -                a client's own round trip proving its subscription
  rx/job_cache/<what>          JobCacheEvent    the job cache lost returns (`lost`) or removed old jobs (`trimmed`)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rx.transport import fields as f
from rx.transport.errors import ProtocolError
from rx.transport.messages import Job, JobReturn
from rx.transport.tags import (AUTH, GRAINS_TAGS, JOB_PREFIX, KEY, KEY_ACTS, KEY_ROTATE, MINION_PREFIX, SYNC_PREFIX,
                               job_cache, job_new, job_ret, job_ret_prefix, minion_prefix, minion_tag, sync_tag)

__all__ = ["AUTH", "GRAINS_TAGS", "JOB_PREFIX", "KEY", "KEY_ACTS", "KEY_ROTATE", "MINION_PREFIX", "SYNC_PREFIX",
           "job_new", "job_ret", "job_ret_prefix", "minion_prefix", "minion_tag", "sync_tag", "AuthEvent", "KeyEvent",
           "KeyRotateEvent", "JobNewEvent", "JobRetEvent", "MinionFired", "JobCacheEvent", "Event"]

@dataclass(frozen=True)
class AuthEvent:
    id: str
    status: str
    fingerprint: str

    @property
    def tag(self) -> str:
        return AUTH

    def to_wire(self) -> dict:
        return {"id": self.id, "status": self.status, "fingerprint": self.fingerprint}

    @classmethod
    def from_wire(cls, obj: Any) -> "AuthEvent":
        d = f.as_map(obj, "event")
        return cls(f.minion_id(d), f.get(d, "status", str), f.get(d, "fingerprint", str))


@dataclass(frozen=True)
class KeyEvent:
    id: str
    act: str
    fingerprint: str

    @property
    def tag(self) -> str:
        return KEY

    def to_wire(self) -> dict:
        return {"id": self.id, "act": self.act, "fingerprint": self.fingerprint}

    @classmethod
    def from_wire(cls, obj: Any) -> "KeyEvent":
        d = f.as_map(obj, "event")
        act = f.get(d, "act", str)
        if act not in KEY_ACTS:
            raise ProtocolError(f"unknown key action {act!r}", "act")
        return cls(f.minion_id(d), act, f.get(d, "fingerprint", str))


@dataclass(frozen=True)
class KeyRotateEvent:
    serial: int
    reason: str

    @property
    def tag(self) -> str:
        return KEY_ROTATE

    def to_wire(self) -> dict:
        return {"serial": self.serial, "reason": self.reason}

    @classmethod
    def from_wire(cls, obj: Any) -> "KeyRotateEvent":
        d = f.as_map(obj, "event")
        return cls(f.serial(d), f.get(d, "reason", str))


@dataclass(frozen=True)
class JobCacheEvent:
    """The job cache lost returns (`lost`: its database was deleted or replaced) or removed old jobs to stay
    within its size bound (`trimmed`); `message` says what, as the master's log does."""

    what: str
    message: str

    @property
    def tag(self) -> str:
        return job_cache(self.what)

    def to_wire(self) -> dict:
        return {"what": self.what, "message": self.message}

    @classmethod
    def from_wire(cls, obj: Any) -> "JobCacheEvent":
        d = f.as_map(obj, "event")
        return cls(f.get(d, "what", str), f.get(d, "message", str))


@dataclass(frozen=True)
class JobNewEvent:
    job: Job
    minions: list[str]

    @property
    def tag(self) -> str:
        return job_new(self.job.jid)

    def to_wire(self) -> dict:
        return {**self.job.to_wire(), "minions": self.minions}

    @classmethod
    def from_wire(cls, obj: Any) -> "JobNewEvent":
        d = f.as_map(obj, "event")
        return cls(Job.from_wire(d), f.str_list(d, "minions", ids=True))


@dataclass(frozen=True)
class JobRetEvent:
    """A stored return; the id is the authenticated minion's."""

    id: str
    ret: JobReturn

    @property
    def tag(self) -> str:
        return job_ret(self.ret.jid, self.id)

    def to_wire(self) -> dict:
        return {"id": self.id, **self.ret.to_wire()}

    @classmethod
    def from_wire(cls, obj: Any) -> "JobRetEvent":
        d = f.as_map(obj, "event")
        return cls(f.minion_id(d), JobReturn.from_wire(d))


@dataclass(frozen=True)
class MinionFired:
    """An event a minion fired, filed under its authenticated id."""

    id: str
    name: str
    data: dict

    @property
    def tag(self) -> str:
        return minion_tag(self.id, self.name)

    def to_wire(self) -> dict:
        return {**self.data, "id": self.id}

    @classmethod
    def from_event(cls, tag: str, obj: Any) -> "MinionFired":
        """Its name and id travel in the tag (`rx/minion/<id>/<name>`), so decoding takes the tag too."""
        d = f.as_map(obj, "event")
        if not tag.startswith(MINION_PREFIX):
            raise ProtocolError(f"not under {MINION_PREFIX}", "tag")
        minion_id, sep, name = tag[len(MINION_PREFIX):].partition("/")
        if not sep or not name:
            raise ProtocolError("must be rx/minion/<id>/<name>", "tag")
        if f.minion_id(d) != minion_id:
            raise ProtocolError("does not match the tag's minion id", "id")
        return cls(minion_id, name, {k: v for k, v in d.items() if k != "id"})


Event = AuthEvent | KeyEvent | KeyRotateEvent | JobNewEvent | JobRetEvent | MinionFired | JobCacheEvent
