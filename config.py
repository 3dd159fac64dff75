"""Typed, frozen configuration for the master and the minion.

Config is read once at the entry point from a YAML file in the config dir
(`-c DIR` > `RX_CONFIG_DIR` > `/etc/rx`), checked against the field types below,
and handed down as frozen dataclasses.  Every path derives from `root_dir`, so a
non-root sandbox is one setting.  Errors are `ConfigError` values that name the
file, key, value and what is allowed; entry points turn them into exit code 2.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from rx.transport.ids import validate_minion_id

log = logging.getLogger(__name__)

DEFAULT_CONFIG_DIR = "/etc/rx"
AF_UNIX_PATH_MAX = 107
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(Exception):
    """A setting that cannot be used; the message names file, key, value and what is allowed."""

    def __init__(self, message: str, *, path: str = "", key: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.key = key


def default_workers() -> int:
    """One MWorker per CPU, at least 2 and at most 8: the workers are CPU-bound (crypto, msgpack), so more
    than the cores only costs memory (measured in bench/RESULTS.md)."""
    return max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class _Common:
    """Settings shared by master and minion."""

    config_dir: str = DEFAULT_CONFIG_DIR
    root_dir: str = "/"
    user: str = ""
    log_level: str = "warning"
    log_file: str = ""
    pki_dir: str = ""
    cachedir: str = ""
    sock_dir: str = ""
    pidfile: str = ""


@dataclass(frozen=True)
class MasterConfig(_Common):
    """Everything `rx-master`, `rx-key` and the local client read from `master`."""

    interface: str = "0.0.0.0"
    publish_port: int = 4505
    ret_port: int = 4506
    worker_threads: int = field(default_factory=lambda: default_workers())
    auto_accept: bool = False
    timeout: float = 5.0
    keep_jobs_hours: float = 24.0
    publish_key_rotate_hours: float = 24.0
    auth_window_seconds: float = 300.0
    max_pending_keys: int = 1000
    nodegroups: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ret_ipc(self) -> str:
        """Local request socket: local clients send `publish` here, not over TCP."""
        return os.path.join(self.sock_dir, "master_req.ipc")

    @property
    def workers_ipc(self) -> str:
        return os.path.join(self.sock_dir, "workers.ipc")

    @property
    def workers_local_ipc(self) -> str:
        """Where MWorkers take requests that came in on the local socket (publish is only accepted there)."""
        return os.path.join(self.sock_dir, "workers_local.ipc")

    @property
    def publish_pull_ipc(self) -> str:
        return os.path.join(self.sock_dir, "publish_pull.ipc")

    @property
    def event_pull_ipc(self) -> str:
        return os.path.join(self.sock_dir, "master_event_pull.ipc")

    @property
    def event_pub_ipc(self) -> str:
        return os.path.join(self.sock_dir, "master_event_pub.ipc")

    @property
    def root_key_path(self) -> str:
        return os.path.join(self.cachedir, ".root_key")

    @property
    def jobs_dir(self) -> str:
        return os.path.join(self.cachedir, "jobs")


@dataclass(frozen=True)
class MinionConfig(_Common):
    """Everything `rx-minion` reads from `minion`."""

    id: str = ""
    master: str = "localhost"
    master_port: int = 4506
    publish_port: int = 4505
    master_finger: str = ""
    timeout: float = 5.0
    auth_retry_max_seconds: float = 30.0
    pending_warn_seconds: float = 60.0
    grains: Mapping[str, Any] = field(default_factory=dict)


# key -> (type, validator or None, description of what is allowed)
_Check = tuple[type | tuple[type, ...], Any, str]


def _user_exists(name: str) -> bool:
    import pwd
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _port(v: int) -> bool:
    return 1 <= v <= 65535


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


_COMMON_CHECKS: dict[str, _Check] = {
    "root_dir": (str, None, "a directory path"),
    "user": (str, lambda v: v == "" or _user_exists(v), "an existing user name (empty: the user rx is started as)"),
    "log_level": (str, lambda v: v.lower() in LOG_LEVELS, "one of " + ", ".join(LOG_LEVELS)),
    "log_file": (str, None, "a file path"),
    "pki_dir": (str, None, "a directory path"),
    "cachedir": (str, None, "a directory path"),
    "sock_dir": (str, None, "a directory path"),
    "pidfile": (str, None, "a file path"),
}

_MASTER_CHECKS: dict[str, _Check] = {
    **_COMMON_CHECKS,
    "interface": (str, None, "an IP address to bind"),
    "publish_port": (int, _port, "a port number 1-65535"),
    "ret_port": (int, _port, "a port number 1-65535"),
    "worker_threads": (int, lambda v: 1 <= v <= 256, "a whole number 1-256"),
    "auto_accept": (bool, None, "true or false"),
    "timeout": ((int, float), _positive, "a number of seconds > 0"),
    "keep_jobs_hours": ((int, float), _non_negative, "a number of hours >= 0 (0 keeps jobs forever)"),
    "publish_key_rotate_hours": ((int, float), _non_negative, "a number of hours >= 0 (0 never rotates on a schedule)"),
    "auth_window_seconds": ((int, float), _positive, "a number of seconds > 0"),
    "max_pending_keys": (int, _non_negative, "a whole number >= 0 (0: no limit)"),
    "nodegroups": (dict, None, "a mapping of name to target expression"),
}

_MINION_CHECKS: dict[str, _Check] = {
    **_COMMON_CHECKS,
    "id": (str, lambda v: validate_minion_id(v) is None, "1-255 bytes of printable characters, no '/', '\\', NUL or leading '.'"),
    "master": (str, lambda v: bool(v.strip()), "a host name or IP address"),
    "master_port": (int, _port, "a port number 1-65535"),
    "publish_port": (int, _port, "a port number 1-65535"),
    "master_finger": (str, lambda v: v == "" or re.fullmatch(r"[0-9a-f]{64}", v.replace(":", "").lower()) is not None,
                      "the master's SHA-256 public key fingerprint (64 hex digits, colons allowed)"),
    "timeout": ((int, float), _positive, "a number of seconds > 0"),
    "auth_retry_max_seconds": ((int, float), _positive, "a number of seconds > 0"),
    "pending_warn_seconds": ((int, float), _positive, "a number of seconds > 0"),
    "grains": (dict, None, "a mapping of grain name to value"),
}

_DEFAULT_PATHS = {
    "master": {
        "pki_dir": "etc/rx/pki/master",
        "cachedir": "var/cache/rx/master",
        "sock_dir": "var/run/rx/master",
        "log_file": "var/log/rx/master",
        "pidfile": "var/run/rx-master.pid",
    },
    "minion": {
        "pki_dir": "etc/rx/pki/minion",
        "cachedir": "var/cache/rx/minion",
        "sock_dir": "var/run/rx/minion",
        "log_file": "var/log/rx/minion",
        "pidfile": "var/run/rx-minion.pid",
    },
}


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


def _check(path: Path, raw: dict[str, Any], checks: dict[str, _Check]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in checks:
            hint = difflib.get_close_matches(str(key), checks, n=1)
            log.warning("%s: unknown setting %r ignored%s", path, key, f" (did you mean {hint[0]!r}?)" if hint else "")
            continue
        types, ok, allowed = checks[key]
        type_ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in _as_tuple(types))
        if not type_ok or (ok is not None and not ok(value)):
            raise ConfigError(f"{path}: {key}: {value!r} is not allowed; expected {allowed}", path=str(path), key=key)
        out[key] = value
    return out


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _resolve_paths(role: str, values: dict[str, Any]) -> None:
    root = values.get("root_dir", "/")
    for key, default in _DEFAULT_PATHS[role].items():
        given = values.get(key)
        values[key] = os.path.join(root, given if given else default)


def load_master_config(config_dir: str | None = None, overrides: Mapping[str, Any] | None = None) -> MasterConfig:
    """Load and validate `<config_dir>/master`."""
    cdir = config_dir_from(config_dir)
    path = Path(cdir) / "master"
    values = _check(path, {**_read_yaml(path), **(overrides or {})}, _MASTER_CHECKS)
    values["config_dir"] = cdir
    if "log_level" in values:
        values["log_level"] = values["log_level"].lower()
    _resolve_paths("master", values)
    if values.get("nodegroups"):
        from rx.targeting import TargetError, check_nodegroups
        try:
            check_nodegroups(values["nodegroups"])
        except TargetError as exc:
            raise ConfigError(f"{path}: nodegroups: {exc}", path=str(path), key="nodegroups") from None
    cfg = MasterConfig(**values)
    _check_sock_dir(path, cfg.sock_dir, ("master_event_pull.ipc", "master_event_pub.ipc", "publish_pull.ipc", "workers_local.ipc"))
    return cfg


def load_minion_config(config_dir: str | None = None, overrides: Mapping[str, Any] | None = None) -> MinionConfig:
    """Load and validate `<config_dir>/minion`; the id defaults to the host name."""
    cdir = config_dir_from(config_dir)
    path = Path(cdir) / "minion"
    values = _check(path, {**_read_yaml(path), **(overrides or {})}, _MINION_CHECKS)
    values["config_dir"] = cdir
    if "log_level" in values:
        values["log_level"] = values["log_level"].lower()
    if not values.get("id"):
        host = socket.getfqdn() or socket.gethostname()
        why = validate_minion_id(host)
        if why:
            raise ConfigError(f"{path}: id: not set and the host name {host!r} {why}; set 'id' explicitly",
                              path=str(path), key="id")
        values["id"] = host
    if values.get("master_finger"):
        values["master_finger"] = values["master_finger"].replace(":", "").lower()
    _resolve_paths("minion", values)
    return MinionConfig(**values)


def _check_sock_dir(path: Path, sock_dir: str, names: tuple[str, ...]) -> None:
    longest = max(len(os.fsencode(os.path.join(sock_dir, n))) for n in names)
    if longest > AF_UNIX_PATH_MAX:
        raise ConfigError(
            f"{path}: sock_dir: {sock_dir!r} makes IPC socket paths {longest} bytes long; the limit is "
            f"{AF_UNIX_PATH_MAX}: choose a shorter sock_dir",
            path=str(path), key="sock_dir")

