"""`rx TARGET FUN [ARG ...]`: run a function on the minions a target matches.

Exit codes (DESIGN §6; `rx.client.results.EXIT_CODES`): 0 all returned ok; 1 a function
failed; 2 usage or bad target; 3 some minions did not return; 4 no minions matched; 5 master
unreachable, auth or permission error; 6 the master failed (internal error, store unavailable);
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from rx import __version__
from rx.client.cliargs import (COMPLETE_KINDS, LOG_LEVELS, OUTPUTTERS, UsageError, add_no_parse, cli_words,
                               no_parse_names, parse_value, split_args, split_multi, stdin_words)
from rx.client.exits import EXIT_CODES, EXIT_INTERRUPTED, EXIT_NO_MATCH, EXIT_OK, EXIT_USAGE
from rx.client.userauth import add_auth_arguments, cli_session

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (rx --version, --help and usage errors)
if TYPE_CHECKING:
    from typing import AsyncIterator, TextIO

__all__ = ["ALLOW_CONTROL_HELP", "UsageError", "build_parser", "main", "parse_value", "run", "split_args",
           "split_multi"]

EPILOG = """targeting (default: glob on the minion id, case-sensitive):
  rx 'web*' test.ping                      glob          rx -E 'web[0-9]+' test.ping   regex on the id
  rx -L web1,db1 test.ping                 list          rx -G os:Debian test.ping     grain glob
  rx -P 'os:(Debian|Ubuntu)' test.ping     grain regex   rx -S 10.0.0.0/24 test.ping   IP/CIDR
  rx -N webservers test.ping               nodegroup     rx -C 'G@os:Debian and not web*' test.ping
  rx -I role:db test.ping                  pillar glob   rx -J 'role:(db|cache)$' test.ping  pillar regex

