"""Typed, frozen configuration for the master and the minion.

Config is read once at the entry point from a YAML file in the config dir
(`-c DIR` > `RX_CONFIG_DIR` > `/etc/rx`), checked against the declarations below,
and handed down as frozen dataclasses (`narrow()` cuts them to what a component
uses).  Every key is declared once, as a field made by `setting()`: its type,
default, rule and doc; the checks, docs/config.md (`python -m rx.config --markdown`)
and `--print-config` all come from there.  Every path derives from `root_dir`, so
a non-root sandbox is one setting.  Errors are `ConfigError` values that name the
file, key, value and what is allowed; entry points turn them into exit code 2.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import yaml

from rx.apiconfig import ApiSettings, check_api
from rx.apieventsconfig import ApiEventSettings
from rx.authconfig import AuthSettings, check_auth
from rx.configspec import (DIR, FILE, PORT, SECONDS, ConfigError, Rule, check_settings, dsn_ok, keys, narrow, one_of,
                           regexes_ok, setting, user_exists)
from rx.transport.ids import ENV_RE, validate_minion_id

__all__ = ["AF_UNIX_PATH_MAX", "LOG_LEVELS", "MASTER_SOCKETS", "ConfigError", "MasterConfig", "MinionConfig",
           "config_dir_from", "default_workers", "load_master_config", "load_minion_config", "narrow",
           "validate_minion_id"]

DEFAULT_CONFIG_DIR = "/etc/rx"
AF_UNIX_PATH_MAX = 107
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

MASTER_SOCKETS: Mapping[str, str] = {
    "ret_ipc": "master_req.ipc",
    "workers_ipc": "workers.ipc",
    "workers_local_ipc": "workers_local.ipc",
    "publish_pull_ipc": "publish_pull.ipc",
    "event_pull_ipc": "master_event_pull.ipc",
    "event_pub_ipc": "master_event_pub.ipc",
}
"""The master's IPC socket files in `sock_dir`, by the MasterConfig property that names their path."""


def default_workers() -> int:
    """One MWorker per CPU, at least 2 and at most 8: the workers are CPU-bound (crypto, msgpack), so more
    than the cores only costs memory (measured in bench/RESULTS.md)."""
    return max(2, min(8, os.cpu_count() or 2))


ENVIRONMENT = Rule("an environment name: 1-64 letters, digits, '_', '.', '-' (not first)",
                   lambda v: ENV_RE.match(v) is not None)


def _file_roots_ok(v: Mapping) -> bool:
    return all(isinstance(env, str) and ENV_RE.match(env) and isinstance(dirs, list) and dirs
               and all(isinstance(d, str) and d.strip() for d in dirs) for env, dirs in v.items())


@dataclass(frozen=True)
class _Common:
    """Settings shared by master and minion."""

    ROLE: ClassVar[str] = ""

    config_dir: str = DEFAULT_CONFIG_DIR
    root_dir: str = setting("/", rule=DIR, doc="prefix of every relative path below; a sandbox is one `root_dir:` line")
    user: str = setting("", rule=Rule("an existing user name (empty: the user rx is started as)",
                                      lambda v: v == "" or user_exists(v)),
                        doc="run as this user: started as root, the daemon hands it its directories, the pidfile and "
                            "the log file, then switches to it; empty: stay the user that started it")
    log_level: str = setting("warning", rule=Rule("one of " + ", ".join(LOG_LEVELS), lambda v: v.lower() in LOG_LEVELS,
                                                  canonical=str.lower),
                             doc="how much to log (`-l` overrides)")
    log_file: str = setting("", rule=FILE, under_root="var/log/rx/{role}",
                            doc="the log with `-d`; in the foreground logs go to stderr")
    pki_dir: str = setting("", rule=DIR, under_root="etc/rx/pki/{role}",
                           doc="key pairs and (master) minion keys by state; 0700")
    cachedir: str = setting("", rule=DIR, under_root="var/cache/rx/{role}",
                            doc="master: job cache `jobs/`, grains cache `grains/`, `.root_key`; minion: its cache (owned by its user)")
    pidfile: str = setting("", rule=FILE, under_root="var/run/rx-{role}.pid",
                           doc="written by the daemon (`--pid-file` overrides)")


