"""`rx-run FUN [ARG ...] [key=value ...]`: run a runner on the master host (Salt's salt-run).

Runners are listed and documented by `rx-run -d [PATTERN]`; they are loaded through allow-lists
(rx.client.runnerload).  Options may come anywhere on the line; words after `--` are the runner's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from rx import __version__
from rx.client.cli import ALLOW_CONTROL_HELP
from rx.client.cliargs import LOG_LEVELS, add_no_parse, cli_words, no_parse_names, split_args
from rx.client.output import OUTPUTTERS, render_value, use_color
from rx.client.results import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_MASTER, EXIT_MASTER_ERROR, EXIT_MISSING, EXIT_OK,
                               EXIT_USAGE, BadRequest, ClientError)
from rx.runners import EXIT_NEEDS_CONFIRMATION

EXIT_CODES = {
    EXIT_OK: "the runner ran and succeeded",
    EXIT_FAILED: "the runner failed (its error is on stderr)",
    EXIT_USAGE: "usage error: unknown runner (close matches are named), wrong arguments (the signature is shown), "
                "bad input, unknown job",
    EXIT_MISSING: "jobs.lookup_jid: some of the job's returns may be lost (the job cache was re-created)",
    EXIT_MASTER: "the master is not running or cannot be reached, or permission denied (run as the master's user)",
    EXIT_MASTER_ERROR: "the master or its job store failed (see its log)",
    EXIT_NEEDS_CONFIRMATION: "refused: the runner would change state (e.g. manage.down removekeys=True) and needs "
                             "-y/--yes",
    EXIT_INTERRUPTED: "interrupted",
}
EPILOG = """examples:
  rx-run manage.up                          minions answering test.ping
  rx-run manage.present                     minions connected now (no ping)
  rx-run manage.down removekeys=True -y     remove the keys of minions not answering
  rx-run state.event 'rx/job/*' count=2     print the next 2 job events (tag<TAB>json)
  rx-run event.send myapp/deployed '{version: 42}'
  rx-run --async manage.versions            run in the background; the jid is printed
  rx-run -d manage                          documentation of the manage runners