exit codes:
""" + "".join(f"  {code:<5}{meaning}\n" for code, meaning in EXIT_CODES.items())

_TARGET_FLAGS = (("-E", "--pcre", "pcre", "regular expression on the id (anchored at the start)"),
                 ("-L", "--list", "list", "comma- or space-separated list of ids"),
                 ("-G", "--grain", "grain", "grain glob: key:value, nested keys as a:b:c"),
                 ("-P", "--grain-pcre", "grain_pcre", "grain regular expression: key:regex"),
                 ("-S", "--ipcidr", "ipcidr", "IP address or CIDR against the ipv4/ipv6 grains"),
                 ("-I", "--pillar", "pillar", "pillar glob: key:value on the master's compiled pillars"),
                 ("-J", "--pillar-pcre", "pillar_pcre", "pillar regular expression: key:regex"),
                 ("-N", "--nodegroup", "nodegroup", "nodegroup from the master config"),
                 ("-C", "--compound", "compound", "compound: G@ P@ I@ J@ L@ E@ S@ N@ with and/or/not/()"))


ALLOW_CONTROL_HELP = ("print control characters in minion data as they are (nested and txt output escape them, so "
                      "that a minion cannot drive your terminal; json, jsonl, yaml and raw are always exact)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with a one-line message, as argparse does
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _Given(argparse.Action):
    """Stores the value and notes that it was given (`out_given`): `--async` prints the bare jid then."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def build_parser() -> argparse.ArgumentParser:
    from rx.transport.sizes import JOB_WINDOW
    p = _Parser(prog="rx", usage="rx [options] TARGET FUN [ARG ...]",
                description="Run an execution module function on targeted minions.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", help="target expression (a glob on the minion id by default)")
    p.add_argument("fun", nargs="?", help="function(s) to run: module.function, or several joined with commas")
    p.add_argument("args", nargs="*", help="arguments; key=value becomes a keyword argument; values are YAML "
                                           "scalars (1 is an int, true a bool) unless --no-parse")
    p.add_argument("-c", "--config-dir", help="config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    tg = p.add_argument_group("targeting").add_mutually_exclusive_group()
    for short, long, kind, text in _TARGET_FLAGS:
        tg.add_argument(short, long, action="store_const", dest="tgt_type", const=kind, help=text)
    p.add_argument("--delimiter", default=":", help="separator of nested grain and pillar keys (default ':')")
    p.add_argument("--private", action="store_true",
                   help="seal the job for each targeted minion alone, so no other minion can read its arguments, "
                        "however many minions match (the master does so anyway up to its private_publish_max)")
    p.add_argument("--preview-target", action="store_true", help="print the minions the target matches, send nothing")
    w = p.add_argument_group("waiting")
    w.add_argument("-t", "--timeout", type=float, help="seconds without a new return before asking missing minions "
                                                       "whether the job still runs (default: master timeout, 5)")
    w.add_argument("--gather-job-timeout", type=float, default=3.0,
                   help="seconds to wait for that find_job probe's answers, after the latest one (default 3)")
    w.add_argument("--max-wait", type=float, metavar="SECONDS",
                   help="wait at most this long in all, however long minions say the job still runs; they are then "
                        "reported as still running (default: the master's max_wait_seconds, 3600)")
    w.add_argument("--job-expire", type=float, metavar="SECONDS",
                   help="minions refuse the job once this many seconds have passed since it was published (by the "
                        "master's clock), so a minion that was unreachable while rx waited never runs it later "
                        "(default: -t plus --gather-job-timeout, what rx waits before it reports a minion missing; "
                        f"with --async, and with 0: only the minions' {JOB_WINDOW:g} s freshness window; at most "
                        f"{JOB_WINDOW:g})")
    w.add_argument("--async", dest="async_", action="store_true", help="publish and print the jid, do not wait "
                   "('Executed command with job ID: JID' on a terminal, the bare jid on a pipe or with --out)")
    w.add_argument("-b", "--batch", "--batch-size", metavar="N|N%",
                   help="rolling batches: at most N (or N%%) minions at once")
    w.add_argument("--batch-wait", type=float, default=0.0, help="seconds to wait after a minion returns before "
                                                                  "starting the next one")
    w.add_argument("--failhard", action="store_true", help="with --batch: start no more minions after a failure")
    w.add_argument("--subset", type=int, metavar="N", help="run on N minions picked at random from the target")
    o = p.add_argument_group("output")
    o.add_argument("--out", "--output", choices=OUTPUTTERS, default="nested", action=_Given,
                   help="output format (default nested)")
    o.add_argument("-s", "--static", action="store_true", help="print everything at the end, as one document")
    o.add_argument("--out-file", "--output-file", help="write the output to this file instead of stdout")
    o.add_argument("--out-file-append", "--output-file-append", action="store_true",
                   help="with --out-file: append to the file instead of replacing it")
    o.add_argument("--out-indent", "--output-indent", type=int,
                   help="indent of json and yaml output (json: -1 for one line)")
    o.add_argument("--no-color", "--no-colour", action="store_true", help="never colour the output")
    o.add_argument("--force-color", "--force-colour", action="store_true",
                   help="colour the output even when not on a terminal")
    o.add_argument("-p", "--progress", action="store_true", help="draw a bar of returned/expected minions on "
                                                                 "stderr while waiting (on a terminal only)")
    o.add_argument("--show-jid", action="store_true", help="print 'jid: JID' first (on stderr with json, jsonl "
                                                           "and yaml, so that stdout stays one document)")
    o.add_argument("--hide-timeout", action="store_true", help="leave minions that did not return out of the "
                                                               "output (they still count: the exit code is 3)")
    o.add_argument("--allow-control-chars", action="store_true", help=ALLOW_CONTROL_HELP)
    o.add_argument("-v", "--verbose", action="store_true", help="print the jid, missing minions and a summary on "
                                                                "stderr")
    o.add_argument("--summary", action="store_true", help="print a summary on stderr")
    add_no_parse(p)
    p.add_argument("--args-stdin", action="store_true", help="read more arguments from stdin, one per line")
    p.add_argument("--args-separator", default=",", help="separates the argument groups of a multi-function job")
    p.add_argument("-d", "--doc", "--documentation", action="store_true",
                   help="show the documentation of FUN (or of all functions matching it, e.g. 'test' or 'cmd.*')")
    p.add_argument("-V", "--versions-report", action="store_true",
                   help="print the versions of rx and its dependencies")
    p.add_argument("-l", "--log-level", choices=LOG_LEVELS, default="warning", metavar="LEVEL",
                   help=f"log level on stderr: {', '.join(LOG_LEVELS)} (default warning)")
    p.add_argument("--version", action="version", version=f"rx {__version__}")
    add_auth_arguments(p)
    p.add_argument("--complete", choices=COMPLETE_KINDS, help=argparse.SUPPRESS)  # shell completion's names
    p.set_defaults(tgt_type="glob", out_given=False)
    return p


def _job(opts: argparse.Namespace) -> tuple[str | list, list, dict]:
    from rx.transport.ids import FUN_RE
    funs = opts.fun.split(",") if "," in opts.fun else [opts.fun]
    bad = [f for f in funs if not FUN_RE.match(f)]
    if bad:
        raise UsageError(f"{bad[0]!r} is not a function name; use module.function (e.g. test.ping)")
    no_parse = no_parse_names(opts.no_parse)
    if len(funs) == 1:
        args, kwargs = split_args(opts.args, no_parse=no_parse)
        return funs[0], args, kwargs
    return funs, split_multi(funs, opts.args, opts.args_separator, parse="*" not in no_parse), {}


def _check_options(opts: argparse.Namespace) -> None:
    if opts.timeout is not None and opts.timeout <= 0:
        raise UsageError("-t/--timeout must be a number of seconds > 0")
    if opts.gather_job_timeout <= 0:
        raise UsageError("--gather-job-timeout must be a number of seconds > 0")
    if opts.max_wait is not None and opts.max_wait <= 0:
        raise UsageError("--max-wait must be a number of seconds > 0")
    from rx.transport.sizes import JOB_WINDOW
    if opts.job_expire is not None and not 0 <= opts.job_expire <= JOB_WINDOW:
        raise UsageError(f"--job-expire must be a number of seconds from 0 to {JOB_WINDOW:g}")
    if opts.batch_wait < 0:
        raise UsageError("--batch-wait must not be negative")
    if opts.subset is not None and opts.subset < 1:
        raise UsageError("--subset must be at least 1")
    if opts.batch is not None:
        from rx.client.batch import batch_size
        from rx.client.results import BadRequest
        try:
            batch_size(opts.batch, 1)
        except BadRequest as exc:
            raise UsageError(str(exc)) from None
    exclusive = [name for name, on in (("--async", opts.async_), ("--batch", opts.batch is not None),
                                       ("--subset", opts.subset is not None),
                                       ("--preview-target", opts.preview_target)) if on]
    if len(exclusive) > 1:
        raise UsageError(f"{' and '.join(exclusive)} cannot be combined")
    if opts.failhard and opts.batch is None:
        raise UsageError("--failhard goes with --batch")
    if opts.no_color and opts.force_color:
        raise UsageError("--no-color and --force-color contradict each other")
    if opts.out_file_append and not opts.out_file:
        raise UsageError("--out-file-append goes with --out-file")


async def run(opts: argparse.Namespace, stream: TextIO) -> int:
    import asyncio  # here, not at the top: `rx --version` and `rx -h` start without it (~40 ms)
    from rx.client.batch import BatchProgress, narrow
    from rx.client.local import AsyncLocalClient
    from rx.client.results import Published
    from rx.client.output import use_color
    from rx.client.progress import JobNews, ProgressBar
    from rx.client.report import Report
    from rx.config import load_master_config
    cfg = load_master_config(opts.config_dir)
    timeout = cfg.timeout if opts.timeout is None else opts.timeout
    force = True if opts.force_color else (False if opts.no_color or opts.out_file else None)
    report = Report(opts, stream, use_color(stream, force))
    verbose_summary = opts.summary or opts.verbose
    async with cli_session(opts, cfg) as token, AsyncLocalClient(cfg=cfg, token=token) as client:
        if opts.target is None:  # rx -a EAUTH -T: logged in, nothing to run
            return EXIT_OK
        if opts.preview_target:
            preview = await client.preview(opts.target, tgt_type=opts.tgt_type, delimiter=opts.delimiter)
            _print_preview(opts, stream, preview.minions)
            if preview.no_grains:
                print(f"Listed only because their grains are not cached yet: {', '.join(preview.no_grains)}",
                      file=sys.stderr)
            return EXIT_OK if preview.minions else EXIT_NO_MATCH
        fun, args, kwargs = _job(opts)
        if opts.async_:
            pub = await client.publish(opts.target, fun, args, tgt_type=opts.tgt_type, kwarg=kwargs,
                                       delimiter=opts.delimiter, private=opts.private, job_expire=opts.job_expire)
            if not pub.minions:
                return _no_match(opts, stream)
            terminal = stream.isatty() and not opts.out_given
            print(f"Executed command with job ID: {pub.jid}" if terminal else pub.jid, file=stream)
            return EXIT_OK
        tgt, tgt_type = opts.target, opts.tgt_type
        if opts.subset is not None:
            picked = await client.pick_subset(tgt, opts.subset, tgt_type=tgt_type, delimiter=opts.delimiter)
            if not picked:
                return _no_match(opts, stream)
            tgt, tgt_type = narrow(tgt, tgt_type, picked), "compound"
        published: list[Published] = []
        batch_jobs: list[Published] = []
        items: AsyncIterator[dict]
        bar = ProgressBar(sys.stderr, enabled=opts.progress)
        report.bar = bar if bar.on else None
        news = JobNews(opts, report, batch_jobs if opts.batch is not None else published, bar,
                       batch=opts.batch is not None)
        if opts.batch is not None:
            last: list[tuple] = []

            def progress(p: BatchProgress) -> None:
                report.targeted = p.total
                if last and last[-1] == (p.done, p.running, p.failed):
                    return
                last.append((p.done, p.running, p.failed))
                bar.clear()
                print(f"[batch] {p.done}/{p.total} done, {p.running} running, {p.failed} failed",
                      file=sys.stderr, flush=True)
            items = client.cmd_batch(tgt, fun, args, batch=opts.batch, tgt_type=tgt_type, kwarg=kwargs,
                                     timeout=timeout, batch_wait=opts.batch_wait, failhard=opts.failhard,
                                     delimiter=opts.delimiter, gather_job_timeout=opts.gather_job_timeout,
                                     progress=progress, published=batch_jobs, max_wait=opts.max_wait,
                                     private=opts.private, job_expire=opts.job_expire)
        else:
            items = client.cmd_iter(tgt, fun, args, timeout=timeout, tgt_type=tgt_type, kwarg=kwargs,
                                    expect_minions=True, gather_job_timeout=opts.gather_job_timeout,
                                    delimiter=opts.delimiter, published=published, max_wait=opts.max_wait,
                                    private=opts.private, job_expire=opts.job_expire)
        ticker = asyncio.create_task(news.run()) if opts.progress or opts.show_jid or opts.verbose else None
        try:
            async for item in items:
                news.poll()
                report.add(item)
            news.poll()
        except asyncio.CancelledError:
            bar.close()
            jids = [p.jid for p in published or batch_jobs]
            if not jids:
                print("\nInterrupted.", file=sys.stderr)
            elif len(jids) == 1:
                goes_on = "may have been published" if not (published or batch_jobs)[0].minions else "goes on"
                print(f"\nInterrupted. The job {goes_on}; look it up later with: rx-run jobs.lookup_jid {jids[0]}",
                      file=sys.stderr)
            else:
                print(f"\nInterrupted. Batch jobs started so far go on; look them up with rx-run jobs.lookup_jid: "
                      f"{' '.join(jids)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            if ticker is not None:
                ticker.cancel()
            bar.close()
    if (published and not published[0].minions) or (opts.batch is not None and not report.targeted):
        return _no_match(opts, stream)
    report.finish()
    if fun == "sys.list_functions":
        from rx.client.complete import remember_functions
        remember_functions(cfg, report.results)
    missing = sorted(m for m, s in report.status.items() if s in ("missing", "unknown", "running"))
    if opts.verbose and missing:
        print(f"Did not return: {', '.join(missing)}", file=sys.stderr)
    if report.count("running"):
        print(f"{report.count('running')} minion(s) still ran the job when --max-wait was reached; look it up later "
              f"with: rx-run jobs.lookup_jid {report.jid or '<jid>'}", file=sys.stderr)
    if verbose_summary:
        print(report.summary(), file=sys.stderr)
    return report.exit_code()


def _no_match(opts: argparse.Namespace, stream: TextIO) -> int:
    print(f"No minions matched the target {opts.target!r} ({opts.tgt_type}).", file=sys.stderr)
    if opts.out == "json":
        print("{}", file=stream)
    return EXIT_NO_MATCH


def _print_preview(opts: argparse.Namespace, stream: TextIO, minions: list[str]) -> None:
    import json
    from rx.client.report import indent_of
    if opts.out == "json":
        print(json.dumps(minions, indent=indent_of(opts)), file=stream)
    else:
        for m in minions:
            print(m, file=stream)
    if not minions:
        print(f"No minions matched the target {opts.target!r} ({opts.tgt_type}).", file=sys.stderr)


def show_doc(pattern: str | None) -> int:
    """Documentation from the local copy of the modules (minions run the same code)."""
    from rx.minion.registry import Registry
    from rx.modules import ExecContext
    from rx.modules import sys as sysmod
    docs = sysmod.doc(ExecContext(registry=Registry()), pattern or "*")
    if not docs:
        print(f"rx: error: no function matches {pattern!r}; see rx -d for the list", file=sys.stderr)
        return EXIT_USAGE
    for name in sorted(docs):
        print(f"{name}:\n" + "\n".join("    " + line for line in docs[name].splitlines()) + "\n")
    return EXIT_OK


def versions_report() -> str:
    from rx.modules.test import versions_report as report
    return report()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (and with --args-stdin, stdin's lines after it) as options."""
    words = cli_words(sys.argv[1:] if argv is None else list(argv))
    opts = build_parser().parse_intermixed_args(words)
    if opts.args_stdin:
        opts = build_parser().parse_intermixed_args(words + cli_words(stdin_words(sys.stdin)))
    return opts


def main(argv: list[str] | None = None) -> None:
    opts = parse(argv)
    import logging
    logging.basicConfig(level=LOG_LEVELS[opts.log_level], stream=sys.stderr, format="[%(levelname)s] %(message)s")
    if opts.complete:
        from rx.client.complete import main as complete
        sys.exit(complete(opts.complete, opts.config_dir))
    if opts.versions_report:
        print(versions_report())
        sys.exit(EXIT_OK)
    if opts.doc:
        sys.exit(show_doc(opts.fun or opts.target))
    if opts.make_token and opts.target is None:
        sys.exit(_run_main(opts))
    if opts.target is None or (opts.fun is None and not opts.preview_target):
        build_parser().error("TARGET and FUN are required")
    try:
        _check_options(opts)
        if not opts.preview_target:
            _job(opts)
    except UsageError as exc:
        print(f"rx: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    sys.exit(_run_main(opts))


def _run_main(opts: argparse.Namespace) -> int:
    import asyncio
    import signal
    from rx.client.results import BadRequest, ClientError
    from rx.config import ConfigError

    async def runner(stream: TextIO) -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        return await run(opts, stream)
    stream: TextIO = sys.stdout
    if opts.out_file:
        try:
            stream = open(opts.out_file, "a" if opts.out_file_append else "w")
        except OSError as exc:
            print(f"rx: error: --out-file {opts.out_file!r}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    try:
        return asyncio.run(runner(stream))
    except (ConfigError, BadRequest, UsageError) as exc:
        print(f"rx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ClientError as exc:
        from rx.client.termsafe import escape_controls
        print(f"rx: error: {escape_controls(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED
    finally:
        if stream is not sys.stdout:
            stream.close()


if __name__ == "__main__":
    main()