@dataclass(frozen=True)
class MasterConfig(ApiEventSettings, ApiSettings, AuthSettings, _Common):
    """Everything `rx-master`, `rx-key` and the local client read from `master`."""

    ROLE: ClassVar[str] = "master"

    sock_dir: str = setting("", rule=DIR, under_root="var/run/rx/{role}",
                            doc=f"master IPC sockets (0700); every socket path must fit in {AF_UNIX_PATH_MAX} bytes, "
                                "else exit 2 naming `sock_dir`")
    interface: str = setting("0.0.0.0", rule=Rule("an IP address to bind"), doc="address the two TCP ports bind to")
    publish_port: int = setting(4505, rule=PORT, doc="PUB port minions subscribe to")
    ret_port: int = setting(4506, rule=PORT, doc="request port: `_auth`, returns, events")
    zmq_backlog: int = setting(4096, rule=Rule("a whole number 1-65535", lambda v: 1 <= v <= 65535), doc=(
        "listen queue of both ports: connections the kernel holds until the master accepts them; a full queue drops "
        "new ones, which try again 1, 3, 7, 15 s later. The kernel caps it at net.core.somaxconn (Salt: 1000)"))
    metrics_port: int = setting(0, rule=Rule("a port number 0-65535 (0: off)", lambda v: 0 <= v <= 65535),
                                doc="serve Prometheus metrics at `/metrics` on this port (docs/metrics.md); 0: off")
    metrics_interface: str = setting("127.0.0.1", rule=Rule("an IP address to bind"),
                                     doc="address `metrics_port` binds; /metrics has no authentication")
    metrics_event_drops: bool = setting(False, rule=Rule("true or false"),
                                        doc="count events a subscriber of the master's bus misses: the event "
                                            "publisher relays in Python then, ~6 µs more CPU an event")
    worker_processes: int = setting(
        rule=Rule("a whole number 1-256", lambda v: 1 <= v <= 256), factory=default_workers,
        shown_default="one per CPU, 2-8", old_names=("worker_threads",),
        doc="number of MWorker processes; they are CPU-bound, so more than the cores only costs memory. Salt calls "
            "them `worker_threads` (default 5) although they are processes there too")
    auto_accept: bool = setting(False, rule=Rule("true or false"),
                                doc="accept every new minion key without `rx-key` (a different key for a known id is "
                                    "still denied)")
    timeout: float = setting(5.0, rule=SECONDS, doc="default `rx -t` / LocalClient timeout, and how long the client "
                                                    "waits for the master's reply")
    max_wait_seconds: float = setting(
        3600.0, rule=SECONDS,
        doc="default `rx --max-wait` / LocalClient `max_wait`: the longest a client waits for a job's returns "
            "(never less than `timeout`), however long minions say it still runs; they are then reported as "
            "\"still running\" (exit 3). Salt has no such ceiling")
    keep_jobs_hours: float = setting(24.0, rule=Rule("a number of hours >= 0 (0 keeps jobs forever)", lambda v: v >= 0),
                                     doc="job cache retention")
    job_cache_max_mb: float = setting(
        1024.0, rule=Rule("a number of MiB >= 0 (0: no bound)", lambda v: v >= 0),
        doc="size bound of the job cache (job records and returns): over it, the oldest jobs are removed (with a "
            "warning in the master's log) until it is 90% of it. Salt has no such bound")
    publish_key_rotate_hours: float = setting(
        24.0, rule=Rule("a number of hours >= 0 (0 never rotates on a schedule)", lambda v: v >= 0),
        doc="scheduled publish-key rotation (it also rotates when a key is deleted or rejected)")
    auth_window_seconds: float = setting(300.0, rule=SECONDS,
                                         doc="allowed clock difference for `_auth` and sealed requests")
    max_pending_keys: int = setting(1000, rule=Rule("a whole number >= 0 (0: no limit)", lambda v: v >= 0),
                                    doc="at most this many keys are pending: a new one evicts the oldest (a pending "
                                        "minion asking again is made young), so a flood of made-up ids cannot lock "
                                        "out a real minion; see docs/security.md")
    autosign_file: str = setting("", rule=Rule("a file path (relative: under root_dir), or empty"),
                                 doc="Salt's autosign_file: ids (exact, glob or regular expression; one a line, `#` "
                                     "comments) whose new keys are accepted on first contact; ignored unless owned by "
                                     "root or the master's user and not writable by group or others; empty: off")
    private_publish_max: int = setting(
        64, rule=Rule("a whole number >= 0 (0: only jobs asked `--private`)", lambda v: v >= 0),
        doc="a job expected on at most this many minions is sealed for each of them under a key only that minion "
            "holds, so no other minion can read it; larger jobs are sealed once under the shared publish key "
            "(`rx --private` forces the first way for any target)")
    job_store_backend: str = setting(
        "sqlite", rule=one_of("sqlite", "postgres"),
        doc="where jobs and returns are kept: `sqlite` in `<cachedir>/jobs`, `postgres` on the server `postgres_dsn` "
            "names (Salt's `master_job_cache: pgjsonb`); the replay guard stays in `<cachedir>/jobs` either way")
    jid_node: int = setting(
        0, rule=Rule("a whole number 0-99", lambda v: 0 <= v <= 99),
        doc="the last two digits of every jid this master (and its local clients) allocate: masters sharing a job "
            "store need different ones (jids are `YYYYmmddHHMMSS` + 1/10,000 s + this; see the README)")
    postgres_dsn: str = setting(
        "", rule=Rule("a libpq connection string (`host=db port=5432 dbname=rx user=rx` or a postgresql:// URI), or "
                      "empty", dsn_ok),
        doc="the PostgreSQL server of `job_store_backend: postgres` (required then); keep the password out of it: "
            "libpq reads `~/.pgpass` of the master's user, or `passfile=`")
    postgres_pool_size: int = setting(4, rule=Rule("a whole number 1-100", lambda v: 1 <= v <= 100),
                                      doc="connections each master process (every MWorker, maintenance) may hold to "
                                          "`postgres_dsn`; the server's max_connections must cover them all")
    key_store_backend: str = setting("files", rule=one_of("files"), doc="minion keys: `<pki_dir>/minions*`")
    grains_store_backend: str = setting("files", rule=one_of("files"), doc="cached grains: `<cachedir>/grains`")
    session_store_backend: str = setting("files", rule=one_of("files"), doc="session secret: `<pki_dir>/session`")
    nodegroups: Mapping[str, Any] = setting(
        rule=Rule("a mapping of name to target expression"), factory=dict,
        doc="name -> compound expression or list of ids, for `-N` / `N@`; checked at start (cycles, syntax, "
            "unknown groups: exit 2)")
    file_roots: Mapping[str, Any] = setting(
        rule=Rule("a mapping of environment name to a non-empty list of directories", _file_roots_ok),
        factory=lambda: {"base": ["srv/salt"]}, shown_default="`{base: [srv/salt]}`",
        doc="the file server's directories by environment, searched in order (a path found in an earlier one "
            "wins); relative ones are under root_dir. `_modules` and `_grains` in them are what "
            "`saltutil.sync_*` sends to minions")
    fileserver_followsymlinks: bool = setting(
        False, rule=Rule("true or false"),
        doc="serve files through symlinks whose target is outside the file root (links inside it are always "
            "followed). Salt's default is true; rx's is false, because a link out of the root leaks the master's "
            "own files to whoever can add one (a git checkout)")
    file_ignore_regex: list = setting(
        rule=Rule("a list of regular expressions", regexes_ok), factory=list,
        doc="paths (relative to their root) matching one of these are not served, listed or synced")
    file_ignore_glob: list = setting(
        rule=Rule("a list of glob patterns", lambda v: all(isinstance(g, str) for g in v)), factory=list,
        doc="paths (relative to their root; `*` also matches `/`) matching one of these are not served, listed "
            "or synced")
    file_buffer_size: int = setting(
        1048576, rule=Rule("a number of bytes 4096-8388608", lambda v: 4096 <= v <= 8 * 1024 * 1024),
        doc="largest chunk of a file served in one request (a worker never reads more for one request)")
    file_recv: bool = setting(False, rule=Rule("true or false"),
                              doc="accept files minions push with `cp.push`, into `<cachedir>/minions/<id>/files/`")
    file_recv_max_size: float = setting(
        100.0, rule=Rule("a number of MiB > 0", lambda v: v > 0),
        doc="largest file a minion may push (Salt's unit too: megabytes)")
    pillar_roots: Mapping[str, Any] = setting(
        rule=Rule("a mapping of environment name to a non-empty list of directories", _file_roots_ok),
        factory=lambda: {"base": ["srv/pillar"]}, shown_default="`{base: [srv/pillar]}`",
        doc="pillar files by environment, each a list of directories searched in order (relative: under root_dir); "
            "`top.sls` in them maps targets to pillar files (see README, Pillar)")
    pillar_source_merging_strategy: str = setting(
        "smart", rule=one_of("smart", "recurse", "overwrite"),
        doc="how pillar files merge: `smart`/`recurse` merge maps at every depth (a later file wins on a value), "
            "`overwrite` replaces whole top-level keys")
    pillar_merge_lists: bool = setting(False, rule=Rule("true or false"),
                                       doc="merging pillar files joins lists (new items appended) instead of "
                                           "replacing them")

    @property
    def minions_dir(self) -> str:
        """`<cachedir>/minions`: per-minion files the master keeps (pushed files)."""
        return os.path.join(self.cachedir, "minions")

    def socket_paths(self) -> list[str]:
        """Every IPC socket path of the master (MASTER_SOCKETS in `sock_dir`)."""
        return [os.path.join(self.sock_dir, name) for name in MASTER_SOCKETS.values()]

    def _socket(self, prop: str) -> str:
        return os.path.join(self.sock_dir, MASTER_SOCKETS[prop])

    @property
    def ret_ipc(self) -> str:
        """Local request socket: local clients send `publish` here, not over TCP."""
        return self._socket("ret_ipc")

    @property
    def workers_ipc(self) -> str:
        return self._socket("workers_ipc")

    @property
    def workers_local_ipc(self) -> str:
        """Where MWorkers take requests that came in on the local socket (publish is only accepted there)."""
        return self._socket("workers_local_ipc")

    @property
    def publish_pull_ipc(self) -> str:
        return self._socket("publish_pull_ipc")

    @property
    def event_pull_ipc(self) -> str:
        return self._socket("event_pull_ipc")

    @property
    def event_pub_ipc(self) -> str:
        return self._socket("event_pub_ipc")

    @property
    def root_key_path(self) -> str:
        return os.path.join(self.cachedir, ".root_key")

    @property
    def jobs_dir(self) -> str:
        return os.path.join(self.cachedir, "jobs")


