"""`rx-run jobs.lookup_jid JID` and `rx-run jobs.list_jobs`: the master's job store, through its
job service (works whether or not the master runs, whatever the store backend)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from rx import __version__
from rx.client.cli import ALLOW_CONTROL_HELP
from rx.client.output import OUTPUTTERS, render, use_color
from rx.client.results import EXIT_MASTER_ERROR
from rx.config import ConfigError, load_master_config
from rx.master.services import ReturnsLost, StoreError, UnknownJob, open_services
from rx.master.services.jobs import JobService

RUNNERS = ("jobs.lookup_jid", "jobs.list_jobs")


async def _call(jobs: JobService, fun: str, jid: str | None) -> Any:
    if fun == "jobs.list_jobs":
        return await jobs.list_jobs()
    return await jobs.lookup_jid(jid or "")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="rx-run", description="Master-side functions: look up jobs.")
    p.add_argument("-c", "--config-dir", help="config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    p.add_argument("--out", choices=OUTPUTTERS, default="nested")
    p.add_argument("--allow-control-chars", action="store_true", help=ALLOW_CONTROL_HELP)
    p.add_argument("--version", action="version", version=f"rx-run {__version__}")
    p.add_argument("fun", choices=RUNNERS)
    p.add_argument("jid", nargs="?")
    opts = p.parse_args(argv)
    if opts.fun == "jobs.lookup_jid" and not opts.jid:
        p.error("jobs.lookup_jid needs a JID")
    try:
        services = open_services(load_master_config(opts.config_dir))
        try:
            data = asyncio.run(_call(services.jobs, opts.fun, opts.jid))
        finally:
            services.close()
    except ConfigError as exc:
        print(f"rx-run: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except UnknownJob:
        print(f"rx-run: error: no job {opts.jid!r} in the job cache", file=sys.stderr)
        sys.exit(2)
    except ReturnsLost as exc:
        print(render(opts.out, exc.partial, color=use_color(sys.stdout), escape=not opts.allow_control_chars))
        print(f"rx-run: error: {exc}; see the master's log", file=sys.stderr)
        sys.exit(3)
    except PermissionError as exc:
        print(f"rx-run: error: permission denied: {exc.filename}: run as the master's user", file=sys.stderr)
        sys.exit(5)
    except StoreError as exc:
        print(f"rx-run: error: the job store cannot be read: {exc}", file=sys.stderr)
        sys.exit(EXIT_MASTER_ERROR)
    print(render(opts.out, data, color=use_color(sys.stdout), escape=not opts.allow_control_chars))


if __name__ == "__main__":
    main()
