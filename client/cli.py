"""`rx TARGET FUN [ARG ...]`: run a function on the minions a target matches.

Exit codes (DESIGN §6): 0 all returned ok; 1 a function failed; 2 usage or bad
target; 3 some minions did not return; 4 no minions matched; 5 master
unreachable, auth or permission error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

import yaml

from rx import __version__
from rx.client.local import AsyncLocalClient, BadRequest, ClientError, Published
from rx.client.output import OUTPUTTERS, render, use_color
from rx.config import ConfigError, load_master_config
from rx.transport.messages import FUN_RE

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MISSING, EXIT_NO_MATCH, EXIT_MASTER, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130

EPILOG = """exit codes:
  0    every targeted minion returned and every function succeeded
  1    a function failed on at least one minion
  2    usage error or bad target expression
  3    at least one minion did not return (3 wins over 1)
  4    the target matched no minion
  5    master unreachable, authentication or permission error
  130  interrupted (the jid is printed to look the job up later)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with a one-line message, as argparse does
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rx", description="Run an execution module function on targeted minions.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="target expression (a glob on the minion id by default)")
    p.add_argument("fun", help="function to run, as module.function")
    p.add_argument("args", nargs="*", help="arguments; key=value becomes a keyword argument (use -- before "
                                           "arguments that start with '-')")
    p.add_argument("-c", "--config-dir", help="config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-E", "--pcre", action="store_const", dest="tgt_type", const="pcre",
                   help="target is a regular expression on the id")
    g.add_argument("-L", "--list", action="store_const", dest="tgt_type", const="list",
                   help="target is a comma- or space-separated list of ids")
    p.add_argument("-t", "--timeout", type=float, help="seconds to wait for returns before probing (default 5)")
    p.add_argument("--out", choices=OUTPUTTERS, default="nested", help="output format (default nested)")
    p.add_argument("--async", dest="async_", action="store_true", help="publish, print the jid, do not wait")
    p.add_argument("-v", "--verbose", action="store_true", help="print the jid and missing minions on stderr")
    p.add_argument("--version", action="version", version=f"rx {__version__}")
    p.set_defaults(tgt_type="glob")
    return p


def parse_value(text: str) -> Any:
    """A CLI argument as a YAML scalar (so 1 is an int, true a bool); anything else stays a string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, bool, str, type(None), list, dict)) and text.strip() else text


def split_args(raw: list[str]) -> tuple[list, dict]:
    args: list = []
    kwargs: dict = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if sep and key.isidentifier():
            kwargs[key] = parse_value(value)
        else:
            args.append(parse_value(item))
    return args, kwargs


async def run(opts: argparse.Namespace) -> int:
    cfg = load_master_config(opts.config_dir)
    args, kwargs = split_args(opts.args)
    timeout = cfg.timeout if opts.timeout is None else opts.timeout
    async with AsyncLocalClient(cfg=cfg) as client:
        if opts.async_:
            jid = await client.cmd_async(opts.target, opts.fun, args, tgt_type=opts.tgt_type, kwarg=kwargs)
            print(jid)
            return EXIT_OK
        results: dict = {}
        status: dict[str, str] = {}
        published: list[Published] = []
        try:
            async for item in client.cmd_iter(opts.target, opts.fun, args, timeout=timeout, tgt_type=opts.tgt_type,
                                               kwarg=kwargs, published=published):
                if len(published) == 1 and opts.verbose and not results:
                    print(f"Executing job with jid {published[0].jid}", file=sys.stderr)
                for mid, r in item.items():
                    results[mid] = r["ret"]
                    status[mid] = "missing" if r.get("failed") else ("ok" if r.get("retcode") == 0 else "failed")
        except asyncio.CancelledError:
            jid = published[0].jid if published else None
            if jid:
                print(f"\nInterrupted. The job continues; jid {jid}. Look it up later with: "
                      f"rx-run jobs.lookup_jid {jid}", file=sys.stderr)
            return EXIT_INTERRUPTED
    if published and not published[0].minions:
        print(f"No minions matched the target {opts.target!r} ({opts.tgt_type}).", file=sys.stderr)
        if opts.out == "json":
            print("{}")
        return EXIT_NO_MATCH
    text = render(opts.out, results, color=use_color(sys.stdout), status=status)
    if text:
        print(text)
    missing = [m for m, s in status.items() if s == "missing"]
    if opts.verbose and missing:
        print(f"Did not return: {', '.join(sorted(missing))}", file=sys.stderr)
    if missing:
        return EXIT_MISSING
    if any(s == "failed" for s in status.values()):
        return EXIT_FAILED
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    opts = build_parser().parse_intermixed_args(argv)
    if not FUN_RE.match(opts.fun):
        print(f"rx: error: {opts.fun!r} is not a function name; use module.function (e.g. test.ping)",
              file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if opts.timeout is not None and opts.timeout <= 0:
        print("rx: error: -t/--timeout must be a number of seconds > 0", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    sys.exit(_run_main(opts))


def _run_main(opts: argparse.Namespace) -> int:
    async def runner() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        return await run(opts)
    try:
        return asyncio.run(runner())
    except ConfigError as exc:
        print(f"rx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BadRequest as exc:
        print(f"rx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ClientError as exc:
        print(f"rx: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    main()
