"""`rx-api`: salt-api's REST surface (and the dashboard) for the master on this host, over tornado.

It reads the master's config (`-c DIR`, as rx-master) and runs as the master's user (`user`), in the
foreground or detached with `-d` (logging to `api_log_file`, pidfile `api_pidfile`).  Before it listens it
checks the rules that keep it safe: TLS on any address but loopback unless `disable_ssl: true`, a usable
certificate and key, a free port.  It publishes every job with the user's token, so the master's workers
check the rights; the master need not run for rx-api to start (those requests are 503 until it does).
Bounds against slow clients: headers must arrive within HEADER_SECONDS, a body within BODY_SECONDS; a
connection idle that long is closed; bodies are at most `max_request_body_size`; the soft limit on open files
is raised (OPEN_FILES) so that many such clients do not leave rx-api without descriptors.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import signal
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rx import __version__
from rx.apiconfig import tls_problem
from rx.config import ConfigError, MasterConfig, load_master_config
from rx.daemonize import daemon_parser, fatal, launch, print_config_if_asked, remove_pidfile

log = logging.getLogger("rx.api")

HEADER_SECONDS = 15.0
"""A connection whose request headers have not all arrived within this is closed (slowloris), as is one idle
this long between requests."""
BODY_SECONDS = 30.0
"""A request body must arrive within this."""
MAX_HEADER_BYTES = 64 * 1024
STOP_SECONDS = 5.0
OPEN_FILES = 65536
"""File descriptors rx-api asks for (its soft limit is raised to this, within the hard limit): every client holds
one until it is served or cut off, and a soft limit of 1024 (systemd's default) is 1024 idle connections away
from refusing everyone."""


@dataclass(frozen=True)
class _Process:
    """What daemonize.launch reads: rx-api's own log and pidfile, the master's user and log level."""

    log_level: str
    log_file: str
    pidfile: str
    user: str


def tls_context(cfg: MasterConfig) -> ssl.SSLContext | None:
    """The server's TLS context (None without ssl_crt); ConfigError naming the file that cannot be used."""
    if not cfg.ssl_crt:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cfg.ssl_crt, cfg.ssl_key)
    except FileNotFoundError as exc:
        raise ConfigError(f"ssl_crt/ssl_key: {exc.filename or cfg.ssl_crt}: no such file", key="ssl_crt") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ssl_crt/ssl_key: cannot load {cfg.ssl_crt} with {cfg.ssl_key}: "
                          f"{getattr(exc, 'strerror', None) or exc}", key="ssl_crt") from None
    return context


def prepare(cfg: MasterConfig) -> ssl.SSLContext | None:
    """Everything that can stop rx-api on this host, checked before it detaches."""
    problem = tls_problem(cfg)
    if problem:
        raise ConfigError(problem, key="api_host")
    context = tls_context(cfg)
    family = socket.AF_INET6 if ":" in cfg.api_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((cfg.api_host, cfg.api_port))
        except OSError as exc:
            why = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ConfigError(f"api_port: cannot bind {cfg.api_host}:{cfg.api_port}: {why}", key="api_port") from None
    return context


async def serve(cfg: MasterConfig, context: ssl.SSLContext | None, extra_routes: Sequence[Any] = (),
                static_dir: str = "") -> None:
    """Serve until SIGTERM or SIGINT, then stop taking connections and close the stores."""
    from tornado.httpserver import HTTPServer

    from rx.api.app import make_app
    from rx.api.context import STATIC_DIR, open_context
    from rx.api.base import authenticate
    from rx.api.events import event_routes, open_hub
    raise_open_files()
    ctx = open_context(cfg, static_dir=Path(static_dir) if static_dir else STATIC_DIR)
    hub = open_hub(cfg, auth=ctx.auth)
    routes = [*event_routes(hub, authenticate), *extra_routes]
    server = HTTPServer(make_app(ctx, routes), ssl_options=context, xheaders=False, decompress_request=False,
                        idle_connection_timeout=HEADER_SECONDS, body_timeout=BODY_SECONDS,
                        max_header_size=MAX_HEADER_BYTES, max_body_size=cfg.max_request_body_size,
                        max_buffer_size=cfg.max_request_body_size + 2 * MAX_HEADER_BYTES)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        server.listen(cfg.api_port, address=cfg.api_host)
        await hub.start()
        scheme = "https" if context is not None else "http"
        log.warning("rx-api %s ready: %s://%s:%d/ (clients: %s)", __version__, scheme, cfg.api_host, cfg.api_port,
                    ", ".join(cfg.api_enable_clients) or "none enabled")
        if not cfg.external_auth:
            log.warning("rx-api: external_auth is empty in the master config, so no one can log in (README, rx-api)")
        await stop.wait()
    finally:
        server.stop()
        await hub.stop()
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await server.close_all_connections()
        except TimeoutError:
            log.warning("rx-api: connections still open after %gs; closing anyway", STOP_SECONDS)
        await ctx.aclose()
        log.warning("rx-api stopped")


def raise_open_files(wanted: int = OPEN_FILES) -> None:
    """Raise the soft limit on open files to `wanted` (or the hard limit, if lower); never lower it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: list[str] | None = None) -> None:
    parser = daemon_parser("rx-api", "Serve salt-api's REST API (and the dashboard) for the master on this host.")
    parser.add_argument("--static-dir", default="", help="serve the dashboard from this directory instead of the "
                                                         "installed one (rx/api/static): for working on it")
    own = {"daemon": "run in the background (log to api_log_file)", "pid_file": "pidfile path (default: api_pidfile)"}
    for action in parser._actions:  # the shared daemon options name rx-master's settings: say rx-api's
        action.help = own.get(action.dest, action.help)
    args = parser.parse_args(argv)
    given = {"log_level": args.log_level, "api_pidfile": args.pid_file}
    try:
        cfg = load_master_config(args.config_dir, {k: v for k, v in given.items() if v})
    except ConfigError as exc:
        fatal(str(exc))
    print_config_if_asked(args, cfg)
    proc = _Process(cfg.log_level, cfg.api_log_file, cfg.api_pidfile, cfg.user)
    context = launch("rx-api", args, proc, lambda: prepare(cfg), [])
    try:
        asyncio.run(serve(cfg, context, static_dir=args.static_dir))
    finally:
        remove_pidfile(cfg.api_pidfile)
    sys.exit(0)


if __name__ == "__main__":
    main()