@dataclass(frozen=True)
class MinionConfig(_Common):
    """Everything `rx-minion` reads from `minion`."""

    ROLE: ClassVar[str] = "minion"

    id: str = setting("", rule=Rule("1-255 bytes of printable characters, no '/', '\\', NUL or leading '.'",
                                    lambda v: validate_minion_id(v) is None),
                      shown_default="the host's FQDN", doc="this minion's name; `--id` overrides")
    master: str = setting("localhost", rule=Rule("a host name or IP address", lambda v: bool(v.strip())),
                          doc="master host name or IP")
    master_port: int = setting(4506, rule=PORT, doc="the master's `ret_port`")
    publish_port: int = setting(0, rule=Rule("a port number 0-65535", lambda v: 0 <= v <= 65535),
                                doc="0: use the publish port the master announces in its auth reply; set it only to "
                                    "override")
    master_finger: str = setting(
        "", rule=Rule("the master's SHA-256 public key fingerprint (64 hex digits, colons allowed)",
                      lambda v: v == "" or re.fullmatch(r"[0-9a-f]{64}", v.replace(":", "").lower()) is not None,
                      canonical=lambda v: v.replace(":", "").lower()),
        doc="the master's fingerprint, checked on first contact (empty: trust the first key met)")
    timeout: float = setting(5.0, rule=SECONDS, doc="seconds to wait for the master's answer to one request")
    auth_retry_max_seconds: float = setting(30.0, rule=SECONDS,
                                            doc="cap of the auth retry backoff (10 s while the key is pending)")
    pending_warn_seconds: float = setting(60.0, rule=SECONDS,
                                          doc="how often a pending minion logs the `rx-key -a <id>` command to run")
    return_retry_timer_max: float = setting(
        30.0, rule=SECONDS, doc="cap of the backoff between tries to deliver a request, and a spooled return, to "
                                "the master (Salt's name; there the retry interval is random below it)")
    return_spool_max_returns: int = setting(
        10_000, rule=Rule("a whole number >= 1", lambda v: v >= 1),
        doc="returns the master cannot take now wait in `<cachedir>/return_spool` and are retried until it does; "
            "past this many the oldest is dropped, with a warning")
    return_spool_max_mb: float = setting(
        100.0, rule=Rule("a number of megabytes > 0", lambda v: v > 0),
        doc="bound of the return spool's size: past it the oldest spooled return is dropped, with a warning")
    job_stop_timeout: float = setting(
        10.0, rule=Rule("a number of seconds >= 0", lambda v: v >= 0),
        doc="on stop, seconds running jobs get to finish; then they are killed and each returns an error saying "
            "the minion was stopping (keep it below the service manager's stop timeout)")
    grains: Mapping[str, Any] = setting(
        rule=Rule("a mapping of grain name to value"), factory=dict,
        doc="static grains added to (or overriding) the core grains, the custom grain functions and the grains "
            "file `<config_dir>/grains`; sent to the master's grains cache at start")
    enable_fqdns_grains: bool = setting(
        True, rule=Rule("true or false"),
        doc="compute the `fqdns` grain: the names the host's addresses resolve back to (the lookups run in "
            "parallel, at most 1 s in all at start; false skips them where reverse DNS is slow or absent)")
    service_init_dir: str = setting(
        "/etc/init.d", rule=Rule("an absolute directory path", lambda v: v.startswith("/")),
        doc="where the init-script `service` back end (no systemd or OpenRC running) finds the scripts; their "
            "runlevel links are in the rc?.d directories beside it.  Not under root_dir: the services are the host's")
    module_dirs: tuple[str, ...] = setting(
        (), rule=Rule("a list of directory paths", lambda v: all(isinstance(d, str) and d for d in v),
                      canonical=tuple),
        doc="more directories of execution modules (`<name>.py` files); their modules take precedence over "
            "installed and built-in ones of the same name (see docs/modules.md)")
    job_timeout: float = setting(
        0.0, rule=Rule("a number of seconds >= 0 (0: no limit)", lambda v: v >= 0),
        doc="a job still running after this many seconds is ended (SIGTERM, then SIGKILL) and returns an error "
            "saying so; a call's `timeout=` argument overrides it for that job")
    saltenv: str = setting("base", rule=ENVIRONMENT,
                           doc="the file server environment `salt://` URLs and `saltutil.sync_*` use when none is "
                               "given (`?saltenv=` or `saltenv=`)")
    sync_on_start: bool = setting(False, rule=Rule("true or false"),
                                  doc="sync `_modules` and `_grains` from the master's file roots when the minion "
                                      "starts (as `saltutil.sync_all`)")
    pillarenv: str = setting("", rule=Rule("an environment name of the master's pillar_roots, or empty",
                                           lambda v: v == "" or ENV_RE.match(v) is not None),
                             doc="compile this minion's pillar from this environment only; empty: from all of them")
    pillar_refresh_interval: float = setting(
        3600.0, rule=Rule("a number of seconds >= 0 (0: only at start and when asked)", lambda v: v >= 0),
        doc="fetch the pillar again this often (it is fetched at start and by `saltutil.refresh_pillar` too); "
            "rx's own key: Salt refreshes pillar when asked or at each state run")


