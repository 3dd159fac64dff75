"""The one sandbox harness shared by the integration tests, the benchmarks (bench/) and `make demo`.

`procs`: free ports, polling, process trees, memory and CPU; `daemon`: the daemon
process wrapper; `sandbox`: a master and minions under one root_dir; `demo`: the
`make demo` entry point.  Import as `tests.support.<module>` with the checkout root
on sys.path (pytest's `pythonpath`, or `python -m ...` run from the checkout).
"""
