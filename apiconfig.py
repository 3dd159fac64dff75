"""rx-api's settings, read from the master's config file (rx-api serves that master): where it listens,
TLS, which clients it offers, CORS, body bounds, its own log and pidfile.  Declared here (a mixin of
MasterConfig) to keep config.py small; docs/config.md lists them in their own section.

Names are Salt's where Salt has one (its `rest_cherrypy:` keys `ssl_crt`, `ssl_key`, `disable_ssl`,
`webhook_disable_auth`, `stats_disable_auth`, `max_request_body_size`; `netapi_enable_clients`), with an
`api_` prefix where a bare name would be ambiguous in the master's file (`api_host`, `api_port`).  A Salt
`rest_cherrypy:` or `rest_tornado:` block is read too: `check_api` copies its keys onto these (a key
given at the top level wins), so a salt-api section works unchanged.

`tls_problem` is rx-api's start rule: it refuses to listen on an address other than loopback without
TLS unless `disable_ssl: true` is set explicitly.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from rx.configspec import FILE, PORT, Rule, keys, setting

log = logging.getLogger("rx.config")

API_CLIENTS = ("local", "local_async", "local_batch", "local_subset", "runner", "runner_async", "wheel")
"""The lowstate clients rx-api has; each is refused until `api_enable_clients` names it."""
SALT_BLOCKS = ("rest_cherrypy", "rest_tornado")
SALT_KEYS = {"host": "api_host", "port": "api_port", "ssl_crt": "ssl_crt", "ssl_key": "ssl_key",
             "disable_ssl": "disable_ssl", "webhook_disable_auth": "webhook_disable_auth",
             "stats_disable_auth": "stats_disable_auth", "max_request_body_size": "max_request_body_size",
             "cors_origin": "api_cors_origins"}
"""Keys of Salt's `rest_cherrypy:`/`rest_tornado:` block and the rx setting each one sets."""
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _origins_ok(value: list) -> bool:
    return all(isinstance(o, str) and (o == "*" or _ORIGIN.fullmatch(o) is not None) for o in value)


@dataclass(frozen=True)
class ApiSettings:
    """rx-api (see README, rx-api; docs/api.md)."""

    api_host: str = setting("127.0.0.1", rule=Rule("an IP address to bind", _ip),
                            doc="address rx-api listens on (Salt's rest_cherrypy `host`); an address other than "
                                "loopback needs `ssl_crt`/`ssl_key`, or `disable_ssl: true`")
    api_port: int = setting(8000, rule=PORT, doc="rx-api's port (salt-api's default)")
    ssl_crt: str = setting("", rule=FILE, doc="TLS certificate chain (PEM) rx-api serves; with `ssl_key`, rx-api "
                                              "speaks HTTPS only")
    ssl_key: str = setting("", rule=FILE, doc="the certificate's private key (PEM; readable by the master's user only)")
    disable_ssl: bool = setting(False, rule=Rule("true or false"),
                                doc="let rx-api listen on an address other than loopback without TLS (tokens and "
                                    "passwords then cross the network in clear text)")
    api_enable_clients: tuple[str, ...] = setting(
        (), rule=Rule("a list of: " + ", ".join(API_CLIENTS), lambda v: all(c in API_CLIENTS for c in v),
                      canonical=tuple),
        old_names=("netapi_enable_clients",),
        doc="the lowstate clients rx-api accepts at `POST /` and `/run`, and so the routes built on them (/minions: "
            "local, local_async; /jobs: runner; /keys: wheel); none by default. Salt's name `netapi_enable_clients` "
            "is read as this one")
    api_cors_origins: tuple[str, ...] = setting(
        (), rule=Rule("a list of origins (`https://host[:port]`) or `*`", _origins_ok, canonical=tuple),
        doc="browser origins other sites' pages may call rx-api from (CORS); none by default. `*` allows any origin "
            "but never with the session cookie (the token header only)")
    max_request_body_size: int = setting(
        1048576, rule=Rule("a number of bytes 1024-104857600", lambda v: 1024 <= v <= 100 * 1024 * 1024),
        doc="largest request body rx-api reads (413 beyond it)")
    webhook_disable_auth: bool = setting(False, rule=Rule("true or false"),
                                         doc="take `POST /hook/...` without a token (for services that cannot "
                                             "log in; protect the hook otherwise: TLS, a firewall, a secret the "
                                             "reactor checks)")
    stats_disable_auth: bool = setting(False, rule=Rule("true or false"),
                                       doc="serve `GET /stats` and `GET /metrics` without a token (a Prometheus "
                                           "scraper); the master's `metrics_port` is the other way")
    api_log_file: str = setting("", rule=FILE, under_root="var/log/rx/api",
                                doc="rx-api's log with `-d`; in the foreground it logs to stderr")
    api_pidfile: str = setting("", rule=FILE, under_root="var/run/rx-api.pid",
                               doc="written by rx-api (`--pid-file` overrides)")
    rest_cherrypy: Mapping[str, Any] = setting(
        rule=Rule("a mapping of salt-api settings"), factory=dict,
        doc="Salt's salt-api block, read for Salt configs: `host`, `port`, `ssl_crt`, `ssl_key`, `disable_ssl`, "
            "`webhook_disable_auth`, `stats_disable_auth`, `max_request_body_size` set the settings above (a "
            "key set at the top level wins); others are ignored with a warning")
    rest_tornado: Mapping[str, Any] = setting(
        rule=Rule("a mapping of salt-api settings"), factory=dict,
        doc="the same for Salt's tornado salt-api block (its `cors_origin` too)")


def check_api(path: Path, values: dict[str, Any]) -> None:
    """Copy a Salt `rest_cherrypy:`/`rest_tornado:` block onto rx-api's settings (checked like them; keys rx
    does not use warn), then resolve the TLS files under root_dir."""
    table = keys(ApiSettings)
    for block in SALT_BLOCKS:
        given = values.get(block) or {}
        for salt_name, value in given.items():
            name = SALT_KEYS.get(salt_name)
            if name is None:
                log.warning("%s: %s: %r is not used by rx-api (ignored)", path, block, salt_name)
                continue
            if name == "api_cors_origins" and isinstance(value, str):
                value = [value]
            if name not in values:
                values[name] = table[name].check(path, f"{block}: {salt_name}", value)
    for name in ("ssl_crt", "ssl_key"):
        if values.get(name):
            values[name] = os.path.join(values.get("root_dir", "/"), values[name])


def is_loopback(host: str) -> bool:
    """Whether `host` (an IP address) is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_problem(cfg: Any) -> str:
    """Why rx-api must not start with these settings ("" if it may): half a TLS pair, or an address other than
    loopback without TLS and without `disable_ssl: true`."""
    if bool(cfg.ssl_crt) != bool(cfg.ssl_key):
        missing = "ssl_key" if cfg.ssl_crt else "ssl_crt"
        return f"{missing}: TLS needs both ssl_crt and ssl_key (only one is set)"
    if cfg.ssl_crt or is_loopback(cfg.api_host) or cfg.disable_ssl:
        return ""
    return (f"api_host: refusing to listen on {cfg.api_host} without TLS: tokens and passwords would cross the "
            "network in clear text. Set ssl_crt and ssl_key, or bind 127.0.0.1, or set disable_ssl: true to "
            "accept that")