def config_dir_from(cli_value: str | None) -> str:
    """Resolve the config dir: `-c DIR` > `RX_CONFIG_DIR` > `/etc/rx`.

    A directory named explicitly (flag or variable) must exist: a typo there would
    otherwise run with every default, on the real /etc and /var paths.
    """
    if cli_value or os.environ.get("RX_CONFIG_DIR"):
        cdir = cli_value or os.environ["RX_CONFIG_DIR"]
        if not os.path.isdir(cdir):
            how = "-c" if cli_value else "RX_CONFIG_DIR"
            raise ConfigError(f"config dir {cdir!r} (from {how}) does not exist")
        return cdir
    return DEFAULT_CONFIG_DIR


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}", path=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}", path=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a YAML mapping of settings, got {type(data).__name__}", path=str(path))
    return data


def _read(cls: type[_Common], config_dir: str | None, overrides: Mapping[str, Any] | None) -> tuple[Path, dict[str, Any]]:
    """The checked settings of `<config_dir>/<role>` plus `overrides`, with every path resolved under root_dir."""
    cdir = config_dir_from(config_dir)
    path = Path(cdir) / cls.ROLE
    values = check_settings(path, {**_read_yaml(path), **(overrides or {})}, cls)
    values["config_dir"] = cdir
    root = values.get("root_dir", "/")
    for key in keys(cls).values():
        if key.spec.under_root:
            values[key.name] = os.path.join(root, values.get(key.name) or key.spec.under_root.format(role=cls.ROLE))
    return path, values