exit codes:
""" + "".join(f"  {code:<5}{meaning}\n" for code, meaning in EXIT_CODES.items())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rx-run", usage="rx-run [options] FUN [ARG ...] [key=value ...]",
                                description="Run a runner (a master-side function) on the master host, as the "
                                            "master's user.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fun", nargs="?", help="the runner, module.function (rx-run -d lists them)")
    p.add_argument("args", nargs="*", help="arguments; key=value becomes a keyword argument; values are YAML "
                                           "scalars (1 is an int, true a bool) unless --no-parse")
    p.add_argument("-c", "--config-dir", help="config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    p.add_argument("-t", "--timeout", type=float, help="seconds runners that wait may wait: the ping of manage.up/"
                                                       "down/status/versions, how long event.watch watches")
    p.add_argument("-y", "--yes", action="store_true", help="agree beforehand to what the runner changes "
                                                            "(manage.down removekeys=True removes keys)")
    p.add_argument("--async", dest="async_", action="store_true",
                   help="run in the background: print the jid at once; the return goes to the job store "
                        "(rx-run jobs.lookup_jid JID)")
    p.add_argument("-d", "--doc", action="store_true", help="show the documentation of FUN, or of every runner "
                                                            "matching it (e.g. 'manage' or 'event.*')")
    p.add_argument("--out", "--output", choices=OUTPUTTERS, default="nested", help="output format (default nested)")
    p.add_argument("--out-indent", type=int, help="indent of json output (-1: one line)")
    p.add_argument("--no-color", action="store_true", help="never colour the output")
    p.add_argument("--allow-control-chars", action="store_true", help=ALLOW_CONTROL_HELP)
    add_no_parse(p)
    p.add_argument("-l", "--log-level", default="warning", choices=LOG_LEVELS, metavar="LEVEL",
                   help=f"log level on stderr: {', '.join(LOG_LEVELS)} (default warning)")
    p.add_argument("--version", action="version", version=f"rx-run {__version__}")
    return p


def show_doc(client: Any, pattern: str | None) -> int:
    docs = client.doc(pattern or "*")
    if not docs:
        print(f"rx-run: error: no runner matches {pattern!r}; rx-run -d lists them", file=sys.stderr)
        return EXIT_USAGE
    for name in sorted(docs):
        print(f"{name}:\n" + "\n".join(("    " + line).rstrip() for line in docs[name].splitlines()) + "\n")
    for name, why in sorted(client.registry.unavailable().items()):
        print(f"(runner module {name} is unavailable: {why})", file=sys.stderr)
    return EXIT_OK


def _print(opts: argparse.Namespace, value: Any) -> None:
    if value is None:
        return
    indent = None if opts.out_indent == -1 else (opts.out_indent if opts.out_indent is not None else 4)
    print(render_value(opts.out, value, color=use_color(sys.stdout, False if opts.no_color else None),
                       escape=not opts.allow_control_chars, indent=indent), flush=True)


async def _run(opts: argparse.Namespace, client: Any, args: list, kwargs: dict) -> int:
    from rx.modules import Result
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, task.cancel)
    if opts.async_:
        jid = await client.start(opts.fun, args, kwargs, timeout=opts.timeout, confirm=opts.yes)
        print(jid, flush=True)
        return EXIT_OK
    value = await client.call(opts.fun, args, kwargs, timeout=opts.timeout, confirm=opts.yes)
    if isinstance(value, Result):
        _print(opts, value.value)
        return EXIT_OK if value.retcode == 0 else EXIT_FAILED
    _print(opts, value)
    return EXIT_OK


def run(opts: argparse.Namespace) -> int:
    from rx.client.runner import AsyncRunnerClient
    from rx.config import ConfigError
    from rx.master.services import MasterNotRunning, ReturnsLost, StoreError, UnknownJob
    from rx.modules import CommandError
    from rx.transport.ids import is_jid
    try:
        client = AsyncRunnerClient(config_dir=opts.config_dir)
        if opts.doc:
            return show_doc(client, opts.fun)
        if opts.fun is None:
            build_parser().error("FUN is required (rx-run -d lists the runners)")
        if opts.timeout is not None and not opts.timeout > 0:
            build_parser().error("-t/--timeout must be a number of seconds > 0")
        args, kwargs = split_args(opts.args, no_parse=no_parse_names(opts.no_parse))
        return asyncio.run(_run(opts, client, args, kwargs))
    except (ConfigError, BadRequest) as exc:
        return _fail(exc, EXIT_USAGE)
    except UnknownJob as exc:
        return _fail(f"no job {exc} in the job cache" if is_jid(str(exc)) else exc, EXIT_USAGE)
    except ReturnsLost as exc:
        _print(opts, exc.partial)
        return _fail(f"{exc}; see the master's log", EXIT_MISSING)
    except CommandError as exc:
        return _fail(exc, EXIT_FAILED)
    except ClientError as exc:
        return _fail(exc, exc.exit_code)
    except MasterNotRunning as exc:
        return _fail(exc, EXIT_MASTER)
    except PermissionError as exc:
        return _fail(f"permission denied: {exc.filename or exc}: run as the master's user", EXIT_MASTER)
    except StoreError as exc:
        return _fail(f"the job store cannot be read: {exc}", EXIT_MASTER_ERROR)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\nInterrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a runner's own bug: said in one line, the traceback with -l debug
        logging.getLogger("rx.runners").debug("%s failed", opts.fun, exc_info=True)
        return _fail(f"{opts.fun} failed: {type(exc).__name__}: {exc} (rx-run -l debug shows the traceback)",
                     EXIT_FAILED)


def _fail(message: object, code: int) -> int:
    from rx.client.termsafe import escape_controls
    print(f"rx-run: error: {escape_controls(str(message))}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> None:
    opts = build_parser().parse_intermixed_args(cli_words(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=LOG_LEVELS[opts.log_level], stream=sys.stderr,
                        format="[%(levelname)s] %(message)s")
    sys.exit(run(opts))


if __name__ == "__main__":
    main()
