"""rx's bus events under Salt's tag names and data fields (`salt_event_tags: true`), for tools written
against salt-api's event stream (reactor-like scripts, web UIs).  Pure: a table of (tag pattern, translator),
each translator a function of the rx event and the time rx-api received it (Salt's `_stamp`).

  rx/job/<jid>/new        salt/job/<jid>/new        jid, tgt, tgt_type, user, fun, arg, minions, missing, _stamp
  rx/job/<jid>/ret/<id>   salt/job/<jid>/ret/<id>   cmd, id, jid, fun, fun_args, return, retcode, success, _stamp
  rx/auth                 salt/auth                 result, act (accept, pend, reject, denied), id, _stamp
  rx/key                  salt/key                  result, act (accept, reject, delete; pend, denied), id, _stamp
  rx/minion/<id>/start    salt/minion/<id>/start    Salt's _minion_event: id, cmd, pretag, tag, data, _stamp
  rx/minion/<id>/<name>   salt/minion/<id>/<name>   the same, `data` being what the minion fired
  rx/netapi/hook/<path>   salt/netapi/hook/<path>   the data as fired, with _stamp
  anything else           unchanged                 the data with _stamp

What Salt has and rx's bus does not carry: `salt/auth`'s `pub` (the minion's public key; rx's event has its
fingerprint, given as `fingerprint`), a job's `missing` (always []), a return's `out`.  Kwargs travel in
`arg` as Salt's trailing `{"__kwarg__": true, ...}`.
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Any, Callable

Translator = Callable[[re.Match, dict, float], tuple[str, dict]]

AUTH_ACTS = {"accepted": ("accept", True), "pending": ("pend", True), "rejected": ("reject", False),
             "denied": ("denied", False)}
"""rx's auth status -> Salt's `act` and `result` of salt/auth."""
KEY_ACTS = {"accept": "accept", "reject": "reject", "delete": "delete", "evict": "delete", "pending": "pend",
            "denied": "denied"}
"""rx's key action -> Salt's `act` of salt/key (an evicted pending key is deleted)."""


def stamp(ts: float) -> str:
    """Salt's `_stamp`: the UTC time, ISO 8601 without a zone, in microseconds."""
    when = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).replace(tzinfo=None)
    return when.isoformat(timespec="microseconds")


def _job_new(m: re.Match, d: dict, ts: float) -> tuple[str, dict]:
    jid = m["jid"]
    arg = d.get("arg", [])
    kwarg = d.get("kwarg") or {}
    if isinstance(arg, list) and isinstance(kwarg, dict) and kwarg and isinstance(d.get("fun"), str):
        arg = [*arg, {"__kwarg__": True, **kwarg}]
    return f"salt/job/{jid}/new", {"jid": d.get("jid", jid), "tgt_type": d.get("tgt_type", "glob"),
                                   "tgt": d.get("tgt", ""), "user": d.get("user", ""), "fun": d.get("fun", ""),
                                   "arg": arg, "minions": d.get("minions", []), "missing": [], "_stamp": stamp(ts)}


def _job_ret(m: re.Match, d: dict, ts: float) -> tuple[str, dict]:
    return f"salt/job/{m['jid']}/ret/{m['id']}", {
        "cmd": "_return", "id": d.get("id", m["id"]), "jid": d.get("jid", m["jid"]), "fun": d.get("fun", ""),
        "fun_args": d.get("fun_args", []), "return": d.get("return"), "retcode": d.get("retcode", 0),
        "success": d.get("success", False), "_stamp": stamp(ts)}


def _auth(m: re.Match, d: dict, ts: float) -> tuple[str, dict]:
    act, result = AUTH_ACTS.get(d.get("status", ""), (d.get("status", ""), False))
    return "salt/auth", {"result": result, "act": act, "id": d.get("id", ""), "fingerprint": d.get("fingerprint", ""),
                         "_stamp": stamp(ts)}


def _key(m: re.Match, d: dict, ts: float) -> tuple[str, dict]:
    act = d.get("act", "")
    return "salt/key", {"result": True, "act": KEY_ACTS.get(act, act), "id": d.get("id", ""), "_stamp": stamp(ts)}


def _minion_event(m: re.Match, d: dict, ts: float) -> tuple[str, dict]:
    minion_id, name = m["id"], m["name"]
    tag = f"salt/minion/{minion_id}/{name}"
    out: dict[str, Any] = {"id": minion_id, "cmd": "_minion_event", "pretag": None, "tag": tag}
    if name == "start":
        out["data"] = f"Minion {minion_id} started at {time.asctime(time.gmtime(ts))}"
        if isinstance(d.get("grains"), dict):
            out["grains"] = d["grains"]
    else:
        out["data"] = {k: v for k, v in d.items() if k != "id"}
    out["_stamp"] = stamp(ts)
    return tag, out


def _hook(m: re.Match, d: dict, ts: float) -> tuple[str, dict]:
    return f"salt/netapi/hook/{m['path']}", {**d, "_stamp": stamp(ts)}


TABLE: tuple[tuple[re.Pattern, Translator], ...] = (
    (re.compile(r"rx/job/(?P<jid>[^/]+)/new"), _job_new),
    (re.compile(r"rx/job/(?P<jid>[^/]+)/ret/(?P<id>[^/]+)"), _job_ret),
    (re.compile(r"rx/auth"), _auth),
    (re.compile(r"rx/key"), _key),
    (re.compile(r"rx/minion/(?P<id>[^/]+)/(?P<name>.+)"), _minion_event),
    (re.compile(r"rx/netapi/hook/(?P<path>.+)"), _hook),
)


def to_salt(tag: str, data: dict, ts: float) -> tuple[str, dict]:
    """The (tag, data) Salt would have fired for rx's event `tag`/`data`, received at `ts` (epoch seconds)."""
    for pattern, translate in TABLE:
        m = pattern.fullmatch(tag)
        if m:
            return translate(m, data, ts)
    return tag, data if "_stamp" in data else {**data, "_stamp": stamp(ts)}