def load_master_config(config_dir: str | None = None, overrides: Mapping[str, Any] | None = None) -> MasterConfig:
    """Load and validate `<config_dir>/master`."""
    path, values = _read(MasterConfig, config_dir, overrides)
    if values.get("nodegroups"):
        from rx.targeting import TargetError, check_nodegroups
        try:
            check_nodegroups(values["nodegroups"])
        except TargetError as exc:
            raise ConfigError(f"{path}: nodegroups: {exc}", path=str(path), key="nodegroups") from None
    check_auth(path, values)
    check_api(path, values)
    if values.get("autosign_file"):
        values["autosign_file"] = os.path.join(values.get("root_dir", "/"), values["autosign_file"])
    roots = values.get("file_roots", MasterConfig.__dataclass_fields__["file_roots"].default_factory())
    values["file_roots"] = {env: [os.path.join(values.get("root_dir", "/"), d) for d in dirs]
                            for env, dirs in roots.items()}
    if values.get("job_store_backend") == "postgres" and not values.get("postgres_dsn"):
        raise ConfigError(f"{path}: job_store_backend: postgres needs postgres_dsn (the server's connection string)",
                          path=str(path), key="postgres_dsn")
    roots = values.get("pillar_roots") or MasterConfig.__dataclass_fields__["pillar_roots"].default_factory()
    values["pillar_roots"] = {env: [os.path.join(values.get("root_dir", "/"), d) for d in dirs]
                              for env, dirs in roots.items()}
    cfg = MasterConfig(**values)
    longest = max(len(os.fsencode(p)) for p in cfg.socket_paths())
    if longest > AF_UNIX_PATH_MAX:
        raise ConfigError(
            f"{path}: sock_dir: {cfg.sock_dir!r} makes IPC socket paths {longest} bytes long; the limit is "
            f"{AF_UNIX_PATH_MAX}: choose a shorter sock_dir",
            path=str(path), key="sock_dir")
    return cfg


