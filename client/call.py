"""`rx-call FUN [ARG ...]`: run an execution module function on this host, through this minion's config,
grains and function registry (Salt's salt-call).

By default the return also goes to the master's job store, as Salt's salt-call does: rx-call
authenticates with the minion's own key and the master files the return under a new jid (printed on
stderr with -l info; `rx-run jobs.lookup_jid JID` finds it).  `--local` runs without any master
(no key, no network; the minion config is optional).  Options may come anywhere on the line; words
after `--` are the function's.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

from rx import __version__
from rx.client.cli import ALLOW_CONTROL_HELP
from rx.client.cliargs import LOG_LEVELS, add_no_parse, cli_words, no_parse_names, split_args
from rx.client.output import OUTPUTTERS, render, use_color

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MASTER = 0, 1, 2, 5
EPILOG = """exit codes:
  0    the function succeeded (and its return reached the master, unless --local)
  1    the function failed (with --retcode-passthrough: its own retcode)
  2    usage error, or a config that cannot be read
  5    the function succeeded and its return is printed, but it could not be sent to the master
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rx-call", usage="rx-call [options] FUN [ARG ...] [key=value ...]",
                                description="Run a function on this host, as its minion would.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fun", help="the function, module.function (e.g. test.ping)")
    p.add_argument("args", nargs="*", help="arguments; key=value becomes a keyword argument; values are YAML "
                                           "scalars unless --no-parse")
    p.add_argument("--local", action="store_true", help="run without a master: no key, no network, the return "
                                                        "goes nowhere but stdout")
    p.add_argument("-c", "--config-dir", help="minion config directory (default: $RX_CONFIG_DIR or /etc/rx; "
                                               "optional with --local)")
    p.add_argument("--id", help="with --local: the minion id to report (default: the config's, else 'local')")
    p.add_argument("-t", "--timeout", type=float, help="seconds to wait for the master to take the return "
                                                       "(default: 3 times the minion's timeout)")
    p.add_argument("--retcode-passthrough", action="store_true",
                   help="exit with the function's own retcode (Salt's flag) instead of 1 when it fails")
    p.add_argument("--out", "--output", choices=OUTPUTTERS, default="nested", help="output format (default nested)")
    p.add_argument("--allow-control-chars", action="store_true", help=ALLOW_CONTROL_HELP)
    add_no_parse(p)
    p.add_argument("-l", "--log-level", default="warning", choices=LOG_LEVELS, metavar="LEVEL",
                   help=f"log level on stderr: {', '.join(LOG_LEVELS)} (default warning)")
    p.add_argument("--version", action="version", version=f"rx-call {__version__}")
    return p


def _config(opts: argparse.Namespace) -> Any:
    from rx.config import ConfigError, load_minion_config
    overrides = {"id": opts.id} if opts.id else None
    try:
        return load_minion_config(opts.config_dir, overrides)
    except ConfigError as exc:
        if not opts.local:
            raise
        print(f"rx-call: warning: minion config not loaded, running without it: {exc}", file=sys.stderr)
        return None


class LazyGrains(Mapping):
    """This host's grains, computed when a function (or a module's `__virtual__`) first reads them: what
    `rx-call --local test.ping` never does, and computing them (commands run, files read, custom grains
    imported) would be most of its time."""

    def __init__(self, minion_id: str, cfg: Any) -> None:
        self._args = (minion_id, cfg)
        self._grains: dict[str, Any] | None = None

    def _data(self) -> dict[str, Any]:
        if self._grains is None:
            from rx.minion.grains import load_grains
            self._grains = load_grains(*self._args)
        return self._grains

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())


def run(opts: argparse.Namespace) -> int:
    from rx.minion.calls import execute
    from rx.minion.registry import Registry
    from rx.modules import ExecContext
    from rx.transport.ids import FUN_RE
    from rx.transport.messages import Job
    if not FUN_RE.match(opts.fun):
        print(f"rx-call: error: {opts.fun!r} is not a function name; use module.function (e.g. test.ping)",
              file=sys.stderr)
        return EXIT_USAGE
    if opts.id and not opts.local:
        print("rx-call: error: --id goes with --local (the master knows this minion by its key's id)", file=sys.stderr)
        return EXIT_USAGE
    cfg = _config(opts)
    minion_id = cfg.id if cfg is not None and cfg.id else (opts.id or "local")
    args, kwargs = split_args(opts.args, no_parse=no_parse_names(opts.no_parse))
    registry = Registry(cfg)
    ctx = ExecContext(minion_id=minion_id, grains=LazyGrains(minion_id, cfg), config=cfg, registry=registry)
    registry.context = ctx
    job = Job(jid="0" * 20, fun=opts.fun, arg=args, kwarg=kwargs, tgt=[minion_id], tgt_type="list", ts=time.time())
    result = execute(registry, job, ctx)
    code = 0 if result["retcode"] == 0 else (result["retcode"] if opts.retcode_passthrough else EXIT_FAILED)
    print(render(opts.out, {minion_id: result["return"]}, color=use_color(sys.stdout),
                 escape=not opts.allow_control_chars), flush=True)
    sent = EXIT_OK if opts.local else _to_master(opts, cfg, args, kwargs, result)
    return code or sent


def _to_master(opts: argparse.Namespace, cfg: Any, args: list, kwargs: dict, result: dict) -> int:
    """Send the return to the master; 0 once it is filed, else EXIT_MASTER (said on stderr)."""
    import asyncio
    from rx.client.callreturn import send_return
    from rx.client.results import ClientError
    from rx.transport.callmsgs import CallReturn
    call = CallReturn(fun=opts.fun, arg=args, kwarg=kwargs, retcode=result["retcode"], success=result["success"],
                      ret=result["return"])
    timeout = opts.timeout if opts.timeout is not None else 3 * cfg.timeout
    try:
        jid = asyncio.run(send_return(cfg, call, timeout))
    except ClientError as exc:
        print(f"rx-call: error: the return was not sent to the master: {exc}", file=sys.stderr)
        return EXIT_MASTER
    logging.getLogger("rx.call").info("return filed by the master as job %s (rx-run jobs.lookup_jid %s)", jid, jid)
    return 0


def main(argv: list[str] | None = None) -> None:
    p = build_parser()
    opts = p.parse_intermixed_args(cli_words(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=LOG_LEVELS[opts.log_level], stream=sys.stderr,
                        format="[%(levelname)s] %(message)s")
    from rx.config import ConfigError
    try:
        code = run(opts)
    except ConfigError as exc:
        print(f"rx-call: error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    sys.exit(code)


if __name__ == "__main__":
    main()
