"""Issue 15's targets that are not on the return path (bench/returns.py has those two), as rows of the
Targets table in RESULTS.md: each row is computed from the figures of results.json, or says why the
figure is missing (a size this machine cannot hold is said with the limit that stops it)."""

from __future__ import annotations

from typing import Any

SWARM_10K_S = 2.0
SWARM_50K_S = 10.0
MASTER_RSS_10K_MB, MASTER_PSS_10K_MB = 400.0, 300.0
COLD_AUTH_10K_S = 5.0
RECONNECT_10K_S = 30.0
MINION_RSS_MB = 25.0
RATIO_10, RATIO_50 = 1 / 10, 1 / 20
VERSION_S, CALL_LOCAL_S = 0.045, 0.060
FDS_PER_MINION_ON_MASTER = 1
"""A connected minion holds one TCP connection in each of the master's publisher and request-server
processes (each process has its own RLIMIT_NOFILE)."""


def lookup(r: dict, *path: str) -> Any:
    """r[path[0]][path[1]]..., or None where a step is missing."""
    cur: Any = r
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _row(target: str, measured: str | None, met: bool | None) -> dict:
    return {"target": f"{target} (issue 15)", "measured": measured or "not measured", "met": met}


def _swarm_row(r: dict, n: int, limit: float) -> dict:
    s = lookup(r, "swarm", str(n))
    target = f"{n:,} swarm minions, all test.ping returns <= {limit:g} s, 0 lost, catch-up watcher on"
    if s and s.get("ping_s") is not None:
        if not s.get("catch_up"):
            return _row(target, f"{s['ping_s']:.2f}s, {s['lost']} lost, measured with the watcher off", None)
        return _row(target, f"{s['ping_s']:.2f}s, {s['lost']} lost", s["ping_s"] <= limit and s["lost"] == 0)
    nofile = (lookup(r, "machine", "nofile") or [None, None])[1]
    if nofile and n * FDS_PER_MINION_ON_MASTER > nofile:
        return _row(target, f"not run: the master's publisher and request server need >= "
                            f"{n * FDS_PER_MINION_ON_MASTER:,} descriptors each, this machine's hard "
                            f"RLIMIT_NOFILE is {nofile:,}", None)
    return _row(target, None, None)


def target_rows(r: dict) -> list[dict]:
    """The rows, in the issue's order."""
    rows = [_swarm_row(r, 10_000, SWARM_10K_S), _swarm_row(r, 50_000, SWARM_50K_S)]
    mc = lookup(r, "swarm", "10000", "master_connected")
    zf = lookup(r, "zmq_floor", "kb_per_minion")
    rows.append(_row(f"master RSS with 10,000 minions connected <= {MASTER_RSS_10K_MB:.0f} MB "
                     f"(PSS <= {MASTER_PSS_10K_MB:.0f} MB)",
                     mc and f"{mc['rss_mb']:.0f} MB RSS, {mc['pss_mb']:.0f} MB PSS" + (
                         f"; libzmq alone holds {zf:.1f} KB per minion (bench/zmq_floor.py): "
                         f"{zf * 10_000 / 1024:.0f} MB at 10,000" if zf else ""),
                     None if not mc else mc["rss_mb"] <= MASTER_RSS_10K_MB and mc["pss_mb"] <= MASTER_PSS_10K_MB))
    auth = lookup(r, "swarm", "10000", "storm_s")
    rows.append(_row(f"cold auth of 10,000 minions <= {COLD_AUTH_10K_S:g} s", auth and f"{auth:.1f}s",
                     None if auth is None else auth <= COLD_AUTH_10K_S))
    rc = lookup(r, "swarm", "10000", "reconnect")
    if rc and rc.get("all_answer_s") is None:
        measured = f"not all answered: {rc['last_returned']:,} in the last of {rc['pings']} pings"
    else:
        measured = rc and (f"{rc['all_answer_s']:.1f}s ({rc['pings']} pings), master {rc['master_rss_mb']:.0f} MB RSS "
                           f"then, {rc['master_peak_rss_mb']:.0f} MB at most")
    rows.append(_row(f"reconnect storm: master restarted with 10,000 minions connected, all answer <= "
                     f"{RECONNECT_10K_S:g} s", measured,
                     None if not rc else rc.get("all_answer_s") is not None and rc["all_answer_s"] <= RECONNECT_10K_S))
    rss, pss = lookup(r, "real", "10", "minion_rss_mb_median"), lookup(r, "real", "10", "minion_pss_mb_median")
    floor = lookup(r, "startup", "floor_libraries", "rss_mb")
    code = lookup(r, "startup", "floor_minion_code", "rss_mb")
    rows.append(_row(f"idle rx-minion RSS <= {MINION_RSS_MB:g} MB",
                     rss and f"{rss:.1f} MB RSS ({pss:.1f} MB PSS)" + (
                         f"; its libraries alone: {floor:.1f} MB RSS" if floor else "") + (
                         f", with its modules imported: {code:.1f} MB" if code else ""),
                     None if rss is None else rss <= MINION_RSS_MB))
    for n, ratio in (("10", RATIO_10), ("50", RATIO_50)):
        a, b = lookup(r, "real", n, "ping_s"), lookup(r, "salt", "sizes", n, "ping_s")
        libs = lookup(r, "startup", "cli_libraries", "s")
        rows.append(_row(f"`rx '*' test.ping`, {n} real minions <= 1/{1 / ratio:.0f} of Salt 3007's time",
                         a and b and f"{a:.3f}s vs {b:.3f}s = 1/{b / a:.1f}" + (
                             f"; Python importing the libraries the CLI needs, nothing else: {libs:.3f}s, "
                             f"1/{b / libs:.1f}" if libs else ""), None if not (a and b) else a / b <= ratio))
    for key, label, limit in (("rx_version", "`rx --version`", VERSION_S),
                              ("rx_call_ping", "`rx-call --local test.ping`", CALL_LOCAL_S)):
        v = lookup(r, "startup", key, "s")
        rows.append(_row(f"{label} <= {limit:.3f} s", v and f"{v:.3f}s", None if v is None else v <= limit))
    return rows