def default_minion_id() -> str:
    """The host's name as `hostname -f` gives it (the canonical name of a forward lookup), else the plain
    host name; never a loopback name such as `localhost` (socket.getfqdn() gives that when the host name
    resolves to 127.0.x.1 and /etc/hosts lists `localhost` first, and every such minion would share one id)."""
    host = socket.gethostname()
    try:
        infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
        fqdn = next((i[3] for i in infos if i[3]), host)
    except (OSError, UnicodeError):  # unresolvable, or not a valid DNS name
        fqdn = host
    return host if fqdn.split(".")[0] in ("localhost", "localhost4", "localhost6", "ip6-localhost") else fqdn


def load_minion_config(config_dir: str | None = None, overrides: Mapping[str, Any] | None = None) -> MinionConfig:
    """Load and validate `<config_dir>/minion`; the id defaults to the host's name (`default_minion_id`)."""
    path, values = _read(MinionConfig, config_dir, overrides)
    if not values.get("id"):
        host = default_minion_id()
        why = validate_minion_id(host)
        if why:
            raise ConfigError(f"{path}: id: not set and the host name {host!r} {why}; set 'id' explicitly",
                              path=str(path), key="id")
        values["id"] = host
    if values.get("module_dirs"):
        values["module_dirs"] = tuple(os.path.join(values.get("root_dir", "/"), d) for d in values["module_dirs"])
    return MinionConfig(**values)


if __name__ == "__main__":
    from rx.configdocs import reference_markdown  # the reference lives beside, to keep this module small
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m rx.config --markdown")
    sys.stdout.write(reference_markdown())
