"""The recorders of the master's processes, each with the few calls its code makes: an MWorker's (jobs,
returns, auth, requests, job store writes), the supervisor's (restarts) and the event publisher's (drops).
Every call is a dict or list update (see bench/metrics_cost.py for what a return costs)."""

from __future__ import annotations

import time

from rx.master.metrics import catalog as c
from rx.master.metrics.recorder import FunLabels, Recorder, jid_time
from rx.master.metrics.shared import fold
from rx.transport.messages import JobReturn

STORED = frozenset({"success", "failed"})


class WorkerMetrics(Recorder):
    """An MWorker's counts (no directory: in memory only, as in tests and rx-run)."""

    def __init__(self, directory: str | None = None, name: str = "mworker") -> None:
        super().__init__(directory, name)
        self.fun_label = FunLabels(directory)
        self._published = self.counters["rx_jobs_published_total"]
        self._expected = self.counters["rx_job_minions_expected_total"]
        self._expected_sizes = self.histogram("rx_job_expected_minions")
        self._returns = self.counters["rx_returns_total"]
        self._latency = self.histogram("rx_return_latency_seconds")
        self._duration = self.histogram("rx_job_duration_seconds")
        self._auth = self.counters["rx_auth_attempts_total"]
        self.lanes = {lane: self.histogram("rx_request_seconds", lane) for lane in c.LANES}
        self.store_writes = {op: self.histogram("rx_job_store_write_seconds", op) for op in c.STORE_OPS}
        for outcome in c.AUTH_OUTCOMES:
            self._auth[(outcome,)] = 0

    def published(self, fun: str | list, expected: int) -> None:
        key = (self.fun_label(fun),)
        self._published[key] = self._published.get(key, 0) + 1
        self._expected[key] = self._expected.get(key, 0) + expected
        self._expected_sizes.observe(expected)

    def returned(self, ret: JobReturn, outcome: str) -> None:
        """A return and what became of it (one of catalog.RETURN_OUTCOMES); a stored one's latency from its
        job's publication and its run time on the minion."""
        key = (self.fun_label(ret.fun), outcome)
        self._returns[key] = self._returns.get(key, 0) + 1
        if outcome in STORED:
            published = jid_time(ret.jid)
            if published is not None:
                latency = time.time() - published
                if latency >= 0:
                    self._latency.observe(latency)
            if ret.start_time is not None and ret.end_time is not None and ret.end_time >= ret.start_time:
                self._duration.observe(ret.end_time - ret.start_time)

    def auth(self, outcome: str) -> None:
        key = (outcome,)
        self._auth[key] = self._auth.get(key, 0) + 1


def return_outcome(ret: JobReturn) -> str:
    return "success" if ret.success and ret.retcode == 0 else "failed"


class SupervisorMetrics(Recorder):
    """The supervisor counts its children's restarts, and folds a dead child's snapshot into the retired one."""

    def __init__(self, directory: str | None, children: list[str]) -> None:
        super().__init__(directory, "supervisor")
        self._restarts = self.counters["rx_master_child_restarts_total"]
        for name in children:
            self._restarts[(name,)] = 0
        self.flush()

    def died(self, child: str, pid: int) -> None:
        key = (child,)
        self._restarts[key] = self._restarts.get(key, 0) + 1
        if self.directory is not None:
            try:
                fold(self.directory, child, pid)
            except OSError:
                pass  # the directory is gone: the master is stopping
        self.flush()


class EventBusMetrics(Recorder):
    """The event publisher's: events some subscriber missed."""

    def __init__(self, directory: str | None) -> None:
        super().__init__(directory, "event-publisher")
        self.counters["rx_event_bus_dropped_total"][()] = 0
        self.flush()

    def dropped(self, n: int) -> None:
        self.inc("rx_event_bus_dropped_total", amount=n)
        self.flush()
