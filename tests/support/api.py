"""rx-api on a sandbox's master, for tests and benchmarks: `ApiServer.start(box)` runs the real `rx-api`
process (`python -m rx.api.daemon -c <master_dir>`) on a free loopback port and waits until it answers;
`ApiServer.call` is a small JSON HTTP client (urllib: a real HTTP client, no mocks); `add_file_users` writes
`file` eauth users with the real password tool (`python -m rx.master.auth --add-user`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .daemon import Daemon
from .procs import DEADLINE, free_port, wait_for
from .sandbox import Sandbox, load_master, write_yaml

ALL_CLIENTS = ["local", "local_async", "local_batch", "local_subset", "runner", "runner_async", "wheel"]


def add_file_users(path: Path, users: Mapping[str, str]) -> None:
    """Add `{name: password}` to the `file` eauth back end's password file at `path`."""
    for name, password in users.items():
        done = subprocess.run([sys.executable, "-m", "rx.master.auth", "--add-user", name, "--file", str(path),
                               "--password-stdin"], input=password + "\n", capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ApiServer:
    box: Sandbox
    port: int
    daemon: Daemon
    token: str = ""
    cookies: dict = field(default_factory=dict)

    @classmethod
    def start(cls, box: Sandbox, *, config_dir: Path | None = None, log: str = "rx-api.log",
              args: tuple[str, ...] = ()) -> "ApiServer":
        """Start rx-api on the sandbox master's config (or on the master config in `config_dir`: the same master
        with other rx-api settings) and wait until `GET /` answers on its api_port."""
        config_dir = config_dir or box.master_dir
        port = load_master(config_dir).api_port
        argv = [sys.executable, "-m", "rx.api.daemon", "-c", str(config_dir), *args]
        server = cls(box, port, Daemon("rx-api", argv, box.root / log))

        def up() -> bool:
            if not server.daemon.alive():
                raise AssertionError(f"rx-api exited:\n{server.daemon.output()[-3000:]}")
            try:
                return server.call("GET", "/", auth=False).status == 200
            except OSError:
                return False
        wait_for(up, DEADLINE, what="rx-api to answer")
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True, headers: Mapping[str, str] = (),
             raw: bytes | None = None, content_type: str = "application/json", timeout: float = 60.0) -> Answer:
        """One request; `body` is sent as JSON, `raw` as is with `content_type`.  The token from `login` is sent
        in X-Auth-Token when `auth`."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        if auth and self.token:
            req.add_header("X-Auth-Token", self.token)
        for name, value in dict(headers).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Answer(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.headers, exc.read())

    def login(self, username: str, password: str, eauth: str = "file") -> dict:
        """POST /login; keeps the token for later calls and returns the login's return entry."""
        answer = self.call("POST", "/login", {"username": username, "password": password, "eauth": eauth}, auth=False)
        assert answer.status == 200, (answer.status, answer.body)
        entry = answer.json["return"][0]
        self.token = entry["token"]
        return entry

    def as_user(self, username: str, password: str, eauth: str = "file") -> "ApiServer":
        """Another client of the same rx-api, logged in as that user."""
        other = ApiServer(self.box, self.port, self.daemon)
        other.login(username, password, eauth)
        return other

    def stop(self) -> None:
        self.daemon.stop()


def other_config(box: Sandbox, directory: Path, **settings: Any) -> Path:
    """A config dir whose `master` is the sandbox master's with `settings` over it (a second rx-api on the same
    master, with other rx-api settings); returns the directory."""
    import yaml
    current = yaml.safe_load((box.master_dir / "master").read_text())
    write_yaml(directory / "master", {**current, "api_port": free_port(), "api_pidfile": str(directory / "rx-api.pid"),
                                      "api_log_file": str(directory / "rx-api.log"), **settings})
    return directory


def api_config(users_file: Path, users: Mapping[str, Any], *, clients: list[str] | None = None,
               **extra: Any) -> dict:
    """Master settings for rx-api: a free api_port, `file` eauth users with `users`' rights, the clients."""
    return {"api_port": free_port(), "api_enable_clients": ALL_CLIENTS if clients is None else clients,
            "external_auth": {"file": {"^filename": str(users_file), **users}}, **extra}


ALICE, BOB = "alice-pw-1", "bob-pw-2"
"""The passwords of the API suites' two `file` eauth users: alice may do anything, bob only test.ping on m1."""


class ApiSite:
    """rx-master with minions m1 and m2, and rx-api serving `static`, logged in as alice (see `start`)."""

    def __init__(self, box: Sandbox, api: ApiServer) -> None:
        self.box, self.api, self.cfg = box, api, box.cfg

    @classmethod
    def start(cls, box: Sandbox, static: Path) -> "ApiSite":
        users = box.root / "eauth-users"
        add_file_users(users, {"alice": ALICE, "bob": BOB})
        box.start_master(**api_config(users, {"alice": [".*", "@runner", "@wheel"], "bob": [{"m1": ["test.ping"]}]}))
        box.start_minion("m1")
        box.start_minion("m2")
        api = ApiServer.start(box, args=("--static-dir", str(static)))
        api.login("alice", ALICE)
        return cls(box, api)

    def user(self, name: str, password: str) -> ApiServer:
        """Another client of the same rx-api, logged in as `name`."""
        other = ApiServer(self.box, self.api.port, self.api.daemon)
        other.login(name, password)
        return other

    def audit(self) -> list[dict]:
        return [json.loads(line) for line in Path(self.cfg.audit_log_file).read_text().splitlines()]

    def audited(self, **fields: object) -> dict:
        """The last audit line with these fields, waited for (rx-api writes a request's line as it ends)."""
        def found() -> dict | None:
            return next((e for e in reversed(self.audit()) if all(e.get(k) == v for k, v in fields.items())), None)
        return wait_for(found, what=f"an audit line with {fields}")

    def jobs(self) -> dict:
        """The job store's job list, read through the master's services as rx-run would."""
        import asyncio

        from rx.master.services import open_services
        services = open_services(self.cfg)
        try:
            return asyncio.run(services.jobs.list_jobs())
        finally:
            services.close()

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            source: str = "127.0.0.1") -> tuple[int, dict, bytes]:
        """One request through http.client, the path sent exactly as given."""
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.api.port, timeout=60, source_address=(source, 0))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()
