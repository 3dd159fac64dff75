"""`rx-run jobs.lookup_jid JID` and `rx-run jobs.list_jobs`: read the master's job cache."""

from __future__ import annotations

import argparse
import sys

from rx import __version__
from rx.client.output import OUTPUTTERS, render, use_color
from rx.config import ConfigError, load_master_config
from rx.master.jobcache import JobCache, UnknownJob

RUNNERS = ("jobs.lookup_jid", "jobs.list_jobs")
INTERNAL_FUNS = ("jobs.find",)
"""The clients' own find_job probes: not listed as jobs."""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="rx-run", description="Master-side functions: look up jobs.")
    p.add_argument("-c", "--config-dir", help="config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    p.add_argument("--out", choices=OUTPUTTERS, default="nested")
    p.add_argument("--version", action="version", version=f"rx-run {__version__}")
    p.add_argument("fun", choices=RUNNERS)
    p.add_argument("jid", nargs="?")
    opts = p.parse_args(argv)
    try:
        cache = JobCache(load_master_config(opts.config_dir).jobs_dir)
        if opts.fun == "jobs.list_jobs":
            jobs = {}
            for jid in cache.jids():
                load = cache.load(jid)
                if load["load"]["fun"] in INTERNAL_FUNS:
                    continue
                jobs[jid] = {"fun": load["load"]["fun"], "target": load["load"]["tgt"],
                            "minions": len(load["minions"])}
            data = jobs
        else:
            if not opts.jid:
                p.error("jobs.lookup_jid needs a JID")
            data = {mid: r.get("return") for mid, r in cache.returns(opts.jid).items()}
    except ConfigError as exc:
        print(f"rx-run: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (UnknownJob, FileNotFoundError):
        print(f"rx-run: error: no job {opts.jid!r} in the job cache", file=sys.stderr)
        sys.exit(2)
    except PermissionError as exc:
        print(f"rx-run: error: permission denied: {exc.filename}: run as the master's user", file=sys.stderr)
        sys.exit(5)
    print(render(opts.out, data, color=use_color(sys.stdout)))


if __name__ == "__main__":
    main()
