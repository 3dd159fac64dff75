"""Every metric the master exports, declared once: name, kind, labels (with their bounded values), buckets
and meaning.  The recorders, the exposition and docs/metrics.md (`python -m rx.master.metrics --markdown`)
all come from here.

No label names a jid or a minion id.  `fun` is bounded: the first MAX_FUN_LABELS function names the master
sees (across all its processes) are labels, every later one is counted as `other`, a job of several
functions (Salt's compound job) as `compound`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COUNTER, HISTOGRAM, GAUGE = "counter", "histogram", "gauge"

MAX_FUN_LABELS = 200
"""Distinct `fun` label values (not counting `other` and `compound`)."""
MAX_FUN_LABEL_CHARS = 128
"""A longer function name is counted as `other`."""
OTHER, COMPOUND = "other", "compound"

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Work inside the master: 100 µs to 5 s."""
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""Jobs on minions: 5 ms to an hour."""
SIZE_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)

RETURN_OUTCOMES = ("success", "failed", "duplicate", "not_targeted", "unknown_job", "unavailable")
AUTH_OUTCOMES = ("accepted", "pending", "rejected", "denied", "invalid", "error")
LANES = ("local", "sealed", "clear")
STORE_OPS = ("create_job", "store_return")
KEY_STATES = ("accepted", "pending", "rejected", "denied")


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str
    doc: str
    labels: tuple[str, ...] = ()
    values: dict[str, str] = field(default_factory=dict)
    """label -> its possible values, in words (for the docs)"""
    buckets: tuple[float, ...] = ()
    source: str = ""
    """which process counts it (for the docs)"""
    fixed: tuple[tuple[str, ...], ...] = ()
    """label values always exported (at 0 until counted), so a series exists before its first event"""
    optional: bool = False
    """exported only when a process counts it (it depends on a setting)"""


FUN = (f"the job's function (`test.ping`), bounded: the first {MAX_FUN_LABELS} names the master sees are labels, "
       f"later ones are counted as `other` (so are names over {MAX_FUN_LABEL_CHARS} characters); a job of several "
       "functions is `compound`")

SPECS: tuple[Spec, ...] = (
    Spec("rx_jobs_published_total", COUNTER, "Jobs published (the clients' find_job probes, `jobs.find`, included).",
         ("fun",), {"fun": FUN}, source="MWorkers"),
    Spec("rx_job_minions_expected_total", COUNTER,
         "Minions expected to return, summed over the jobs published: compare with rx_returns_total "
         "(success + failed) for the returns that did not come.", ("fun",), {"fun": FUN}, source="MWorkers"),
    Spec("rx_job_expected_minions", HISTOGRAM, "Minions each published job expected.",
         buckets=SIZE_BUCKETS, source="MWorkers"),
    Spec("rx_returns_total", COUNTER, "Returns minions sent, by what became of them.", ("fun", "outcome"),
         {"fun": FUN, "outcome": "`success` (stored; the function succeeded, retcode 0), `failed` (stored; "
                                 "it did not), `duplicate` (one was already stored for this job and minion), "
                                 "`not_targeted` (refused: the job did not target this minion), `unknown_job` "
                                 "(refused: no such job), `unavailable` (the job store failed; the minion retries)"},
         source="MWorkers"),
    Spec("rx_return_latency_seconds", HISTOGRAM,
         "From a job's publication (the time in its jid) to the master receiving a stored return of it.",
         buckets=JOB_BUCKETS, source="MWorkers"),
    Spec("rx_job_duration_seconds", HISTOGRAM,
         "How long a job ran on its minion (the start and end times in a stored return, the minion's clock).",
         buckets=JOB_BUCKETS, source="MWorkers"),
    Spec("rx_minions_connected", GAUGE,
         "Accepted minions holding a verified connection to the publish port now (presence, as "
         "`rx-run manage.present`); accepted minus connected is down.", source="scrape (presence store)"),
    Spec("rx_master_up", GAUGE, "1 while the master runs (its pidfile names a live process), else 0.",
         source="scrape (pidfile)"),
    Spec("rx_keys", GAUGE, "Minion keys by state.", ("state",), {"state": ", ".join(f"`{s}`" for s in KEY_STATES)},
         source="scrape (key store)", fixed=tuple((s,) for s in KEY_STATES)),
    Spec("rx_auth_attempts_total", COUNTER, "Minions' `_auth` requests, by their answer.", ("outcome",),
         {"outcome": "the key's state `accepted`, `pending`, `rejected`, `denied` (a different key for a known "
                     "id); `invalid` (bad signature, stale or replayed request), `error` (the key could not be "
                     "filed)"},
         source="MWorkers", fixed=tuple((o,) for o in AUTH_OUTCOMES)),
    Spec("rx_request_seconds", HISTOGRAM,
         "Time an MWorker took to answer a request, from taking it out of its lane to its reply encoded (returns "
         "answered together share their batch's time equally).",
         ("lane",), {"lane": "`local` (the operator's socket: publish, lookup), `sealed` (minions: returns, "
                             "events, files), `clear` (`_auth`)"},
         buckets=LATENCY_BUCKETS, source="MWorkers", fixed=tuple((lane,) for lane in LANES)),
    Spec("rx_master_child_restarts_total", COUNTER,
         "Master child processes that died and were restarted by the supervisor.", ("child",),
         {"child": "`event-publisher`, `publisher`, `request-server`, `mworker-N` (N < worker_processes), "
                   "`maintenance`, `metrics`"}, source="supervisor"),
    Spec("rx_event_bus_dropped_total", COUNTER,
         "Events some subscriber of the master's event bus missed: its queue was full (it does not read). "
         "Only with `metrics_event_drops: true` (absent otherwise: counting costs the relay ~6 µs an event).",
         source="event publisher", optional=True),
    Spec("rx_job_store_write_seconds", HISTOGRAM, "Time a job store write took, as an MWorker waited for it "
         "(returns stored with one write share its time equally).",
         ("op",), {"op": "`create_job` (a published job's record), `store_return` (a minion's return)"},
         buckets=LATENCY_BUCKETS, source="MWorkers", fixed=tuple((op,) for op in STORE_OPS)),
)

BY_NAME = {s.name: s for s in SPECS}


def reference_markdown() -> str:
    """docs/metrics.md."""
    out = ["# Metrics reference", "",
           "Generated from `master/metrics/catalog.py` by `make docs` "
           "(`python -m rx.master.metrics --markdown`); do not edit.", "",
           "Served at `GET /metrics` in Prometheus's text format by the master when `metrics_port` is set "
           "(bound to `metrics_interface`, 127.0.0.1 by default; see README, Metrics). Counters start at 0 when "
           "the master starts.", "",
           "| name | type | labels | meaning | counted by |", "|---|---|---|---|---|"]
    for s in SPECS:
        out.append(f"| `{s.name}` | {s.kind} | {', '.join(f'`{lb}`' for lb in s.labels) or '-'} | {s.doc} | "
                   f"{s.source} |")
    out += ["", "## Labels", ""]
    for s in SPECS:
        for label, values in s.values.items():
            out.append(f"- `{s.name}` `{label}`: {values}")
    out += ["", "## Buckets", ""]
    for s in SPECS:
        if s.kind == HISTOGRAM:
            out.append(f"- `{s.name}`: {', '.join(f'{b:g}' for b in s.buckets)}, +Inf")
    return "\n".join(out) + "\n"
