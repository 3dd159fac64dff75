"""CI smoke run of the returns benchmark (bench/returns.py): a generator process authenticates 20
minions once, seals their returns to jobs the master published, and sends them as fast as the master
takes them, then paced.  Every return must be stored, acknowledged and seen on the bus; nothing lost,
nothing refused.  Correctness only: the rates and CPU figures are the benchmark's business."""

from __future__ import annotations

from rx.bench.returns import measure

N = 20


def test_returns_bench_stores_every_return(sandbox):
    sandbox.start_master()
    for rate, jobs in ((0.0, 3), (400.0, 2)):
        r = measure(sandbox, N, jobs, rate=rate)
        assert (r["sent"], r["stored"], r["acked"], r["events"]) == (N * jobs,) * 4
        assert r["lost"] == 0 and r["unfinished"] == 0 and r["refused"] == {} and r["duplicate"] == 0
        assert r["master_cpu_s"] >= 0 and set(r["master_cpu_by_process"]) >= {"rx-mworker-0", "rx-requests"}


def test_return_cost_parts_run():
    """bench/return_cost.py: the worker's in-process handling stores every return it is given (it raises
    otherwise), and the hand-off echo answers every request."""
    from rx.bench.return_cost import handoff, worker_python
    assert worker_python(4, returns=40, minions=10) > 0
    assert handoff(1, round_trips=50) >= 0 and handoff(8, round_trips=64) >= 0
