"""The WebSocket feed's `format_events` form, as salt-api's rest_cherrypy computes it (pure): instead of
each event, a running summary of jobs and minions, sent as bare JSON after the events that changed it:

  {"jobs": {jid: {"jid", "start_time", "minions": {id: {"success", "return", "retcode"}}, "fun", "tgt",
                  "tgt_type", "state": "running" | "complete"}}}
  {"minions": [{"id": ..., "grains": {...}}, ...]}

Jobs come from salt/job/<jid>/new and .../ret/<id> events, minions from salt/key (accept adds, delete
removes) and from the returns of `grains.items` (which fill `grains`).  Unlike Salt, rx-api keeps only the
last MAX_JOBS jobs (Salt's view grows for as long as the socket is open) and does not run `grains.items` on
every minion when a client connects (a read-only stream publishes no job); a client that wants grains runs
it itself.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

MAX_JOBS = 100


class FormattedView:
    """One WebSocket client's summary; `update` takes Salt-shaped events and says what to send."""

    def __init__(self, max_jobs: int = MAX_JOBS) -> None:
        self.max_jobs = max_jobs
        self.jobs: OrderedDict[str, dict] = OrderedDict()
        self.minions: dict[str, dict] = {}

    def update(self, events: list[tuple[str, dict]]) -> list[dict]:
        """Apply a batch of (tag, data) events; the messages to send (at most one of each kind, the latest)."""
        jobs = minions = False
        for tag, data in events:
            parts = tag.split("/")
            if len(parts) >= 4 and parts[:2] == ["salt", "job"] and parts[3] == "new":
                self._new_job(data)
                jobs = True
                if data.get("fun") == "grains.items":
                    self.minions = {}
            elif len(parts) == 5 and parts[:2] == ["salt", "job"] and parts[3] == "ret":
                self._return(parts[2], parts[4], data)
                jobs = True
                if data.get("fun") == "grains.items":
                    self.minions.setdefault(parts[4], {})["grains"] = data.get("return")
                    minions = True
            elif tag == "salt/key":
                minions |= self._key(data)
        out: list[dict] = []
        if jobs:
            out.append({"jobs": dict(self.jobs)})
        if minions:
            out.append({"minions": [{**info, "id": mid} for mid, info in self.minions.items()]})
        return out

    def _job(self, jid: str) -> dict:
        job = self.jobs.get(jid)
        if job is None:
            job = self.jobs[jid] = {}
            while len(self.jobs) > self.max_jobs:
                self.jobs.popitem(last=False)
        return job

    def _new_job(self, data: dict) -> None:
        jid = str(data.get("jid", ""))
        job = self._job(jid)
        job.update({"jid": jid, "start_time": data.get("_stamp"), "fun": data.get("fun"), "tgt": data.get("tgt"),
                    "tgt_type": data.get("tgt_type"), "state": "running",
                    "minions": {m: {"success": False} for m in data.get("minions", []) if isinstance(m, str)}})

    def _return(self, jid: str, minion_id: str, data: dict) -> None:
        job = self._job(jid)
        minion: dict[str, Any] = job.setdefault("minions", {}).setdefault(minion_id, {})
        minion.update({"return": data.get("return"), "retcode": data.get("retcode"), "success": data.get("success")})
        if all(m.get("success") for m in job["minions"].values()):
            job["state"] = "complete"

    def _key(self, data: dict) -> bool:
        mid, act = data.get("id"), data.get("act")
        if not isinstance(mid, str):
            return False
        if act == "delete":
            self.minions.pop(mid, None)
        elif act == "accept":
            self.minions.setdefault(mid, {})
        else:
            return False
        return True
