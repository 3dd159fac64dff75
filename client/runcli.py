"""`rx-run RUNNER [ARG ...] [key=value ...]`: master-side functions (the `jobs` runner in
`client/jobs_runner.py`), through the master's services (works whether or not the master runs, whatever
the store backend; `jobs.active` asks the minions through the running master).  Arguments are Salt's:
positional ones are strings, `key=value` values are read as YAML (`missing=True`, `search_function='[a, b]'`)."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
from typing import Any

import yaml

from rx import __version__
from rx.client.cli import ALLOW_CONTROL_HELP
from rx.client.jobs_runner import RUNNERS, Outcome, RunnerContext, RunnerUsage
from rx.client.output import OUTPUTTERS, render, use_color
from rx.client.results import EXIT_MASTER_ERROR, EXIT_USAGE, ClientError
from rx.config import ConfigError, load_master_config
from rx.master.services import ReturnsLost, StoreError, UnknownJob, open_services


def split_args(words: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Positional arguments (strings) and `key=value` ones (values read as YAML, like Salt's)."""
    args: list[str] = []
    kwargs: dict[str, Any] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if eq and key.isidentifier():
            try:
                kwargs[key] = yaml.safe_load(value) if value else ""
            except yaml.YAMLError:
                kwargs[key] = value
        else:
            args.append(word)
    return args, kwargs


def check_call(fun: str, args: list[str], kwargs: dict[str, Any]) -> None:
    """RunnerUsage naming what the runner takes, before anything is opened."""
    runner = RUNNERS[fun]
    try:
        inspect.signature(runner).bind(None, *args, **kwargs)
    except TypeError as exc:
        params = [p for p in list(inspect.signature(runner).parameters.values())[1:]]
        usage = " ".join(p.name.upper() if p.default is p.empty else f"[{p.name}=...]" for p in params)
        raise RunnerUsage(f"{fun}: {exc}; usage: rx-run {fun} {usage}".rstrip()) from None


async def _call(cfg: Any, fun: str, args: list[str], kwargs: dict[str, Any]) -> Outcome:
    services = open_services(cfg)
    try:
        return await RUNNERS[fun](RunnerContext(services, cfg), *args, **kwargs)
    finally:
        await services.stores.aclose()
        services.events.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="rx-run", description="Master-side functions: " + ", ".join(sorted(RUNNERS)),
                                epilog="e.g. rx-run jobs.list_jobs search_function='test.*' limit=10; "
                                       "rx-run jobs.lookup_jid 20240102030405060700 missing=True")
    p.add_argument("-c", "--config-dir", help="config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    p.add_argument("--out", choices=OUTPUTTERS, default="nested")
    p.add_argument("--allow-control-chars", action="store_true", help=ALLOW_CONTROL_HELP)
    p.add_argument("--version", action="version", version=f"rx-run {__version__}")
    p.add_argument("fun", metavar="RUNNER", choices=sorted(RUNNERS), help="one of: " + ", ".join(sorted(RUNNERS)))
    p.add_argument("arg", nargs="*", help="arguments: positional, then key=value")
    opts = p.parse_args(argv)
    args, kwargs = split_args(opts.arg)

    def show(data: Any) -> None:
        shown = data if isinstance(data, dict) else {opts.fun: data}
        print(render(opts.out, shown, color=use_color(sys.stdout), escape=not opts.allow_control_chars))

    try:
        check_call(opts.fun, args, kwargs)
        outcome = asyncio.run(_call(load_master_config(opts.config_dir), opts.fun, args, kwargs))
    except (RunnerUsage, ConfigError) as exc:
        print(f"rx-run: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except UnknownJob:
        jid = kwargs.get("jid", args[0] if args else "")
        print(f"rx-run: error: no job {jid!r} in the job cache", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except ReturnsLost as exc:
        show(exc.partial)
        print(f"rx-run: error: {exc}; see the master's log", file=sys.stderr)
        sys.exit(3)
    except PermissionError as exc:
        print(f"rx-run: error: permission denied: {exc.filename}: run as the master's user", file=sys.stderr)
        sys.exit(5)
    except StoreError as exc:
        print(f"rx-run: error: the job store cannot be read: {exc}", file=sys.stderr)
        sys.exit(EXIT_MASTER_ERROR)
    except ClientError as exc:  # jobs.active: the master could not be asked
        print(f"rx-run: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    show(outcome.data)
    sys.exit(outcome.exit_code)


if __name__ == "__main__":
    main()
